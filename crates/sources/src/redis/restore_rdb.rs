//! A restore without a throwaway server: every key of the backup's RDB goes into the
//! target with `RESTORE ... REPLACE ABSTTL`, its payload cut from the file itself
//! (`rdb_parse::walk`), batches of keys on [`READERS`] connections at once.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use drydock_domain::Event;
use redis::{Connection, Value};

use crate::{SourceContext, SourceError};

use super::connect::Redis;
use super::fingerprint::{READERS, SCAN_COUNT};
use super::rdb_parse::{walk, RdbKey, Stop};

/// A batch closes at this many payload bytes (or [`SCAN_COUNT`] keys), so a few large
/// values do not pile up in memory.
const BATCH_BYTES: usize = 8 << 20;

/// One database's keys, sent to a writer together.
struct Batch {
    db: u32,
    keys: Vec<RdbKey>,
    bytes: usize,
}

impl Redis {
    /// Writes every key of the RDB at `rdb` into the target (already flushed). The file
    /// was read and proven before; `now_ms` must be the time it was proven at, so the
    /// same keys (not the expired ones) are written.
    pub(super) fn restore_from_rdb(
        &self,
        rdb: &Path,
        now_ms: i64,
        ctx: &SourceContext<'_>,
    ) -> Result<(), SourceError> {
        let loc = self.loc();
        let file = std::fs::File::open(rdb)
            .map_err(|e| SourceError::io(&loc, "opening the RDB file to restore it", e))?;
        let (tx, rx) = mpsc::sync_channel::<Batch>(READERS * 2);
        // Shared by the writers only, so that when all of them have stopped the channel
        // closes and the walk stops.
        let rx = Arc::new(Mutex::new(rx));
        let moved = AtomicU64::new(0);
        std::thread::scope(|s| {
            let writers: Vec<_> = (0..READERS)
                .map(|_| {
                    let rx = Arc::clone(&rx);
                    let moved = &moved;
                    s.spawn(move || -> Result<(), SourceError> {
                        let mut con = self.connect()?;
                        let mut on_db = None;
                        loop {
                            let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                            let Ok(batch) = next else {
                                return Ok(());
                            };
                            if on_db != Some(batch.db) {
                                self.select(&mut con, batch.db)?;
                                on_db = Some(batch.db);
                            }
                            self.write_batch(&mut con, &batch)?;
                            let total = moved.fetch_add(batch.bytes as u64, Ordering::Relaxed)
                                + batch.bytes as u64;
                            ctx.events.emit(Event::Progress {
                                source: ctx.label.to_string(),
                                bytes: total,
                            });
                        }
                    })
                })
                .collect();
            drop(rx);
            let mut batch = Batch {
                db: 0,
                keys: Vec::new(),
                bytes: 0,
            };
            let walked = walk(file, now_ms, true, |key| {
                if key.db != batch.db && !batch.keys.is_empty() {
                    let full = std::mem::replace(
                        &mut batch,
                        Batch {
                            db: key.db,
                            keys: Vec::new(),
                            bytes: 0,
                        },
                    );
                    tx.send(full).map_err(drop)?;
                }
                batch.db = key.db;
                batch.bytes += key.payload.len();
                batch.keys.push(key);
                if batch.keys.len() >= SCAN_COUNT || batch.bytes >= BATCH_BYTES {
                    let db = batch.db;
                    let full = std::mem::replace(
                        &mut batch,
                        Batch {
                            db,
                            keys: Vec::new(),
                            bytes: 0,
                        },
                    );
                    tx.send(full).map_err(drop)?;
                }
                Ok::<(), ()>(())
            });
            let walked = match walked {
                Ok(()) if !batch.keys.is_empty() => tx.send(batch).map_err(|_| Stop::Visit(())),
                other => other,
            };
            drop(tx);
            // A writer's error first: it is why the walk stopped, when it did.
            for w in writers {
                w.join().expect("a key writer panicked")?;
            }
            match walked {
                Ok(()) => Ok(()),
                Err(Stop::Rdb(e)) => Err(SourceError::invalid(
                    &loc,
                    format!("{e} (while restoring; the instance holds part of the backup: restore again)"),
                )),
                Err(Stop::Visit(())) => Err(SourceError::invalid(
                    &loc,
                    "the key writers stopped before the RDB was written (restore again)",
                )),
            }
        })
    }

    fn select(&self, con: &mut Connection, db: u32) -> Result<(), SourceError> {
        redis::cmd("SELECT").arg(db).query::<Value>(con).map_err(|e| {
            self.query_err(&format!("SELECT {db} (the backup has keys in db {db}; does the target allow that many databases?)"), e)
        })?;
        Ok(())
    }

    /// One pipeline of `RESTORE key abs-ms payload REPLACE ABSTTL` (0: no expiry).
    fn write_batch(&self, con: &mut Connection, batch: &Batch) -> Result<(), SourceError> {
        let mut pipe = redis::pipe();
        for k in &batch.keys {
            pipe.cmd("RESTORE")
                .arg(k.key.as_slice())
                .arg(k.expires_at_ms.unwrap_or(0))
                .arg(k.payload.as_slice())
                .arg("REPLACE")
                .arg("ABSTTL")
                .ignore();
        }
        pipe.query::<()>(con).map_err(|e| self.restore_err(e))
    }

    /// A failed RESTORE, with the likely cause of a payload version it refuses.
    pub(super) fn restore_err(&self, e: redis::RedisError) -> SourceError {
        let mut err = self.query_err("RESTORE", e);
        if let SourceError::Query { cause, .. } = &mut err {
            if cause.contains("payload version") {
                cause.push_str(" (the target runs an older Redis than the one that wrote the backup; restore into a Redis at least as new)");
            }
        }
        err
    }
}
