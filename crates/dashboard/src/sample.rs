//! A made-up stack with history, for the snapshot and browser tests, the screenshot in
//! `docs/` and the benchmark: `services` services (the first ten named like a small
//! shop), a local copy and one remote, one backup a day for `days` days, health, drills,
//! runs, next runs and failed notifications. Deterministic for a given `now`: no random
//! source, so the rendered page is the same every time.

use drydock_engine::copies::InCopy;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use drydock_domain::config::Config;
use drydock_domain::manifest::BackupStatus;
use drydock_domain::{Priority, SourceKind, SourceStatus, Verdict};
use drydock_engine::list::{BackupSummary, CopyStatus, SourceSummary};
use drydock_state::health::{CheckRecord, HealthRun, ServiceHealth};
use drydock_state::{CopyState, DrillRun, DrilledSourceRecord, StateDb, StateError};
use jiff::{SignedDuration, Timestamp};

use crate::inputs::{
    DaemonView, FailedNotification, NextRun, RunDetail, RunEvent, RunStep, RunSummary,
};

/// A secret value in the sample's config (the remote's key): no page may show it.
pub const SECRET: &str = "sample-secret-access-key-7f3a";

const NAMES: [(&str, &str, &str, &str); 10] = [
    ("web", "files", "images", "high"),
    ("db", "postgres", "app", "critical"),
    ("cache", "redis", "sessions", "low"),
    ("queue", "redis", "jobs", "high"),
    ("search", "files", "index", "medium"),
    ("auth", "postgres", "users", "critical"),
    ("billing", "mysql", "invoices", "critical"),
    ("analytics", "sqlite", "events", "medium"),
    ("mail", "files", "maildir", "high"),
    ("uploads", "files", "uploads", "medium"),
];

/// The sample stack: its config text and what the daemon would know of it.
pub struct Sample {
    pub config_text: String,
    pub daemon: DaemonView,
    pub runs: Vec<RunDetail>,
    pub now: Timestamp,
    services: Vec<(String, String)>,
}

fn name(i: usize) -> (String, &'static str, String, &'static str) {
    let (svc, kind, src, prio) = NAMES[i % NAMES.len()];
    if i < NAMES.len() {
        (svc.into(), kind, src.into(), prio)
    } else {
        (
            format!("{svc}{}", i / NAMES.len() + 1),
            kind,
            src.into(),
            prio,
        )
    }
}

fn source_entry(kind: &str, src: &str, prio: &str, svc: &str) -> String {
    match kind {
        "postgres" => format!(
            r#"{{ kind = "postgres", name = "{src}", priority = "{prio}", url = "postgres://app@127.0.0.1:5432/{src}" }}"#
        ),
        "mysql" => format!(
            r#"{{ kind = "mysql", name = "{src}", priority = "{prio}", url = "mysql://app@127.0.0.1:3306/{src}" }}"#
        ),
        "redis" => format!(
            r#"{{ kind = "redis", name = "{src}", priority = "{prio}", url = "redis://127.0.0.1:6379" }}"#
        ),
        "sqlite" => format!(
            r#"{{ kind = "sqlite", name = "{src}", priority = "{prio}", path = "/srv/{svc}/{src}.db" }}"#
        ),
        _ => format!(
            r#"{{ kind = "files", name = "{src}", priority = "{prio}", path = "/srv/{svc}/{src}" }}"#
        ),
    }
}

fn parse_prio(p: &str) -> Priority {
    match p {
        "critical" => Priority::Critical,
        "high" => Priority::High,
        "medium" => Priority::Medium,
        _ => Priority::Low,
    }
}

fn parse_kind(k: &str) -> SourceKind {
    match k {
        "postgres" => SourceKind::Postgres,
        "mysql" => SourceKind::Mysql,
        "redis" => SourceKind::Redis,
        "sqlite" => SourceKind::Sqlite,
        _ => SourceKind::Files,
    }
}

/// A small deterministic spread in 0..n from a seed.
fn spread(seed: usize, n: u64) -> u64 {
    ((seed as u64).wrapping_mul(2_654_435_761) >> 7) % n.max(1)
}

