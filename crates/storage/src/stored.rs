//! A repository file's stored bytes read as they are, and whether they hash to the
//! file's name. restic-format files are named by the SHA-256 of their stored bytes, so
//! this is the one test of damage that trusts nothing but the bytes; the check (a
//! root tree's pack) and the repair (every suspect) both use it.

use rustic_core::{FileType, Id};
use sha2::{Digest, Sha256};

use crate::{
    error::StorageError,
    repo::{Place, Repository},
    s3_backend::object_key,
};

/// Whether `bytes` are the file named `id`.
pub(crate) fn hashes_to(bytes: &[u8], id: &Id) -> bool {
    hex::encode(Sha256::digest(bytes)) == id.to_hex().as_str()
}

impl Repository {
    /// A file's stored bytes as they are, unchecked (the S3 backend refuses to return
    /// bytes that do not hash to their name, which is the very thing looked for here);
    /// `None` when it is not there.
    pub(crate) fn stored_bytes(
        &self,
        tpe: FileType,
        id: &Id,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let key = object_key(tpe, id);
        match &self.place {
            Place::Local(root) => match std::fs::read(root.join(&key)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(StorageError::io(
                    format!("reading {key} of repository {}", self.location),
                    "check the repository's disk and permissions",
                    e,
                )),
            },
            Place::S3(client) => Ok(client.get(&key)?),
        }
    }
}
