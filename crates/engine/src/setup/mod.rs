//! Setup: `init` writes a first configuration, from a Compose file or from questions.

pub mod init;