impl Sample {
    /// `services` services of one source each, `days` days of daily backups up to
    /// `now`.
    pub fn new(services: usize, days: usize, now: Timestamp) -> Sample {
        let mut config_text = "[stack]\nname = \"shop\"\nstate_dir = \"state\"\n\n[repository]\npath = \"repo\"\npassword = \"${file:@DIR@/repo.password}\"\n\n[[remote]]\nname = \"offsite\"\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:3900\"\nregion = \"garage\"\nbucket = \"shop-backups\"\naccess_key_id = \"${file:@DIR@/key-id}\"\nsecret_access_key = \"${file:@DIR@/secret-key}\"\n"
            .to_string();
        let mut list = Vec::new();
        for i in 0..services {
            let (svc, kind, src, prio) = name(i);
            let _ = write!(
                config_text,
                "\n[services.{svc}]\nruntime = {{ kind = \"external\" }}\ndata = [ {} ]\n",
                source_entry(kind, &src, prio, &svc)
            );
            list.push((svc, kind, src, prio));
        }
        let day = SignedDuration::from_hours(24);
        let mut backups = Vec::new();
        for d in 0..days {
            // Newest first, each at 02:00-ish a day apart; the newest remote copy of the
            // last day is not synced yet (a red cell in the offsite column).
            let started = now - day * (d as i32) - SignedDuration::from_hours(3);
            let mut sources = Vec::new();
            let mut took = 0;
            for (i, (svc, kind, src, prio)) in list.iter().enumerate() {
                // One service's backups stopped four days ago: overdue.
                if i == 4 && d < 4 {
                    continue;
                }
                let base = 40_000_000 + spread(i, 900) * 1_000_000;
                let logical =
                    base + (days - d) as u64 * (base / 200) + spread(i * 31 + d, base / 50);
                took += 5 + spread(i + d, 40);
                sources.push(SourceSummary {
                    service: svc.clone(),
                    source: src.clone(),
                    kind: parse_kind(kind),
                    priority: parse_prio(prio),
                    status: SourceStatus::Ok,
                    logical_bytes: logical,
                    stored_bytes: logical / 20,
                    counts: BTreeMap::new(),
                    fingerprint: None,
                    error: None,
                    pruned_at: None,
                });
            }
            let offsite = if d == 0 {
                InCopy::Unsynced
            } else {
                InCopy::Present
            };
            backups.push(BackupSummary {
                id: format!("{:08x}", 0x5eed_0000_u32 + (days - d) as u32),
                status: BackupStatus::Ok,
                started_at: started,
                finished_at: started + SignedDuration::from_secs(took as i64),
                logical_bytes: sources.iter().map(|s| s.logical_bytes).sum(),
                stored_bytes: sources.iter().map(|s| s.stored_bytes).sum(),
                copies: vec![
                    CopyStatus {
                        name: "local".into(),
                        status: InCopy::Present,
                        verified_at: None,
                        detail: None,
                    },
                    CopyStatus {
                        name: "offsite".into(),
                        status: offsite,
                        verified_at: None,
                        detail: None,
                    },
                ],
                sources,
            });
        }
        let min = SignedDuration::from_mins(1);
        let run = |id: i64,
                   job: &str,
                   ago_min: i32,
                   took_s: i64,
                   verdict: Option<Verdict>,
                   summary: &str| RunSummary {
            id,
            job: job.into(),
            trigger: if id == 7 {
                "api".into()
            } else {
                "schedule".into()
            },
            started_at: now - min * ago_min,
            finished_at: verdict.map(|_| now - min * ago_min + SignedDuration::from_secs(took_s)),
            verdict,
            summary: summary.into(),
        };
        let recent_runs = vec![
            run(9, "health", 1, 2, None, "checking 10 services"),
            run(
                8,
                "sync",
                170,
                41,
                Some(Verdict::Warning),
                "offsite: 1 backup not copied (HTTP 503 from the remote); the next sync retries",
            ),
            run(
                7,
                "backup",
                180,
                95,
                Some(Verdict::Ok),
                "9 sources backed up, 1.2 GiB read, 61 MiB stored",
            ),
            run(
                6,
                "prune",
                1440,
                12,
                Some(Verdict::Ok),
                "3 backups removed by retention",
            ),
            run(
                5,
                "drill",
                2880,
                300,
                Some(Verdict::Failed),
                "billing/invoices: restored row counts differ from the manifest",
            ),
            run(
                4,
                "verify",
                4320,
                620,
                Some(Verdict::Ok),
                "both copies verified, 10% of the data read",
            ),
        ];
        let runs = vec![RunDetail {
            run: recent_runs[1].clone(),
            steps: vec![RunStep {
                name: "local -> offsite".into(),
                started_at: now - min * 170,
                finished_at: Some(now - min * 170 + SignedDuration::from_secs(41)),
                verdict: Some(Verdict::Warning),
                detail: "1 of 2 backups copied".into(),
            }],
            events: vec![
                RunEvent {
                    at: now - min * 170,
                    text: "sync started: 2 backups to offsite".into(),
                },
                RunEvent {
                    at: now - min * 170 + SignedDuration::from_secs(40),
                    text: format!("offsite: HTTP 503 (key {SECRET})"),
                },
            ],
        }];
        let next_runs = vec![
            NextRun {
                job: "health".into(),
                scope: "all".into(),
                at: now + min,
            },
            NextRun {
                job: "backup".into(),
                scope: "priority critical,high".into(),
                at: now + min * (21 * 60),
            },
            NextRun {
                job: "prune".into(),
                scope: "all".into(),
                at: now + min * (23 * 60),
            },
            NextRun {
                job: "drill".into(),
                scope: "sandbox".into(),
                at: now + min * (3 * 24 * 60),
            },
        ];
        let failed_notifications = vec![FailedNotification {
            channel: "webhook #1".into(),
            about: "sync warning".into(),
            attempts: 6,
            last_attempt_at: now - min * 120,
            error: format!("POST failed: HTTP 500 (Authorization: Bearer {SECRET})"),
            gave_up: true,
        }];
        let backup_periods = list
            .iter()
            .map(|(svc, _, src, _)| ((svc.clone(), src.clone()), 86_400))
            .collect();
        Sample {
            config_text,
            daemon: DaemonView {
                backups,
                recent_runs,
                next_runs,
                failed_notifications,
                backup_periods,
                ..DaemonView::default()
            },
            runs,
            now,
            services: list.into_iter().map(|(s, _, src, _)| (s, src)).collect(),
        }
    }

