//! The open database handle that every feature module adds its methods to (each in its
//! own `impl StateDb` block); opening it, with the schema steps, is in lib.rs.

use std::path::{Path, PathBuf};

/// An open state database.
pub struct StateDb {
    /// Crate-visible so the feature modules can open transactions (`&mut` access).
    pub(crate) conn: rusqlite::Connection,
    pub(crate) path: PathBuf,
}

impl std::fmt::Debug for StateDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDb").field("path", &self.path).finish()
    }
}

impl StateDb {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for the feature modules of this crate.
    pub(crate) fn conn(&self) -> &rusqlite::Connection {
        &self.conn
    }
}
