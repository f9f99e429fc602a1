//! The words users read for the engine's status enums. Each enum is matched here, once
//! and exhaustively, so a new variant cannot reach a report as its Rust name
//! (`could not run`, never `CouldNotRun`).

use drydock_domain::manifest::BackupStatus;
use drydock_domain::plan::LeftOutBecause;
use drydock_domain::{SourceStatus, Verdict};
use drydock_engine::diagnose::Severity;
use drydock_engine::drill::DrillStatus;
use drydock_engine::restore::RestoreStatus;

pub fn backup_status(s: BackupStatus) -> &'static str {
    match s {
        BackupStatus::Ok => "ok",
        BackupStatus::Partial => "partial",
        BackupStatus::Failed => "failed",
    }
}

pub fn source_status(s: SourceStatus) -> &'static str {
    match s {
        SourceStatus::Ok => "ok",
        SourceStatus::Failed => "failed",
        SourceStatus::Skipped => "skipped",
    }
}

pub fn restore_status(s: RestoreStatus) -> &'static str {
    match s {
        RestoreStatus::Verified => "verified",
        RestoreStatus::Mismatch => "mismatch",
        RestoreStatus::Failed => "failed",
    }
}

pub fn drill_status(s: DrillStatus) -> &'static str {
    match s {
        DrillStatus::Passed => "passed",
        DrillStatus::Failed => "failed",
        DrillStatus::CouldNotRun => "could not run",
    }
}

/// Upper case: a diagnosis line opens with it, `[CRITICAL] ...`.
pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "INFO",
        Severity::Warning => "WARNING",
        Severity::Critical => "CRITICAL",
    }
}

/// Why `backup` left a source out, and how to take it.
pub fn left_out_because(b: LeftOutBecause) -> &'static str {
    match b {
        LeftOutBecause::NotInDefault => "default is critical,high; use --all or --priority",
        LeftOutBecause::NotAsked => "not in --priority; add it there or use --all",
        LeftOutBecause::PriorityNone => "priority none is never backed up unless --priority none",
    }
}

/// An operation's verdict, as a run list or a notification shows it.
pub fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Ok => "ok",
        Verdict::Warning => "warning",
        Verdict::Failed => "failed",
        Verdict::Refused => "refused",
        Verdict::CouldNotRun => "could not run",
        Verdict::Missing => "missing",
    }
}

/// A job run's verdict, or `running` while it has none yet.
pub fn run_verdict(v: Option<Verdict>) -> &'static str {
    v.map_or("running", verdict)
}
