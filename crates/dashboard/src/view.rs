//! The pieces several pages show, computed once from config, state and the daemon's
//! view: the backup matrix row of a source (one cell per copy), health tiles, drill
//! and run lines. Everything here is plain data of ready-to-show strings, so the
//! templates only lay it out (and escape it).
//!
//! A matrix cell is the newest backup of the source that the copy holds (state
//! `verified`, or present by the listing); its age against the schedule's period makes
//! it overdue. The newest backup's start time stands for its consistent point (the
//! listing does not carry it): never later than it, so an RPO shown errs on the safe
//! side by the backup's own duration.

use std::collections::BTreeMap;

use drydock_domain::config::{Config, LOCAL_COPY};
use drydock_domain::{Priority, Verdict};
use drydock_engine::list::{BackupSummary, SourceSummary};
use drydock_engine::Redactor;
use drydock_render::layout::{ago, ago_signed, bytes, seconds};
use drydock_render::words;
use drydock_state::health::LatestHealth;
use drydock_state::{CopyRecord, LastDrill, StateDb};
use jiff::Timestamp;

use crate::error::DashboardError;
use crate::inputs::{DaemonView, RunSummary};

/// What every page is built from: the seam the daemon's handlers fill.
pub struct Inputs<'a> {
    pub config: &'a Config,
    /// The state database, opened by the daemon (one connection per request or one
    /// kept open; reads only).
    pub state: &'a StateDb,
    pub daemon: &'a DaemonView,
    /// The time the page is "as of" (the daemon passes `drydock_domain::clock::now()`).
    pub now: Timestamp,
}

/// A time as pages show it.
pub fn when(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

pub(crate) fn age_s(then: Timestamp, now: Timestamp) -> i64 {
    drydock_domain::clock::age_s(then, now)
}

/// The href of a source's page (names are percent-encoded where they must be).
pub fn source_href(service: &str, source: &str) -> String {
    format!("/sources/{}/{}", path_part(service), path_part(source))
}

fn path_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// One cell of the matrix: a source in one copy.
#[derive(Debug, Clone)]
pub struct Cell {
    pub copy: String,
    /// `good`, `warn` or `bad`: the CSS class, and what a colour-blind reader gets from
    /// the words beside it.
    pub class: &'static str,
    /// `verified`, `present` (not verified yet) or `none`.
    pub state: &'static str,
    pub age: String,
    pub size: String,
    pub overdue: bool,
    /// The newest backup is not in this copy: in what state it is there.
    pub note: String,
}

/// A source's row of the matrix, with its RPO against the target.
#[derive(Debug, Clone)]
pub struct SourceRow {
    pub service: String,
    pub source: String,
    pub href: String,
    pub kind: String,
    pub priority: String,
    pub cells: Vec<Cell>,
    pub rpo: String,
    pub rpo_target: String,
    pub rpo_class: &'static str,
    pub overdue: bool,
}

/// The copies, local first, and per copy what the state database recorded, by backup.
pub(crate) struct Copies {
    pub names: Vec<String>,
    records: Vec<BTreeMap<String, CopyRecord>>,
}

impl Copies {
    pub fn read(config: &Config, state: &StateDb) -> Result<Copies, DashboardError> {
        let mut names = vec![LOCAL_COPY.to_string()];
        names.extend(config.remotes.iter().map(|r| r.name.clone()));
        let records = names
            .iter()
            .map(|n| state.copy_records(n))
            .collect::<Result<_, _>>()?;
        Ok(Copies { names, records })
    }

    /// The backup's state in copy `i`: the state database's record when there is one
    /// (fresher than the daemon's listing), else what the listing saw.
    pub fn status(&self, i: usize, b: &BackupSummary) -> &'static str {
        if let Some(r) = self.records[i].get(&b.id) {
            return r.state.as_str();
        }
        b.copies
            .iter()
            .find(|c| c.name == self.names[i])
            .map_or("unknown", |c| drydock_render::words::in_copy(c.status))
    }
}

/// Each source's restorable backups, newest first.
pub(crate) type History<'a> =
    BTreeMap<(&'a str, &'a str), Vec<(&'a BackupSummary, &'a SourceSummary)>>;

