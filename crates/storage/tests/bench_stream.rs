//! Throughput of a large stream through a pipe (short reads), backed up and
//! dumped back. Ignored by default; run with
//! `cargo test -p drydock-storage --release --test bench_stream -- --ignored --nocapture`
//! (DRYDOCK_BENCH_MIB sets the size, default 1024).

mod common;

use std::{io::Write, time::Instant};

use common::{meta, new_repo, random_bytes};
use sha2::{Digest, Sha256};

#[test]
#[ignore]
fn bench_large_stream_through_a_pipe() {
    let mib: usize = std::env::var("DRYDOCK_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let (_dir, repo) = new_repo();
    let (reader, mut writer) = std::io::pipe().unwrap();
    let producer = std::thread::spawn(move || {
        let mut hasher = Sha256::new();
        for i in 0..mib {
            let block = random_bytes(1024 * 1024, i as u64 + 1);
            hasher.update(&block);
            writer.write_all(&block).unwrap();
        }
        hex::encode(hasher.finalize())
    });
    let started = Instant::now();
    let stored = repo
        .backup_stream(Box::new(reader), &meta("bench/stream.bin", &["bench"]))
        .unwrap();
    let backup = started.elapsed();
    let sent = producer.join().unwrap();
    assert_eq!(stored.sha256.as_deref(), Some(sent.as_str()));
    assert_eq!(stored.logical_bytes, (mib * 1024 * 1024) as u64);

    let started = Instant::now();
    let mut sink = std::io::sink();
    let (n, sha) = repo.dump_stream(&stored.id, &mut sink).unwrap();
    let dump = started.elapsed();
    assert_eq!(n, stored.logical_bytes);
    assert_eq!(sha, sent);
    eprintln!(
        "{mib} MiB: backup {:.1} s ({:.0} MiB/s), dump {:.1} s, added {} bytes",
        backup.as_secs_f64(),
        mib as f64 / backup.as_secs_f64(),
        dump.as_secs_f64(),
        stored.added_bytes
    );
}
