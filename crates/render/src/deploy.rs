//! `drydock deploy`: the plan (`--plan`: the decision and why, what decided it, the
//! state of the infrastructure, the steps in order), what a deployment did, the
//! deployment history and what a rollback did.

use std::fmt::Write;

use drydock_engine::deploy::{
    AppDeployed, DeployFailure, DeployPlan, DeployReport, DeploymentsReport, Outcome, Package,
    RollbackReport,
};

pub fn deploy_plan(p: &DeployPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "decision: {}: {}", p.decision.as_str(), p.reason);
    let c = &p.changes;
    let short = |commit: &str| commit.chars().take(12).collect::<String>();
    match &c.from {
        Some(from) => {
            let _ = writeln!(out, "changes {} -> {}:", short(from), short(&c.to));
        }
        None => {
            let _ = writeln!(out, "changes up to {}:", short(&c.to));
        }
    }
    if let Some(note) = &c.assumed {
        let _ = writeln!(out, "  {note}");
    }
    for (kind, paths) in [("infra", &c.infra), ("app", &c.app)] {
        if !paths.is_empty() {
            let _ = writeln!(out, "  {kind}: {}", paths.join(", "));
        }
    }
    if c.other > 0 {
        let _ = writeln!(out, "  {} other path(s) changed, deciding nothing", c.other);
    }
    for s in &p.infra {
        let _ = writeln!(out, "infra {}: {}", s.service, s.status.as_str());
    }
    if p.steps.is_empty() {
        out.push_str("steps: none\n");
    } else {
        out.push_str("steps:\n");
        for (i, s) in p.steps.iter().enumerate() {
            let when = s.when.map(|w| format!(" ({w})")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {}. {} {}{when}",
                i + 1,
                s.action,
                s.services.join(", ")
            );
        }
    }
    out.push_str("plan only: nothing was changed\n");
    out
}

/// What `drydock deploy` did: the decision, each step with its time, each app's new
/// version, and the outcome with the command that recovers when it failed.
pub fn deploy_report(r: &DeployReport) -> String {
    let mut out = String::new();
    for i in &r.interrupted {
        let at = i.last_step.as_deref().unwrap_or("before its first step");
        let _ = writeln!(
            out,
            "note: deployment {} ({}, {}) was cut short at {at}; recorded as interrupted",
            i.deployment, i.rev, i.decision
        );
    }
    let _ = writeln!(
        out,
        "deployment {}: {} {} ({}): {}",
        r.deployment,
        r.rev,
        short(&r.commit),
        r.decision.as_str(),
        r.reason
    );
    for s in &r.steps {
        let _ = writeln!(
            out,
            "  {} {} [{}, {}]: {}",
            s.action,
            s.services.join(", "),
            s.status,
            millis(s.millis),
            s.detail
        );
    }
    apps(&mut out, &r.apps);
    if let Some(b) = &r.backup {
        let _ = writeln!(
            out,
            "pre-deploy backup: {b} (rollback --with-data restores it)"
        );
    }
    outcome(&mut out, r.outcome, r.changes, r.millis, r.failure.as_ref());
    out
}

/// `drydock deployments`: newest first, one line each, with the steps of the newest.
pub fn deployments(r: &DeploymentsReport) -> String {
    let mut out = String::new();
    if r.deployments.is_empty() {
        out.push_str(
            "no deployments recorded yet: `drydock deploy --plan` shows what the first would do\n",
        );
        return out;
    }
    for d in &r.deployments {
        let changes = d
            .changes
            .map(|c| format!(", {c} change(s)"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{:>4}  {}  {:<8} {:<14} {} {} ({}){changes}",
            d.id,
            d.started_at,
            d.kind,
            d.outcome,
            d.rev,
            short(&d.commit),
            d.decision
        );
        if let Some(f) = &d.failure {
            let step = f["step"].as_str().unwrap_or("?");
            let cause = f["cause"].as_str().unwrap_or("?");
            let _ = writeln!(out, "      failed at {step}: {cause}");
        }
        if d.outcome == "interrupted" || d.outcome == "running" {
            let last = d
                .steps
                .last()
                .map(|s| {
                    format!(
                        "{} ({})",
                        s["action"].as_str().unwrap_or("?"),
                        s["status"].as_str().unwrap_or("?")
                    )
                })
                .unwrap_or_else(|| "none".to_string());
            let _ = writeln!(out, "      last step recorded: {last}");
        }
    }
    out
}

/// What `drydock rollback` did.
pub fn rollback_report(r: &RollbackReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "rollback {}: {} -> {} (deployment {})",
        r.deployment,
        short(&r.from_commit),
        short(&r.to_commit),
        r.to_deployment
    );
    apps(&mut out, &r.apps);
    if let Some(d) = &r.data {
        let _ = writeln!(
            out,
            "  data: backup {} (taken {}, writes of the last {} s lost) restored to {}: {}",
            d.backup,
            d.taken_at,
            d.write_loss_secs,
            d.services.join(", "),
            if d.verified {
                "verified"
            } else {
                "NOT verified"
            }
        );
        for lost in d.lost.iter().filter(|l| !l.differences.is_empty()) {
            let _ = writeln!(
                out,
                "    lost from {}: {}",
                lost.source,
                lost.differences.join("; ")
            );
        }
    }
    outcome(&mut out, r.outcome, r.changes, r.millis, r.failure.as_ref());
    out
}

/// Each app service's version now live and its steps.
fn apps(out: &mut String, apps: &[AppDeployed]) {
    for a in apps {
        let previous = a
            .previous
            .as_deref()
            .map(|p| format!(" (was {p})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}: {}{previous}, {} change(s)",
            a.service, a.version, a.changes
        );
        for s in &a.steps {
            let _ = writeln!(out, "    {} [{}]: {}", s.action, millis(s.millis), s.detail);
        }
    }
}

/// The outcome line, and the failure with its fix.
fn outcome(out: &mut String, o: Outcome, changes: u32, ms: u64, failure: Option<&DeployFailure>) {
    let _ = writeln!(out, "{}: {changes} change(s) in {}", o.as_str(), millis(ms));
    if let Some(f) = failure {
        let _ = writeln!(out, "failed at {}: {}", f.step, f.cause);
        let _ = writeln!(out, "fix: {}", f.fix);
    }
}

fn short(commit: &str) -> String {
    commit.chars().take(12).collect()
}

fn millis(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// What `drydock package` built.
pub fn package(p: &Package) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "package {} of {} at {}{}",
        p.id,
        p.info.service,
        short(&p.info.commit),
        if p.reused {
            " (reused: its checksum verified)"
        } else {
            ""
        }
    );
    let _ = writeln!(out, "  file: {} ({} bytes)", p.file.display(), p.bytes);
    let _ = writeln!(
        out,
        "  sha256: {} ({})",
        p.sha256,
        p.checksum_file.display()
    );
    let _ = writeln!(out, "  built: {} ({})", p.info.built_at, p.info.build_type);
    for (tool, version) in &p.info.tools {
        let _ = writeln!(out, "  {tool}: {version}");
    }
    out
}
