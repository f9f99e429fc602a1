//! Creating a repository copy in an S3 bucket that other hosts may be creating at the
//! same moment, and opening one that such a race left extra keys in.
//!
//! S3 (Garage included) has no create-if-absent: hosts that find no config under one
//! prefix at the same moment each write a key and a config, and the last config stays.
//! A host whose config was overwritten would go on writing packs, indexes and snapshots
//! under a master key no config in the bucket matches: data no other host (nor restic)
//! can read. So a creator writes its key and config, waits for the others to finish
//! theirs ([`SETTLE`], or twice as long as its own creation took if that is longer), and
//! reads the config back with its own master key: the host whose config is there won;
//! every other removes its key and opens the winner's repository with the password.
//! A host that finds a config younger than [`SETTLE`] waits until it is that old before
//! opening it, so it never takes a config that is about to be overwritten. Opening with the
//! password tries every key the password opens until one reads the config, so a key
//! left by a creator that lost and died before removing it does not block the copy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustic_core::{
    repofile::{ConfigFile, KeyFile, MasterKey},
    Credentials, KeyOptions, OpenStatus, Repository as Engine, RepositoryBackends,
};

use crate::{error::StorageError, key_file, s3::S3Client};

/// How long a creator waits before reading the config back; longer than the time
/// between another creator's "no config here" and its config being written.
pub(crate) const SETTLE: Duration = Duration::from_secs(5);

/// Creates the repository with `config` under the client's prefix; returns the engine
/// of the repository that is there once concurrent creators are done (ours, or the
/// one that won).
pub(crate) fn create(
    client: &Arc<S3Client>,
    backends: &RepositoryBackends,
    location: &str,
    password: &str,
    config: ConfigFile,
    options: &rustic_core::RepositoryOptions,
) -> Result<Engine<OpenStatus>, StorageError> {
    let began = Instant::now();
    let ours = Engine::new(options, backends)
        .and_then(|r| {
            r.init_with_config(
                &Credentials::password(password),
                &KeyOptions::default(),
                config,
            )
        })
        .map_err(|e| StorageError::engine(format!("creating repository at {location}"), &e))?;
    std::thread::sleep(SETTLE.max(began.elapsed() * 2));
    let still_ours = Engine::new(options, backends)
        .and_then(|r| r.open(&Credentials::Masterkey(ours.key())))
        .is_ok_and(|r| r.config().id == ours.config().id);
    if still_ours {
        key_file::replace_created_key(backends, location, &ours.key(), password, ours.key_id())?;
        return Ok(ours);
    }
    // Another host's config replaced ours: our key opens nothing; remove it.
    if let Some(id) = ours.key_id() {
        client.delete(&format!("keys/{}", id.to_hex().as_str()))?;
    }
    log::info!("repository {location}: another host created it at the same moment; using that one");
    open_with_password(client, backends, location, password, options)
}

/// Waits out a config young enough to be overwritten still (see the module doc).
pub(crate) fn wait_if_young(client: &S3Client) -> Result<(), StorageError> {
    let listed = client.list("config")?;
    let Some(modified) = listed
        .iter()
        .find(|o| o.key == "config")
        .and_then(|o| o.last_modified)
    else {
        return Ok(());
    };
    // Listings give whole seconds: one more; a config "from the future" (this host's
    // clock behind the server's) gets the whole wait.
    let age = jiff::Timestamp::now().duration_since(modified);
    let wait = match Duration::try_from(age) {
        Ok(age) => (SETTLE + Duration::from_secs(1)).saturating_sub(age),
        Err(_) => SETTLE + Duration::from_secs(1),
    };
    std::thread::sleep(wait);
    Ok(())
}

/// Opens the repository with the password: rustic's way (the first key the password
/// opens), else every key the password opens in turn until one reads the config.
pub(crate) fn open_with_password(
    client: &S3Client,
    backends: &RepositoryBackends,
    location: &str,
    password: &str,
    options: &rustic_core::RepositoryOptions,
) -> Result<Engine<OpenStatus>, StorageError> {
    let first = match Engine::new(options, backends)
        .and_then(|r| r.open(&Credentials::password(password)))
    {
        Ok(engine) => return Ok(engine),
        Err(e) if e.is_incorrect_password() => {
            return Err(StorageError::WrongPassword {
                location: location.to_string(),
            })
        }
        Err(e) => e,
    };
    for object in client.list("keys")? {
        let Some(bytes) = client.get(&object.key)? else {
            continue;
        };
        let Some(master) = master_key(&bytes, password) else {
            continue;
        };
        if let Ok(engine) =
            Engine::new(options, backends).and_then(|r| r.open(&Credentials::Masterkey(master)))
        {
            log::warn!(
                "repository {location}: key {} does not open the config (left by a host that lost a race to create the copy); remove it with `restic key remove`",
                object.key
            );
            return Ok(engine);
        }
    }
    Err(StorageError::engine(
        format!("opening repository at {location}"),
        &first,
    ))
}

/// The master key in key file `bytes`, if `password` opens it.
fn master_key(bytes: &[u8], password: &str) -> Option<MasterKey> {
    let file: KeyFile = serde_json::from_slice(bytes).ok()?;
    let (encrypt, k, r) = file.key_from_password(&password).ok()?.to_keys();
    let b64 = |v: &[u8]| base64::engine::general_purpose::STANDARD.encode(v);
    serde_json::from_value(serde_json::json!({
        "mac": { "k": b64(&k), "r": b64(&r) },
        "encrypt": b64(&encrypt),
    }))
    .ok()
}
