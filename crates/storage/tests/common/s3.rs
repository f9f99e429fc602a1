//! The S3 side of the storage tests: options for a copy in the test's Garage bucket
//! with short retry waits, and the real `restic` pointed at a prefix of it.

use std::process::{Command, Output};
use std::time::Duration;

use drydock_storage::{S3Options, S3Tuning};
use drydock_testkit::garage::{GarageServer, REGION};

use super::PASSWORD;

/// A copy under `prefix` of `garage`'s bucket, reached through `endpoint` (the server,
/// or a fault proxy in front of it). Short waits keep the fault tests quick; the retry
/// logic is the same.
pub fn options(garage: &GarageServer, endpoint: &str, prefix: &str) -> S3Options {
    S3Options {
        endpoint: endpoint.to_string(),
        region: REGION.to_string(),
        bucket: garage.bucket.clone(),
        prefix: prefix.to_string(),
        path_style: true,
        access_key_id: garage.access_key_id.clone(),
        secret_access_key: garage.secret_access_key.clone(),
        tuning: S3Tuning {
            attempts: 6,
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(2),
        },
    }
}

/// `restic ARGS` on the repository under `prefix`, with its own cache.
pub fn restic(garage: &GarageServer, prefix: &str, args: &[&str]) -> Output {
    let cache = tempfile::tempdir().unwrap();
    Command::new("restic")
        .arg("-r")
        .arg(garage.restic_repo(prefix))
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("AWS_ACCESS_KEY_ID", &garage.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &garage.secret_access_key)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("RESTIC_CACHE_DIR", cache.path())
        .output()
        .unwrap()
}
