//! Retention: which backups of one source a copy keeps, and why.
//!
//! The rules are restic's `forget --keep-daily/--keep-weekly/--keep-monthly`: walking
//! the backups newest first, a backup is kept by a rule when it is the newest of a
//! calendar bucket (a day, an ISO week, a month, in the operator's time zone) that rule
//! has not used yet, until the rule has kept its count. A backup kept by no rule is
//! deleted. Two guards sit above the rules, because a retention policy must never be
//! the thing that loses the last good copy:
//! - the newest *verified* backup is always kept, whatever the rules say;
//! - the newest backup *by the stack's order of creation* is always kept: taken while
//!   the clock was behind (or after one taken while it was ahead), it is dated before
//!   older backups, and the rules, which go by date, would let the newest data go;
//! - **anomaly guard**: when the newest backup is much smaller than the ones before it
//!   (less than `ratio` times the median of the `window` before it), nothing is deleted
//!   and the plan carries a warning: a silent partial dump must not push good backups
//!   out.
//!
//! [`plan`] is pure: the same inputs give the same decisions, so `prune --dry-run`
//! shows exactly what `prune` deletes.

use std::collections::BTreeSet;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::Serialize;

/// How many backups each rule keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeepRules {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl KeepRules {
    pub fn keeps_nothing(&self) -> bool {
        self.daily == 0 && self.weekly == 0 && self.monthly == 0
    }
}

/// When the newest backup counts as suspiciously small.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AnomalyGuard {
    /// Smaller than this fraction of the median is an anomaly (0.5: half).
    pub ratio: f64,
    /// How many earlier backups the median is taken over.
    pub window: usize,
}

/// One backup of the source, as the copy holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    /// When the backup was taken (its consistent point or start).
    pub time: Timestamp,
    pub logical_bytes: u64,
    /// The copy's data of this backup was verified.
    pub verified: bool,
    /// The newest backup of the source by the stack's order of creation
    /// (`Manifest::creation_order`), whatever its time says.
    pub newest_created: bool,
}

/// What the plan does with one backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub id: String,
    pub keep: bool,
    /// Why it is kept (`daily 2026-11-30`, `weekly 2026-W48`, `monthly 2026-11`,
    /// `newest verified backup`, `anomaly guard`), or why it goes (`no rule keeps it`).
    pub reasons: Vec<String>,
}

/// The decisions for every candidate, newest first, and warnings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub decisions: Vec<Decision>,
    pub warnings: Vec<String>,
}

impl Plan {
    pub fn deleted(&self) -> impl Iterator<Item = &Decision> {
        self.decisions.iter().filter(|d| !d.keep)
    }
}

#[derive(Clone, Copy)]
enum Rule {
    Daily,
    Weekly,
    Monthly,
}

impl Rule {
    fn bucket(self, t: Timestamp, tz: &TimeZone) -> String {
        let local = t.to_zoned(tz.clone());
        match self {
            Rule::Daily => local.strftime("%Y-%m-%d").to_string(),
            Rule::Weekly => {
                let week = local.date().iso_week_date();
                format!("{:04}-W{:02}", week.year(), week.week())
            }
            Rule::Monthly => local.strftime("%Y-%m").to_string(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Rule::Daily => "daily",
            Rule::Weekly => "weekly",
            Rule::Monthly => "monthly",
        }
    }
}

/// Newest first; equal times by id, so the order (and the plan) is total.
pub fn order(candidates: &mut [Candidate]) {
    candidates.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
}

/// Decides for every candidate (any order) whether the copy keeps it.
pub fn plan(
    candidates: &[Candidate],
    rules: &KeepRules,
    guard: &AnomalyGuard,
    tz: &TimeZone,
) -> Plan {
    let mut sorted = candidates.to_vec();
    order(&mut sorted);
    let mut decisions: Vec<Decision> = sorted
        .iter()
        .map(|c| Decision {
            id: c.id.clone(),
            keep: false,
            reasons: Vec::new(),
        })
        .collect();

    for (rule, count) in [
        (Rule::Daily, rules.daily),
        (Rule::Weekly, rules.weekly),
        (Rule::Monthly, rules.monthly),
    ] {
        let mut left = count;
        let mut last: Option<String> = None;
        for (c, d) in sorted.iter().zip(decisions.iter_mut()) {
            if left == 0 {
                break;
            }
            let bucket = rule.bucket(c.time, tz);
            if last.as_ref() != Some(&bucket) {
                d.keep = true;
                d.reasons.push(format!("{} {bucket}", rule.name()));
                last = Some(bucket);
                left -= 1;
            }
        }
    }

    if let Some(i) = sorted.iter().position(|c| c.verified) {
        if !decisions[i].keep {
            decisions[i].keep = true;
        }
        decisions[i].reasons.push("newest verified backup".into());
    }

    for (c, d) in sorted.iter().zip(decisions.iter_mut()) {
        if c.newest_created && !d.keep {
            d.keep = true;
            d.reasons.push("newest created backup".into());
        }
    }

    let mut warnings = Vec::new();
    if let Some(anomaly) = anomaly(&sorted, guard) {
        for d in decisions.iter_mut().filter(|d| !d.keep) {
            d.keep = true;
            d.reasons.push("anomaly guard".into());
        }
        warnings.push(anomaly);
    }
    for d in decisions.iter_mut().filter(|d| !d.keep) {
        d.reasons.push("no rule keeps it".into());
    }
    Plan {
        decisions,
        warnings,
    }
}

/// The warning when the newest candidate (of newest-first `sorted`) is an anomaly.
fn anomaly(sorted: &[Candidate], guard: &AnomalyGuard) -> Option<String> {
    let (newest, earlier) = sorted.split_first()?;
    let mut sizes: Vec<u64> = earlier
        .iter()
        .take(guard.window)
        .map(|c| c.logical_bytes)
        .collect();
    if sizes.is_empty() {
        return None;
    }
    sizes.sort_unstable();
    let median = if sizes.len() % 2 == 1 {
        sizes[sizes.len() / 2] as f64
    } else {
        (sizes[sizes.len() / 2 - 1] as f64 + sizes[sizes.len() / 2] as f64) / 2.0
    };
    ((newest.logical_bytes as f64) < guard.ratio * median).then(|| {
        format!(
            "the newest backup {} is {} bytes, less than {:.0}% of the median of the {} before it ({:.0} bytes): a partial dump? nothing is deleted until a backup of normal size exists",
            newest.id,
            newest.logical_bytes,
            guard.ratio * 100.0,
            sizes.len(),
            median
        )
    })
}

/// The ids a plan deletes, for callers that compare plans.
pub fn deleted_ids(plan: &Plan) -> BTreeSet<String> {
    plan.deleted().map(|d| d.id.clone()).collect()
}

#[cfg(test)]
mod tests;
