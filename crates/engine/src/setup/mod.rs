//! Setup: `init` writes a first configuration, from a Compose file or from questions;
//! `validate` warns about what the config names but the host does not have.

mod compose_file;
pub mod init;
pub mod validate;
