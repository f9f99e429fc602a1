//! The key file of a repository drydock creates, written by drydock so that deriving
//! the key from the password needs 32 MiB instead of 128 MiB.
//!
//! rustic_core 0.13 always writes scrypt's "recommended" parameters (N = 2^17, r = 8:
//! a 128 MiB work area), and every command opens the repository once, so that area was
//! the floor of every command's peak memory (heaptrack: ~130 of ~140 MiB RSS). restic
//! calibrates its parameters to at most 60 MiB. Here N = 2^15, r = 8 (32 MiB) and
//! p = 4, which makes a guess cost the same scrypt work as rustic's parameters, done in
//! a quarter of the memory. The file is restic's format (the master key as JSON,
//! encrypted with AES-256-CTR + Poly1305-AES under the scrypt output, nonce first, MAC
//! last), so restic and rustic open the repository as before; keys written earlier
//! (with rustic's parameters) keep working, their parameters are read from the file.

use rustic_core::repofile::{KeyFile, KeyId, MasterKey};
use rustic_core::{FileType, Id, RepositoryBackends, WriteBackend};
use sha2::{Digest, Sha256};

use crate::{error::StorageError, sealed::seal};

/// scrypt's cost: N = 2^15 blocks of 128 * r bytes (32 MiB), p rounds of it.
pub(crate) const KDF_LOG_N: u8 = 15;
pub(crate) const KDF_R: u32 = 8;
pub(crate) const KDF_P: u32 = 4;

/// The bytes of a new key file that opens `master` with `password`.
fn key_file_bytes(master: &MasterKey, password: &str) -> Vec<u8> {
    let params =
        scrypt::Params::new(KDF_LOG_N, KDF_R, KDF_P).expect("constant scrypt parameters are valid");
    let mut salt = vec![0u8; 64];
    rand::fill(salt.as_mut_slice());
    let mut derived = [0u8; 64];
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut derived)
        .expect("64 bytes is a valid scrypt output length");
    let plain = serde_json::to_vec(master).expect("a master key serializes");
    let data = seal(&derived, &plain);
    let file = KeyFile {
        hostname: Some(crate::host::this_host()).filter(|h| !h.is_empty()),
        username: None,
        created: Some(rustic_core::jiff::Zoned::now()),
        kdf: "scrypt".to_string(),
        n: 1 << KDF_LOG_N,
        r: KDF_R,
        p: KDF_P,
        data,
        salt,
    };
    serde_json::to_vec(&file).expect("a key file serializes")
}

/// Replaces the key file rustic wrote when it created the repository (`written`) with
/// one of drydock's parameters. The new file is written before the old one is removed,
/// so a crash in between leaves two keys that both open the repository.
pub(crate) fn replace_created_key(
    backends: &RepositoryBackends,
    location: &str,
    master: &MasterKey,
    password: &str,
    written: &Option<KeyId>,
) -> Result<(), StorageError> {
    let bytes = key_file_bytes(master, password);
    let id: Id = hex::encode(Sha256::digest(&bytes))
        .parse()
        .expect("a SHA-256 is an id");
    let backend = backends.repository();
    let failed = |doing: &str, e: &rustic_core::RusticError| {
        StorageError::engine(format!("{doing} key file of repository {location}"), e)
    };
    backend
        .write_bytes(FileType::Key, &id, false, bytes.into())
        .map_err(|e| failed("writing the", &e))?;
    if let Some(old) = written {
        let old: Id = old.to_hex().parse().expect("a key id is an id");
        backend
            .remove(FileType::Key, &old, false)
            .map_err(|e| failed("removing rustic's", &e))?;
    }
    Ok(())
}
