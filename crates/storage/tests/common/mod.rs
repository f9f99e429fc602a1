//! Helpers shared by the storage integration tests.
#![allow(dead_code)]

pub mod s3;

use std::path::{Path, PathBuf};

use drydock_storage::{Repository, SnapshotMeta};
use sha2::{Digest, Sha256};

pub const PASSWORD: &str = "t3st-password-never-shown";

/// A fresh repository in a temporary directory (kept alive by the guard).
pub fn new_repo() -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(&dir.path().join("repo"), PASSWORD).unwrap();
    (dir, repo)
}

pub fn meta(path: &str, tags: &[&str]) -> SnapshotMeta {
    SnapshotMeta {
        path: path.to_string(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        hostname: "testhost".to_string(),
        label: None,
    }
}

/// Deterministic incompressible bytes (xorshift64*).
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Every file and directory below `root` (inclusive).
pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = vec![root.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        if std::fs::symlink_metadata(&p).unwrap().is_dir() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            children.sort();
            out.extend(children);
        }
        i += 1;
    }
    out
}
