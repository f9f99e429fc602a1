//! restic's encryption of a whole file: AES-256-CTR + Poly1305-AES under a 64-byte key
//! (32 encryption, 16 MAC k, 16 MAC r), written as nonce, ciphertext, MAC. Lock files
//! (under the master key) and key files (under the password's scrypt output) both use it.

use aes256ctr_poly1305aes::aead::Aead;
use aes256ctr_poly1305aes::{Aes256CtrPoly1305Aes, Key, Nonce};

/// `plain` encrypted under `key` with a random nonce, as restic stores it.
pub(crate) fn seal(key: &[u8; 64], plain: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; 16];
    rand::fill(&mut nonce);
    let sealed = Aes256CtrPoly1305Aes::new(Key::from_slice(key))
        .encrypt(Nonce::from_slice(&nonce), plain)
        .expect("encryption of a buffer in memory cannot fail");
    let mut file = nonce.to_vec();
    file.extend_from_slice(&sealed);
    file
}
