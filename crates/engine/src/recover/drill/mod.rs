//! `drydock drill`: proves, without touching production data, that the latest backup of
//! every selected source restores exactly, and measures RTO and RPO.
//!
//! Per source: a canary (a random token) is written into the live data just before the
//! drill's own backup; the backup is restored into a sandbox (a throwaway database,
//! instance or path), verified against the manifest (counts and fingerprint) and checked
//! for the canary, and the sandbox is removed whatever happened. RTO is restore start to
//! verification passed; RPO is the backup's consistent point to the simulated failure
//! (the moment the drill starts restoring). Targets come from `[drill]`, per priority
//! class when given. `--destructive` does it for real (`destructive`).
//!
//! Every drill is recorded in the state database (`status` shows the last one per
//! source), and no drill runs while a service waits for the restore an interrupted
//! destructive drill left pending.

pub mod destructive;
pub(crate) mod in_place;
mod report;
mod sandbox;
mod sandbox_source;

pub use report::*;

use std::sync::Arc;

use drydock_domain::config::Config;
use drydock_domain::{Event, EventSink};

use crate::EngineError;
use crate::RunContext;

pub fn drill(
    config: &Config,
    opts: &DrillOptions,
    ctx: &RunContext,
) -> Result<DrillReport, EngineError> {
    let events = Arc::clone(&ctx.events);
    refuse_while_restores_pend(config, &opts.services, events.as_ref())?;
    let mut report = if opts.destructive {
        destructive::run(config, opts, ctx)?
    } else {
        sandbox::run(config, opts, ctx)?
    };
    name_reports(config, opts, &mut report);
    record(config, &report);
    Ok(report)
}

/// A drill of a service whose data an interrupted destructive drill wiped would prove
/// nothing: it must be restored first. Other services may be drilled, with a warning.
fn refuse_while_restores_pend(
    config: &Config,
    services: &[String],
    events: &dyn EventSink,
) -> Result<(), EngineError> {
    let state = drydock_state::StateDb::open(&config.stack.state_dir)?;
    for pending in state.pending_restores()? {
        let message = format!(
            "service `{}` needs a restore from backup {}: {} (since {}); run `drydock restore {} --service {} --force`",
            pending.service,
            pending.backup_id,
            pending.reason,
            pending.since.strftime("%Y-%m-%d %H:%M:%S UTC"),
            pending.backup_id,
            pending.service
        );
        if services.is_empty() || services.contains(&pending.service) {
            return Err(EngineError::Refused(message));
        }
        events.emit(Event::Warning { message });
    }
    Ok(())
}

/// Remembers the drill per source; a failure to record does not fail the drill.
fn record(config: &Config, report: &DrillReport) {
    let run = drydock_state::DrillRun {
        kind: report.kind.as_str().to_string(),
        started_at: report.started_at,
        finished_at: report.finished_at,
        exit_code: i32::from(report.verdict().exit_code()),
        rto_ms: Some(report.rto_ms),
        rpo_ms: report.rpo_ms,
        report: report.report_files.first().cloned(),
        sources: report
            .sources
            .iter()
            .map(|s| drydock_state::DrilledSourceRecord {
                service: s.service.clone(),
                source: s.source.clone(),
                status: match s.status {
                    DrillStatus::Passed => "passed",
                    DrillStatus::Failed => "failed",
                    DrillStatus::CouldNotRun => "could-not-run",
                }
                .to_string(),
                backup_id: s.backup_id.clone(),
                rto_ms: s.rto_ms,
                rpo_ms: s.rpo_ms,
                detail: s
                    .error
                    .clone()
                    .or_else(|| (!s.differences.is_empty()).then(|| s.differences.join("; "))),
            })
            .collect(),
    };
    let recorded = drydock_state::StateDb::open(&config.stack.state_dir)
        .and_then(|mut state| state.record_drill(&run));
    if let Err(e) = recorded {
        tracing::warn!("the drill was not recorded in the state database: {e}");
    }
}

/// Names the report's files; the caller writes them (`drydock_render::report_files`).
fn name_reports(config: &Config, opts: &DrillOptions, report: &mut DrillReport) {
    let name = match report.kind {
        DrillKind::Destructive => "drill-destructive",
        DrillKind::Sandbox => "drill",
    };
    let base = crate::reports::base(config, opts.report.as_deref(), name, report.started_at);
    report.report_files = crate::reports::files(&base);
}
