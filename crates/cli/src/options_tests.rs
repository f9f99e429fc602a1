//! The command line and the engine's plain-data options agree: every options struct
//! survives a trip through JSON (a schedule stores it, an HTTP body carries it), and a
//! command given no flags runs with its options' `Default`, so a daemon that builds
//! `Default` options does what the same command typed without flags does.
//!
//! Where a command differs, the test says why: `populate` and `certify` need a service
//! and `init` a Compose file (no default makes sense), `verify`'s `read_data` is two
//! flags, `init`'s `output` is the global `--config`, `restore` needs a backup and a
//! selection (`--service` or `--all`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use drydock_domain::plan::Selection;
use drydock_domain::Priority;
use drydock_engine::certify::CertifyOptions;
use drydock_engine::diagnose::DiagnoseOptions;
use drydock_engine::drill::DrillOptions;
use drydock_engine::heal::HealOptions;
use drydock_engine::health::HealthOptions;
use drydock_engine::init::InitOptions;
use drydock_engine::populate::PopulateOptions;
use drydock_engine::prune::PruneOptions;
use drydock_engine::restore::{BackupRef, RestoreOptions};
use drydock_engine::sync::SyncOptions;
use drydock_engine::verify::VerifyOptions;
use drydock_storage::ReadData;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::cli::{Cli, Command};

fn json(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap()
}

/// `value` written as JSON and read back is the same value (compared as JSON: the
/// options need no `PartialEq` for this).
fn round_trips<T: Serialize + DeserializeOwned>(value: T) {
    let text = serde_json::to_string(&value).unwrap();
    let back: T = serde_json::from_str(&text).unwrap();
    assert_eq!(json(&back), json(&value), "{text}");
}

fn command(args: &[&str]) -> Command {
    let mut line = vec!["drydock"];
    line.extend_from_slice(args);
    Cli::try_parse_from(line).unwrap().command
}

#[test]
fn every_options_struct_round_trips_through_json() {
    // Values away from the defaults, so a field serde forgot would show.
    round_trips(Selection {
        all: false,
        priorities: vec![Priority::Critical, Priority::Low],
        services: vec!["db".into()],
    });
    round_trips(SyncOptions {
        copy: Some("offsite".into()),
    });
    round_trips(PruneOptions {
        dry_run: true,
        copy: Some("local".into()),
    });
    round_trips(VerifyOptions {
        backup: Some("20261122-083000-ab3k9z".into()),
        copy: Some("offsite".into()),
        read_data: ReadData::Percent(12.5),
    });
    round_trips(HealthOptions {
        services: vec!["web".into()],
        record: false,
    });
    round_trips(DiagnoseOptions {
        services: vec!["web".into()],
        lines: 7,
    });
    round_trips(HealOptions {
        services: vec!["web".into()],
        dry_run: true,
        attempts: 1,
        wait: Duration::from_millis(1500),
        backoff: Duration::from_secs(9),
    });
    round_trips(PopulateOptions {
        service: "app".into(),
        seed: 42,
        min_bytes: 4096,
    });
    round_trips(InitOptions {
        compose: "compose.yaml".into(),
        output: "drydock.toml".into(),
        project: Some("shop".into()),
        force: true,
    });
    round_trips(RestoreOptions {
        backup: BackupRef::Id("20261122-083000-ab3k9z".into()),
        from: Some("offsite".into()),
        services: vec!["app".into()],
        all: false,
        force: true,
        stop: true,
        sources: vec!["app/db".into()],
    });
    round_trips(DrillOptions {
        services: vec!["app".into()],
        use_backup: Some(BackupRef::Latest),
        report: Some(PathBuf::from("drill")),
        destructive: true,
        force: true,
    });
    round_trips(CertifyOptions {
        service: "app".into(),
        restart: true,
        force: true,
        seed: 3,
        report: Some(PathBuf::from("certify")),
    });
}

