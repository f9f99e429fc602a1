//! The words users read for the engine's status enums. Each enum is matched here, once
//! and exhaustively, so a new variant cannot reach a report as its Rust name
//! (`could not run`, never `CouldNotRun`).

use drydock_domain::manifest::BackupStatus;
use drydock_domain::plan::LeftOutBecause;
use drydock_domain::{SourceStatus, Verdict};
use drydock_engine::backup::BackupCopyStatus;
use drydock_engine::certify::StepStatus;
use drydock_engine::containers::RestartStatus;
use drydock_engine::copies::InCopy;
use drydock_engine::diagnose::Severity;
use drydock_engine::drill::{CanaryStatus, DrillStatus, ServiceDrillStatus};
use drydock_engine::prune::PruneStatus;
use drydock_engine::restore::RestoreStatus;
use drydock_engine::sync::SyncStatus;
use drydock_engine::verify::{CheckStatus, LiveStatus};

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

pub fn restart_status(s: RestartStatus) -> &'static str {
    match s {
        RestartStatus::Running => "running",
        RestartStatus::Failed => "failed",
    }
}

pub fn backup_copy_status(s: BackupCopyStatus) -> &'static str {
    match s {
        BackupCopyStatus::Verified => "verified",
        BackupCopyStatus::Unsynced => "unsynced",
        BackupCopyStatus::Failed => "failed",
    }
}

pub fn sync_status(s: SyncStatus) -> &'static str {
    match s {
        SyncStatus::Synced => "synced",
        SyncStatus::Unsynced => "unsynced",
    }
}

pub fn prune_status(s: PruneStatus) -> &'static str {
    match s {
        PruneStatus::Pruned => "pruned",
        PruneStatus::Planned => "planned",
        PruneStatus::Refused => "refused",
        PruneStatus::Failed => "failed",
    }
}

/// What is known of a backup in one copy (`list`, `status`).
pub fn in_copy(s: InCopy) -> &'static str {
    match s {
        InCopy::Verified => "verified",
        InCopy::Present => "present",
        InCopy::Unsynced => "unsynced",
        InCopy::Missing => "missing",
        InCopy::Corrupt => "corrupt",
        InCopy::Pruned => "pruned",
        InCopy::Unknown => "unknown",
    }
}

pub fn check_status(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Ok => "ok",
        CheckStatus::Missing => "missing",
        CheckStatus::Corrupt => "corrupt",
    }
}

pub fn live_status(s: LiveStatus) -> &'static str {
    match s {
        LiveStatus::Same => "same",
        LiveStatus::Changed => "changed",
        LiveStatus::NoBackup => "no-backup",
        LiveStatus::Error => "error",
    }
}

pub fn canary_status(s: CanaryStatus) -> &'static str {
    match s {
        CanaryStatus::Present => "present",
        CanaryStatus::Missing => "missing",
        CanaryStatus::NotInBackup => "not-in-backup",
        CanaryStatus::None => "none",
    }
}

pub fn service_drill_status(s: ServiceDrillStatus) -> &'static str {
    match s {
        ServiceDrillStatus::Recovered => "recovered",
        ServiceDrillStatus::Failed => "failed",
        ServiceDrillStatus::NotReached => "not-reached",
    }
}

/// A certify step's status in the completion report's table.
pub fn step_status(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Passed => "passed",
        StepStatus::Failed => "**FAILED**",
        StepStatus::Pending => "pending",
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
        Verdict::Critical => "critical",
    }
}

/// A job run's verdict, or `running` while it has none yet.
pub fn run_verdict(v: Option<Verdict>) -> &'static str {
    v.map_or("running", verdict)
}