pub(crate) fn history(backups: &[BackupSummary]) -> History<'_> {
    let mut out: History = BTreeMap::new();
    for b in backups {
        for s in &b.sources {
            if s.status == drydock_domain::SourceStatus::Ok && s.pruned_at.is_none() {
                out.entry((s.service.as_str(), s.source.as_str()))
                    .or_default()
                    .push((b, s));
            }
        }
    }
    out
}

pub(crate) fn backup_duration_s(b: &BackupSummary) -> f64 {
    (b.finished_at.as_millisecond() - b.started_at.as_millisecond()).max(0) as f64 / 1000.0
}

/// The matrix row of one source.
pub(crate) fn source_row(
    inputs: &Inputs,
    copies: &Copies,
    hist: &History,
    service: &str,
    source: &drydock_domain::config::SourceConfig,
) -> SourceRow {
    let now = inputs.now;
    let priority = source.priority();
    let rpo_target_s = inputs.config.drill.targets_for(priority).1.as_secs();
    let period = inputs
        .daemon
        .backup_periods
        .get(&(service.to_string(), source.name().to_string()))
        .copied()
        .unwrap_or(rpo_target_s);
    let limit = (period as f64 * inputs.daemon.overdue_factor) as i64;
    let backups = hist
        .get(&(service, source.name()))
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let newest = backups.first();
    let cells: Vec<Cell> = (0..copies.names.len())
        .map(|i| {
            let held = backups.iter().find_map(|(b, s)| {
                let st = copies.status(i, b);
                matches!(st, "verified" | "present").then_some((b, s, st))
            });
            let note = match (newest, held) {
                (Some((nb, _)), Some((b, _, _))) if nb.id != b.id => {
                    format!("newest {}", copies.status(i, nb))
                }
                (Some((nb, _)), None) => copies.status(i, nb).to_string(),
                _ => String::new(),
            };
            match held {
                Some((b, s, st)) => {
                    let a = age_s(b.started_at, now);
                    let overdue = a > limit;
                    Cell {
                        copy: copies.names[i].clone(),
                        class: if overdue || a < 0 {
                            "bad"
                        } else if st == "verified" && note.is_empty() {
                            "good"
                        } else {
                            "warn"
                        },
                        state: if st == "verified" {
                            "verified"
                        } else {
                            "present"
                        },
                        age: ago_signed(a),
                        size: bytes(s.logical_bytes),
                        overdue,
                        note,
                    }
                }
                None => Cell {
                    copy: copies.names[i].clone(),
                    class: "bad",
                    state: "none",
                    age: String::new(),
                    size: String::new(),
                    overdue: true,
                    note,
                },
            }
        })
        .collect();
    let rpo_s = newest.map(|(b, _)| age_s(b.started_at, now));
    SourceRow {
        service: service.to_string(),
        source: source.name().to_string(),
        href: source_href(service, source.name()),
        kind: source.kind().to_string(),
        priority: priority.to_string(),
        overdue: cells.iter().any(|c| c.overdue),
        cells,
        rpo: match rpo_s {
            Some(r) if r < 0 => "unknown: clock problem".into(),
            Some(r) => ago(r as u64),
            None => "no backup".into(),
        },
        rpo_target: ago(rpo_target_s),
        rpo_class: match rpo_s {
            Some(r) if r >= 0 && r as u64 <= rpo_target_s => "good",
            _ => "bad",
        },
    }
}

/// Every source the daemon backs up (priority none is never backed up), config order.
pub(crate) fn source_rows(inputs: &Inputs, copies: &Copies, hist: &History) -> Vec<SourceRow> {
    inputs
        .config
        .sources()
        .filter(|(_, _, s)| s.priority() != Priority::None)
        .map(|(svc, _, s)| source_row(inputs, copies, hist, svc, s))
        .collect()
}

/// One service's latest health.
#[derive(Debug, Clone)]
pub struct HealthTile {
    pub service: String,
    pub status: String,
    pub class: &'static str,
    pub at: String,
    /// `check: message` of each check not healthy.
    pub problems: Vec<String>,
}

