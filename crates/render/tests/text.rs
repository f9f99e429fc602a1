//! Snapshots of what users read: the text and Markdown renderings of reports built
//! from constructed values (no servers), so a change of wording shows in review and
//! no Rust enum name (`CouldNotRun`) can slip into a report unseen.

use std::collections::BTreeMap;

use drydock_domain::config::SourceKind;
use drydock_domain::manifest::BackupStatus;
use drydock_domain::plan::{LeftOut, LeftOutBecause};
use drydock_domain::{Priority, SourceRecord, SourceStatus};
use drydock_engine::backup::{BackupCopyStatus, BackupReport, CopyOutcome};
use drydock_engine::drill::{
    Canary, CanaryStatus, DrillKind, DrillReport, DrillStatus, DrilledSource, Step,
};
use drydock_engine::restore::{RestoreReport, RestoreStatus, RestoredSource};
use jiff::Timestamp;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn source(service: &str, name: &str, kind: SourceKind, status: SourceStatus) -> SourceRecord {
    SourceRecord {
        service: service.into(),
        source: name.into(),
        kind,
        priority: Priority::Critical,
        status,
        error: (status != SourceStatus::Ok).then(|| "pg_dump exited with status 1".into()),
        snapshot_id: None,
        stored_path: None,
        format: None,
        logical_bytes: 5 * 1024 * 1024,
        stored_bytes: 1024 * 1024,
        sha256: None,
        counts: counts(&[("tables", 3), ("rows", 1200), ("empty", 0)]),
        fingerprint: None,
        consistent_at: None,
        duration_ms: 1500,
        pruned_at: None,
    }
}

fn backup_report() -> BackupReport {
    BackupReport {
        id: "20260102-030405-a1b2".into(),
        status: BackupStatus::Partial,
        recorded: true,
        repository: "/srv/backups/repo".into(),
        started_at: at("2026-01-02T03:04:05Z"),
        finished_at: at("2026-01-02T03:04:09Z"),
        duration_ms: 4200,
        sources: vec![
            source("app", "db", SourceKind::Postgres, SourceStatus::Ok),
            source("app", "cache", SourceKind::Redis, SourceStatus::Failed),
        ],
        copies: vec![
            CopyOutcome {
                name: "local".into(),
                status: BackupCopyStatus::Verified,
                error: None,
                also_synced: vec![],
            },
            CopyOutcome {
                name: "offsite".into(),
                status: BackupCopyStatus::Unsynced,
                error: Some("connection refused".into()),
                also_synced: vec![],
            },
        ],
        warnings: vec![],
        restarted: vec![],
        left_out: vec![
            LeftOut {
                service: "web".into(),
                source: "uploads".into(),
                priority: Priority::Medium,
                because: LeftOutBecause::NotInDefault,
            },
            LeftOut {
                service: "web".into(),
                source: "tmp".into(),
                priority: Priority::None,
                because: LeftOutBecause::PriorityNone,
            },
        ],
    }
}

#[test]
fn backup_text() {
    insta::assert_snapshot!(drydock_render::backup(&backup_report()));
}

#[test]
fn restore_text() {
    let restored = |name: &str, status: RestoreStatus| RestoredSource {
        service: "app".into(),
        source: name.into(),
        kind: SourceKind::Postgres,
        priority: Priority::Critical,
        backup_id: "20260102-030405-a1b2".into(),
        status,
        copy: "local".into(),
        differences: if status == RestoreStatus::Mismatch {
            vec!["rows: expected 1200, restored 1199".into()]
        } else {
            vec![]
        },
        notes: vec![],
        expected_counts: counts(&[("rows", 1200)]),
        restored_counts: counts(&[("rows", 1199)]),
        fingerprint: None,
        duration_ms: 2100,
        error: None,
        service_action: Some("stopped, then started again".into()),
    };
    let report = RestoreReport {
        verified: false,
        rto_ms: 2600,
        sources: vec![
            restored("db", RestoreStatus::Verified),
            restored("analytics", RestoreStatus::Mismatch),
        ],
        warnings: vec!["copy `offsite` not reachable; restored from `local`".into()],
    };
    insta::assert_snapshot!(drydock_render::restore(&report));
}

#[test]
fn drill_markdown() {
    let drilled = |name: &str, status: DrillStatus| DrilledSource {
        service: "app".into(),
        source: name.into(),
        kind: SourceKind::Postgres,
        priority: Priority::Critical,
        status,
        backup_id: Some("20260102-030405-a1b2".into()),
        sandbox: Some("drydock_drill_1".into()),
        canary: Canary {
            status: if status == DrillStatus::Passed {
                CanaryStatus::Present
            } else {
                CanaryStatus::None
            },
            detail: None,
        },
        differences: vec![],
        notes: vec![],
        counts: counts(&[("rows", 1200)]),
        fingerprint_matched: status == DrillStatus::Passed,
        rto_ms: (status == DrillStatus::Passed).then_some(1800),
        rpo_ms: (status == DrillStatus::Passed).then_some(900),
        rto_target_ms: 60_000,
        rpo_target_ms: 86_400_000,
        rto_met: (status == DrillStatus::Passed).then_some(true),
        rpo_met: (status == DrillStatus::Passed).then_some(true),
        steps: vec![Step {
            name: "restore".into(),
            ms: 1700,
        }],
        test_data: None,
        error: (status == DrillStatus::CouldNotRun)
            .then(|| "no sandbox: cannot create database drydock_drill_2".into()),
    };
    let report = DrillReport {
        kind: DrillKind::Sandbox,
        stack: "shop".into(),
        passed: false,
        targets_met: true,
        started_at: at("2026-01-02T03:04:05Z"),
        finished_at: at("2026-01-02T03:04:15Z"),
        backup: None,
        rto_ms: 2400,
        rpo_ms: Some(900),
        rto_target_ms: 60_000,
        rpo_target_ms: 86_400_000,
        sources: vec![
            drilled("db", DrillStatus::Passed),
            drilled("analytics", DrillStatus::CouldNotRun),
        ],
        services: vec![],
        report_files: vec![],
    };
    let md = drydock_render::drill::markdown(&report);
    assert!(!md.contains("CouldNotRun"), "{md}");
    insta::assert_snapshot!(md);
}

#[test]
fn drill_report_files_are_written_where_the_report_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("reports/drill-1");
    let mut report = DrillReport {
        kind: DrillKind::Sandbox,
        stack: "shop".into(),
        passed: true,
        targets_met: true,
        started_at: at("2026-01-02T03:04:05Z"),
        finished_at: at("2026-01-02T03:04:15Z"),
        backup: None,
        rto_ms: 2400,
        rpo_ms: None,
        rto_target_ms: 60_000,
        rpo_target_ms: 86_400_000,
        sources: vec![],
        services: vec![],
        report_files: vec![],
    };
    report.report_files = vec![
        base.with_extension("json").display().to_string(),
        base.with_extension("md").display().to_string(),
    ];
    drydock_render::report_files::write_drill(&report).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(base.with_extension("json")).unwrap()).unwrap();
    assert_eq!(json["stack"], "shop");
    let md = std::fs::read_to_string(base.with_extension("md")).unwrap();
    assert_eq!(md, drydock_render::drill::markdown(&report));
}
