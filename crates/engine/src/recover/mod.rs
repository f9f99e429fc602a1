//! Recovery: getting data back and proving it can be. `restore` writes a backup over
//! (or beside) live data and verifies it; `drill` rehearses a disaster in a sandbox or,
//! with `destructive`, in place, measuring RTO and RPO; `populate` loads test data;
//! `certify` runs the readiness routine end to end; `demo` does it all on an embedded
//! stack.

pub mod certify;
pub mod demo;
pub mod drill;
pub mod populate;
pub mod restore;

pub use drill::destructive;