pub(crate) fn health_tiles(
    config: &Config,
    latest: &[LatestHealth],
    redact: &Redactor,
    now: Timestamp,
) -> Vec<HealthTile> {
    config
        .services
        .keys()
        .map(
            |name| match latest.iter().find(|h| &h.health.service == name) {
                Some(h) => HealthTile {
                    service: name.clone(),
                    class: health_class(&h.health.status),
                    status: h.health.status.clone(),
                    // Recorded as RFC 3339 text; shown as an age like the other columns.
                    at: h
                        .at
                        .parse::<Timestamp>()
                        .map_or_else(|_| h.at.clone(), |t| ago_signed(age_s(t, now))),
                    problems: h
                        .health
                        .checks
                        .iter()
                        .filter(|c| c.status != "healthy")
                        .map(|c| redact.line(&format!("{}: {}", c.name, c.message)))
                        .collect(),
                },
                None => HealthTile {
                    service: name.clone(),
                    status: "not checked yet".into(),
                    class: "none",
                    at: String::new(),
                    problems: Vec::new(),
                },
            },
        )
        .collect()
}

fn health_class(status: &str) -> &'static str {
    match status {
        "healthy" => "good",
        "warning" => "warn",
        _ => "bad",
    }
}

/// A source's last drill, with RTO and RPO against their targets.
#[derive(Debug, Clone)]
pub struct DrillLine {
    pub service: String,
    pub source: String,
    pub href: String,
    pub kind: String,
    pub status: String,
    pub class: &'static str,
    pub at: String,
    pub age: String,
    pub rto: String,
    pub rto_target: String,
    pub rto_class: &'static str,
    pub rpo: String,
    pub rpo_target: String,
    pub rpo_class: &'static str,
}

pub(crate) fn drill_line(config: &Config, d: &LastDrill, now: Timestamp) -> DrillLine {
    let priority = config
        .sources()
        .find(|(svc, _, s)| *svc == d.service && s.name() == d.source)
        .map_or(Priority::Critical, |(_, _, s)| s.priority());
    let (rto_t, rpo_t) = config.drill.targets_for(priority);
    let against = |v: Option<u64>, target: u64| match v {
        Some(ms) if ms <= target => "good",
        Some(_) => "bad",
        None => "none",
    };
    DrillLine {
        service: d.service.clone(),
        source: d.source.clone(),
        href: source_href(&d.service, &d.source),
        kind: d.kind.clone(),
        class: if d.status == "passed" { "good" } else { "bad" },
        status: d.status.clone(),
        at: when(d.finished_at),
        age: ago_signed(age_s(d.finished_at, now)),
        rto: d.rto_ms.map_or("-".into(), seconds),
        rto_target: ago(rto_t.as_secs()),
        rto_class: against(d.rto_ms, rto_t.as_millis() as u64),
        rpo: d.rpo_ms.map_or("-".into(), |ms| ago(ms / 1000)),
        rpo_target: ago(rpo_t.as_secs()),
        rpo_class: against(d.rpo_ms, rpo_t.as_millis() as u64),
    }
}

/// One run, as lists show it.
#[derive(Debug, Clone)]
pub struct RunLine {
    pub id: i64,
    pub href: String,
    pub job: String,
    pub trigger: String,
    pub started: String,
    pub took: String,
    pub verdict: &'static str,
    pub class: &'static str,
    pub summary: String,
}

pub(crate) fn verdict_class(v: Option<Verdict>) -> &'static str {
    match v {
        None => "run",
        Some(Verdict::Ok) => "good",
        Some(Verdict::Warning) => "warn",
        Some(_) => "bad",
    }
}

pub(crate) fn took(start: Timestamp, end: Option<Timestamp>) -> String {
    end.map_or("-".into(), |e| {
        seconds((e.as_millisecond() - start.as_millisecond()).max(0) as u64)
    })
}

pub(crate) fn run_line(r: &RunSummary, redact: &Redactor) -> RunLine {
    RunLine {
        id: r.id,
        href: format!("/runs/{}", r.id),
        job: r.job.clone(),
        trigger: r.trigger.clone(),
        started: when(r.started_at),
        took: took(r.started_at, r.finished_at),
        // Ended without a verdict: not run (its previous run was still going).
        verdict: match (r.verdict, r.finished_at) {
            (None, Some(_)) => "skipped",
            (v, _) => words::run_verdict(v),
        },
        class: match (r.verdict, r.finished_at) {
            (None, Some(_)) => "muted",
            (v, _) => verdict_class(v),
        },
        summary: redact.line(&r.summary),
    }
}
