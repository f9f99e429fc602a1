//! Setup: `init` writes a first configuration, from a Compose file or from questions.

mod compose_file;
pub mod init;
