//! Several hosts creating one S3 copy at the same moment (real Garage): each host's
//! first sync finds no repository under the prefix and creates one. Whatever the
//! interleaving, the bucket must end with one repository (one config, every key
//! opening the same master key), every host's snapshots in it readable by every
//! other host and by restic, byte-exact. And a key left behind by a host that lost the
//! race (and died before removing it) does not keep the copy from opening.

mod common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::s3::restic;
use common::{meta, new_repo, random_bytes, sha256_hex, PASSWORD};
use drydock_storage::s3::S3Client;
use drydock_storage::{Repository, S3Options};
use drydock_testkit::garage::GarageServer;

const HOSTS: usize = 4;

/// The shared options, with room for several hosts' requests at once.
fn options(garage: &GarageServer, prefix: &str) -> S3Options {
    let mut opts = common::s3::options(garage, &garage.endpoint(), prefix);
    opts.tuning.io_timeout = Duration::from_secs(5);
    opts
}

#[test]
fn hosts_creating_one_s3_copy_at_once_end_with_one_repository_all_can_read() {
    let garage = GarageServer::start();
    for round in 0..3 {
        let prefix = format!("fleet-{round}");
        // Each host: its own local repository (own master key and chunker parameters)
        // with one snapshot of its own data.
        let hosts: Vec<_> = (0..HOSTS)
            .map(|h| {
                let (dir, repo) = new_repo();
                let data = random_bytes(300_000 + h * 1000, (round * 10 + h) as u64);
                let id = repo
                    .backup_stream(
                        Box::new(std::io::Cursor::new(data.clone())),
                        &meta(&format!("db/host{h}.dump"), &["drydock"]),
                    )
                    .unwrap()
                    .id;
                (dir, repo, id, data)
            })
            .collect();
        let barrier = Arc::new(Barrier::new(HOSTS));
        let copied: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = hosts
                .iter()
                .map(|(_, local, id, _)| {
                    let (barrier, opts) = (Arc::clone(&barrier), options(&garage, &prefix));
                    s.spawn(move || {
                        barrier.wait();
                        let remote = Repository::open_or_init_s3(&opts, PASSWORD, local)
                            .unwrap_or_else(|e| panic!("round {round}: open or create: {e}"));
                        let c = local
                            .copy_to(&remote, std::slice::from_ref(id))
                            .unwrap_or_else(|e| panic!("round {round}: copy: {e}"));
                        c[0].dest_id.clone()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });

        // One repository: restic sees one key, and every host's snapshot in it.
        let keys = restic(&garage, &prefix, &["key", "list", "--json", "--no-lock"]);
        assert!(
            keys.status.success(),
            "{}",
            String::from_utf8_lossy(&keys.stderr)
        );
        let keys: Vec<serde_json::Value> = serde_json::from_slice(&keys.stdout).unwrap();
        assert_eq!(keys.len(), 1, "round {round}: keys in the copy: {keys:?}");
        let fresh = Repository::open_s3(&options(&garage, &prefix), PASSWORD).unwrap();
        assert_eq!(fresh.snapshots().unwrap().len(), HOSTS, "round {round}");
        for ((_, _, _, data), id) in hosts.iter().zip(&copied) {
            let mut out = Vec::new();
            let (_, sha) = fresh
                .dump_stream(id, &mut out)
                .unwrap_or_else(|e| panic!("round {round}: reading {id}: {e}"));
            assert_eq!(sha, sha256_hex(data), "round {round}: snapshot {id}");
        }
        let check = restic(&garage, &prefix, &["check", "--read-data"]);
        assert!(
            check.status.success(),
            "round {round}: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
    }
}

#[test]
fn a_key_left_by_a_host_that_lost_the_race_does_not_block_the_copy() {
    let garage = GarageServer::start();
    let (_dir, local) = new_repo();
    let data = random_bytes(200_000, 99);
    let id = local
        .backup_stream(
            Box::new(std::io::Cursor::new(data.clone())),
            &meta("db/main.dump", &["drydock"]),
        )
        .unwrap()
        .id;
    let opts = options(&garage, "fleet");
    let remote = Repository::open_or_init_s3(&opts, PASSWORD, &local).unwrap();
    let copied = local.copy_to(&remote, std::slice::from_ref(&id)).unwrap();
    let client = S3Client::new(&opts).unwrap();
    let ours = client.list("keys/").unwrap()[0].key.clone();
    // A key of another repository under the same password, named before ours in the
    // listing (what `open` tries first): the loser's key, never removed.
    let mut n = 0;
    let stray = loop {
        n += 1;
        assert!(n < 20, "no stray key sorting before ours");
        let other = options(&garage, &format!("other-{n}"));
        Repository::open_or_init_s3(&other, PASSWORD, &local).unwrap();
        let other_client = S3Client::new(&other).unwrap();
        let key = other_client.list("keys/").unwrap()[0].key.clone();
        if key < ours {
            break (key.clone(), other_client.get(&key).unwrap().unwrap());
        }
    };
    client.put(&stray.0, &stray.1).unwrap();
    let reopened = Repository::open_s3(&opts, PASSWORD).unwrap();
    let mut out = Vec::new();
    let (_, sha) = reopened.dump_stream(&copied[0].dest_id, &mut out).unwrap();
    assert_eq!(sha, sha256_hex(&data));
}
