//! `drydock deploy --plan`: the decision and why, what decided it, the state of the
//! infrastructure, and the steps in order.

use std::fmt::Write;

use drydock_engine::deploy::DeployPlan;

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
