//! The reader every byte going into the repository passes through, and the
//! writer every dumped byte leaves through.
//!
//! [`HashingReader`] handles three engine pitfalls in one place:
//! - it fills the caller's buffer completely (until full or end of input):
//!   rustic's chunker shrinks its read buffer to the size of any short read
//!   and never grows it back, so a pipe's short reads make a stream crawl;
//! - it computes the SHA-256 of exactly the bytes handed to the chunker in
//!   the same pass (no extra copy), which is what drydock records in its
//!   manifest;
//! - it records a read error in a shared [`ReadOutcome`], because rustic only
//!   logs a failed file and saves the snapshot without it; the caller checks
//!   the outcome after `archive` and throws such a snapshot away.

use std::{
    io::{self, Read, Write},
    sync::{Arc, Mutex, PoisonError},
};

use sha2::{Digest, Sha256};

/// What happened to one reader, observed after the engine is done with it.
#[derive(Debug, Default, Clone)]
pub(crate) struct ReadOutcome {
    /// Bytes handed to the engine.
    pub bytes: u64,
    /// SHA-256 (hex) of those bytes, set only once the end of input was seen.
    pub sha256: Option<String>,
    /// The first read error, if any.
    pub error: Option<String>,
    /// The engine dropped the reader before its end without a read error
    /// (it failed elsewhere, e.g. writing a pack).
    pub abandoned: bool,
    /// The file was deleted between listing and opening it; it is simply not
    /// part of the snapshot.
    pub vanished: bool,
}

impl ReadOutcome {
    /// Whether the engine is done with this input (read to its end, failed, dropped or
    /// found gone).
    pub(crate) fn settled(&self) -> bool {
        self.sha256.is_some() || self.error.is_some() || self.abandoned || self.vanished
    }

    /// `Ok((bytes, sha256))` when the input was read completely.
    pub(crate) fn complete(&self) -> Result<(u64, String), String> {
        if let Some(err) = &self.error {
            return Err(err.clone());
        }
        match &self.sha256 {
            Some(sha) => Ok((self.bytes, sha.clone())),
            None if self.abandoned => Err(format!(
                "the engine stopped reading after {} bytes (a repository write failed, e.g. a full disk; see the log)",
                self.bytes
            )),
            None => Err("the input was never read".to_string()),
        }
    }
}

pub(crate) type OutcomeSlot = Arc<Mutex<ReadOutcome>>;

pub(crate) fn new_slot() -> OutcomeSlot {
    Arc::new(Mutex::new(ReadOutcome::default()))
}

pub(crate) fn read_slot(slot: &OutcomeSlot) -> ReadOutcome {
    slot.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Full-fill, hashing, error-recording reader (see the module doc).
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Option<Sha256>,
    bytes: u64,
    slot: OutcomeSlot,
    failed: bool,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R, slot: OutcomeSlot) -> Self {
        Self {
            inner,
            hasher: Some(Sha256::new()),
            bytes: 0,
            slot,
            failed: false,
        }
    }

    fn finish(&mut self) {
        if let Some(hasher) = self.hasher.take() {
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            slot.bytes = self.bytes;
            slot.sha256 = Some(hex::encode(hasher.finalize()));
        }
    }

    fn fail(&mut self, err: &io::Error) {
        self.failed = true;
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        slot.bytes = self.bytes;
        if slot.error.is_none() {
            slot.error = Some(format!("after {} bytes: {err}", self.bytes));
        }
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("an earlier read of this input failed"));
        }
        if buf.is_empty() || self.hasher.is_none() {
            return Ok(0);
        }
        let mut filled = 0;
        while filled < buf.len() {
            match self.inner.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(&e);
                    return Err(e);
                }
            }
        }
        if filled == 0 {
            self.finish();
        } else if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(&buf[..filled]);
            self.bytes += filled as u64;
        }
        Ok(filled)
    }
}

impl<R> Drop for HashingReader<R> {
    fn drop(&mut self) {
        if self.hasher.is_some() && !self.failed {
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            slot.bytes = self.bytes;
            slot.abandoned = true;
        }
    }
}

/// Passes bytes to `inner`, hashing and counting what `inner` accepted.
pub(crate) struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hasher: Sha256,
    bytes: u64,
    /// The first write error, kept because rustic wraps it into its own type.
    pub(crate) error: Option<io::Error>,
}

impl<'a> HashingWriter<'a> {
    pub(crate) fn new(inner: &'a mut dyn Write) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
            error: None,
        }
    }

    pub(crate) fn finish(self) -> (u64, String) {
        (self.bytes, hex::encode(self.hasher.finalize()))
    }
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.write(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.bytes += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted && self.error.is_none() {
                    self.error = Some(io::Error::new(e.kind(), e.to_string()));
                }
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns one byte per call, like a slow pipe.
    struct Trickle(Vec<u8>, usize);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 >= self.0.len() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[self.1];
            self.1 += 1;
            Ok(1)
        }
    }

    #[test]
    fn short_reads_are_coalesced_into_full_buffers() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let slot = new_slot();
        let mut r = HashingReader::new(Trickle(data.clone(), 0), slot.clone());
        let mut buf = [0u8; 4096];
        assert_eq!(r.read(&mut buf).unwrap(), 4096);
        assert_eq!(r.read(&mut buf).unwrap(), 4096);
        assert_eq!(r.read(&mut buf).unwrap(), 10_000 - 8192);
        assert_eq!(r.read(&mut buf).unwrap(), 0);
        drop(r);
        let (bytes, sha) = read_slot(&slot).complete().unwrap();
        assert_eq!(bytes, 10_000);
        assert_eq!(sha, hex::encode(Sha256::digest(&data)));
    }

    #[test]
    fn a_read_error_is_recorded() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("pg_dump exited with status 1"))
            }
        }
        let slot = new_slot();
        let mut r = HashingReader::new(Broken, slot.clone());
        assert!(r.read(&mut [0u8; 16]).is_err());
        drop(r);
        let err = read_slot(&slot).complete().unwrap_err();
        assert!(err.contains("pg_dump exited"), "{err}");
    }

    #[test]
    fn a_reader_dropped_before_its_end_is_not_complete() {
        let slot = new_slot();
        let mut r = HashingReader::new(&b"abcdef"[..], slot.clone());
        assert_eq!(r.read(&mut [0u8; 3]).unwrap(), 3);
        drop(r);
        let outcome = read_slot(&slot);
        assert!(outcome.abandoned);
        assert!(outcome.complete().is_err());
    }

    #[test]
    fn writer_hashes_what_it_wrote() {
        let mut out = Vec::new();
        let mut w = HashingWriter::new(&mut out);
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (n, sha) = w.finish();
        assert_eq!(n, 11);
        assert_eq!(sha, hex::encode(Sha256::digest(b"hello world")));
        assert_eq!(out, b"hello world");
    }
}