    /// Writes the secrets (0600 files) into `dir` and loads the config from there (state
    /// and repository paths are inside `dir`).
    pub fn config(&self, dir: &Path) -> Config {
        use std::os::unix::fs::OpenOptionsExt;
        for (file, value) in [
            ("repo.password", "sample-repository-password"),
            ("key-id", "GKsample0123"),
            ("secret-key", SECRET),
        ] {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(dir.join(file))
                .expect("write a sample secret");
            std::io::Write::write_all(&mut f, value.as_bytes()).expect("write a sample secret");
        }
        let text = self
            .config_text
            .replace("@DIR@", &dir.display().to_string());
        Config::from_text(&dir.join("drydock.toml"), &text).expect("the sample config is valid")
    }

    /// Records health, drills and copy verifications in the state database.
    pub fn fill_state(&self, state: &mut StateDb) -> Result<(), StateError> {
        let t = (self.now - SignedDuration::from_secs(45)).to_string();
        state.record_health(&HealthRun {
            at: t,
            status: "critical".into(),
            exit_code: 2,
            duration_ms: 850,
            services: self
                .services
                .iter()
                .enumerate()
                .map(|(i, (svc, _))| {
                    let status = match i % 10 {
                        2 => "critical",
                        7 => "warning",
                        _ => "healthy",
                    };
                    ServiceHealth {
                        service: svc.clone(),
                        status: status.into(),
                        checks: vec![CheckRecord {
                            name: "port".into(),
                            kind: "tcp".into(),
                            status: status.into(),
                            latency_ms: 1.5,
                            attempts: 1,
                            message: if status == "healthy" {
                                "open".into()
                            } else {
                                "connection refused on 127.0.0.1:6379".into()
                            },
                            details: Default::default(),
                        }],
                    }
                })
                .collect(),
        })?;
        let day = SignedDuration::from_hours(24);
        for (i, (svc, src)) in self.services.iter().enumerate().filter(|(i, _)| i % 3 != 2) {
            let finished = self.now - day * (1 + (i % 5) as i32);
            let (status, rto) = if i % 10 == 6 {
                ("failed", 1_900_000)
            } else {
                ("passed", 40_000 + spread(i, 200_000))
            };
            state.record_drill(&DrillRun {
                kind: "sandbox".into(),
                started_at: finished - SignedDuration::from_millis(rto as i64),
                finished_at: finished,
                exit_code: if status == "passed" { 0 } else { 2 },
                rto_ms: Some(rto),
                rpo_ms: Some(3_600_000 * 3),
                report: None,
                sources: vec![DrilledSourceRecord {
                    service: svc.clone(),
                    source: src.clone(),
                    status: status.into(),
                    backup_id: None,
                    rto_ms: Some(rto),
                    rpo_ms: Some(3_600_000 * 3),
                    detail: None,
                }],
            })?;
        }
        // Verified: every local copy; offsite up to a week ago (verify runs weekly).
        for (d, b) in self.daemon.backups.iter().enumerate() {
            state.record_copy("local", &b.id, CopyState::Verified, None)?;
            if d >= 7 {
                state.record_copy("offsite", &b.id, CopyState::Verified, None)?;
            }
        }
        Ok(())
    }
}
