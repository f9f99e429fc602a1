//! What a backup proves about the archive it stored: the archive's table of contents
//! is kept while the dump streams ([`PrefixTee`]), and the custom format read back
//! must hold every table's rows (as many as the snapshot counts), every sequence's
//! `setval` and nothing after its last block; the rows read are the tables' digests.

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use drydock_domain::Fingerprint;

use crate::proof;
use crate::SourceError;

/// The archive format recorded in the manifest.
pub const FORMAT: &str = "pg_dump-custom";

/// How much of the start of a dump is kept to read its table of contents.
pub(super) const TOC_PREFIX_CAP: usize = 16 << 20;

/// Passes a dump through while keeping its first [`TOC_PREFIX_CAP`] bytes.
pub(super) struct PrefixTee<R> {
    pub(super) inner: R,
    pub(super) prefix: Arc<Mutex<Vec<u8>>>,
}

impl<R: Read> Read for PrefixTee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut prefix = self.prefix.lock().unwrap();
        let room = TOC_PREFIX_CAP.saturating_sub(prefix.len()).min(n);
        prefix.extend_from_slice(&buf[..room]);
        Ok(n)
    }
}

/// The error for a dump tool that exited 0 with an archive that does not prove the data.
pub(super) fn incomplete(program: &Path, location: &str, problem: String) -> SourceError {
    SourceError::IncompleteDump {
        tool: program
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        location: location.to_string(),
        problem,
    }
}

/// Checks that `archive` (what the stored bytes hold) has every table of the snapshot's
/// counts with exactly that many rows, and a value for every sequence; returns the
/// fingerprint with each table's digest taken from the archive's rows ([`CopyRows`]),
/// the same digest a restored or live table is read back to.
///
/// [`CopyRows`]: crate::proof::CopyRows
pub(super) fn prove_archive(
    archive: &proof::PgArchive,
    counted: &Fingerprint,
) -> Result<Fingerprint, String> {
    let mut parts = counted.parts.clone();
    for (name, part) in parts.iter_mut() {
        if name.starts_with(drydock_domain::fingerprint::SCHEMA_PREFIX) {
            continue;
        }
        if let Some(seq) = name.strip_prefix("seq:") {
            if !archive.sequences.contains(seq) {
                return Err(format!(
                    "its archive has no value (setval) for sequence {seq}"
                ));
            }
            continue;
        }
        match archive.tables.get(name) {
            None => {
                return Err(format!(
                    "its archive has no data for table {name} (the snapshot has {} rows)",
                    part.count
                ))
            }
            Some(dumped) if dumped.count != part.count => {
                return Err(format!(
                    "its archive holds {} rows of table {name} (the snapshot has {} rows)",
                    dumped.count, part.count
                ))
            }
            Some(dumped) => part.digest.clone_from(&dumped.digest),
        }
    }
    Ok(Fingerprint::from_parts(parts))
}
