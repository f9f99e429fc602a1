//! Protection: taking backups and keeping them good. `backup` stores every selected
//! source in the local copy and then runs `sync` to each remote; `verify` proves a copy
//! still holds what its manifests promise; `repair` re-uploads what verify found
//! damaged; `prune` applies retention to every copy; `list` shows the backups of a copy.

pub mod backup;
pub mod list;
pub mod prune;
pub(crate) mod repair;
pub mod sync;
pub mod verify;