#[test]
fn a_command_without_flags_runs_with_its_options_default() {
    let Command::Backup(a) = command(&["backup"]) else {
        unreachable!()
    };
    assert_eq!(a.selection, Selection::default());
    let Command::Sync(a) = command(&["sync"]) else {
        unreachable!()
    };
    assert_eq!(json(&a.options), json(&SyncOptions::default()));
    let Command::Prune(a) = command(&["prune"]) else {
        unreachable!()
    };
    assert_eq!(json(&a.options), json(&PruneOptions::default()));
    let Command::Health(a) = command(&["health"]) else {
        unreachable!()
    };
    assert_eq!(json(&a.options), json(&HealthOptions::default()));
    let Command::Diagnose(a) = command(&["diagnose"]) else {
        unreachable!()
    };
    assert_eq!(json(&a.options), json(&DiagnoseOptions::default()));
    let Command::Heal(a) = command(&["heal"]) else {
        unreachable!()
    };
    assert_eq!(json(&a.options), json(&HealOptions::default()));
    // `read_data` is the CLI's two flags, turned into `ReadData::None` without them.
    let Command::Verify(a) = command(&["verify"]) else {
        unreachable!()
    };
    assert!(!a.read_data && a.read_data_subset.is_none() && !a.live);
    assert_eq!(json(&a.options), json(&VerifyOptions::default()));

    // A service (a Compose file) is required: the rest is the default.
    let Command::Populate(a) = command(&["populate", "app"]) else {
        unreachable!()
    };
    let expected = PopulateOptions {
        service: "app".into(),
        ..PopulateOptions::default()
    };
    assert_eq!(json(&a.options), json(&expected));
    let Command::Init(a) = command(&["init", "--from-compose", "compose.yaml"]) else {
        unreachable!()
    };
    let expected = InitOptions {
        compose: "compose.yaml".into(),
        ..InitOptions::default()
    };
    assert_eq!(json(&a.options), json(&expected));
    let Command::Certify(a) = command(&["certify", "app"]) else {
        unreachable!()
    };
    let expected = CertifyOptions {
        service: "app".into(),
        ..CertifyOptions::default()
    };
    assert_eq!(json(&a.options), json(&expected));
    let Command::Drill(a) = command(&["drill"]) else {
        unreachable!()
    };
    assert_eq!(json(&a.options), json(&DrillOptions::default()));
    let Command::Restore(a) = command(&["restore", "latest", "--all"]) else {
        unreachable!()
    };
    let expected = RestoreOptions {
        backup: BackupRef::Latest,
        all: true,
        ..RestoreOptions::default()
    };
    assert_eq!(json(&a.options), json(&expected));
}

#[test]
fn flags_reach_the_options_they_name() {
    let Command::Backup(a) = command(&["backup", "--priority", "critical,low", "-s", "db"]) else {
        unreachable!()
    };
    assert_eq!(a.selection.priorities, [Priority::Critical, Priority::Low]);
    assert_eq!(a.selection.services, ["db"]);
    let Command::Heal(a) = command(&["heal", "web", "--wait", "1m", "--backoff", "5s"]) else {
        unreachable!()
    };
    assert_eq!(a.options.wait, Duration::from_secs(60));
    assert_eq!(a.options.backoff, Duration::from_secs(5));
    assert_eq!(a.options.services, ["web"]);
    let Command::Populate(a) = command(&["populate", "app", "--size", "512KB"]) else {
        unreachable!()
    };
    assert_eq!(a.options.min_bytes, 512 << 10);
    let Command::Diagnose(a) = command(&["diagnose", "--lines", "5"]) else {
        unreachable!()
    };
    assert_eq!(a.options.lines, 5);
    let Command::Restore(a) = command(&[
        "restore",
        "20261122-083000-ab3k9z",
        "-s",
        "db",
        "--from",
        "offsite",
        "--stop",
    ]) else {
        unreachable!()
    };
    assert_eq!(
        a.options.backup,
        BackupRef::Id("20261122-083000-ab3k9z".into())
    );
    assert_eq!(
        (a.options.services, a.options.from, a.options.stop),
        (vec!["db".to_string()], Some("offsite".to_string()), true)
    );
    let Command::Drill(a) = command(&[
        "drill",
        "web",
        "--use-backup",
        "latest",
        "--destructive",
        "--force",
    ]) else {
        unreachable!()
    };
    assert_eq!(a.options.use_backup, Some(BackupRef::Latest));
    assert!(a.options.destructive && a.options.force);
    assert_eq!(a.options.services, ["web"]);
    let Command::Certify(a) = command(&["certify", "app", "--seed", "7", "--restart"]) else {
        unreachable!()
    };
    assert_eq!((a.options.seed, a.options.restart), (7, true));
}

#[test]
fn bad_flags_are_usage_errors() {
    for line in [
        &["backup", "--all", "--priority", "high"][..],
        &["backup", "--priority", "urgent"],
        &["populate", "app", "--size", "2XB"],
        &["heal", "--wait", "soon"],
        &["init"],
        &["restore", "latest"],
        &["restore", "latest", "--all", "-s", "db"],
        &["drill", "--force"],
        &["drill", "web", "--all"],
    ] {
        let mut args = vec!["drydock"];
        args.extend_from_slice(line);
        let e = Cli::try_parse_from(args).unwrap_err();
        assert!(e.use_stderr(), "{line:?}: {e}");
    }
}
