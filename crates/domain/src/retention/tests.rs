//! Retention: worked examples, the guards, and a property test of the streaming
//! algorithm against a reference model written the other way round (group into
//! buckets first, then take the newest buckets).

use std::collections::{BTreeMap, BTreeSet};

use jiff::tz::TimeZone;
use jiff::Timestamp;
use proptest::prelude::*;

use super::*;

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn cand(id: &str, time: &str, bytes: u64, verified: bool) -> Candidate {
    Candidate {
        id: id.into(),
        time: ts(time),
        logical_bytes: bytes,
        verified,
        newest_created: false,
    }
}

const NO_GUARD: AnomalyGuard = AnomalyGuard {
    ratio: 0.0,
    window: 7,
};

fn kept(plan: &Plan) -> Vec<&str> {
    plan.decisions
        .iter()
        .filter(|d| d.keep)
        .map(|d| d.id.as_str())
        .collect()
}

/// A backup taken while the clock was behind is dated before older ones of its day: the
/// rules alone would delete it, the newest data.
#[test]
fn the_newest_created_backup_is_kept_whatever_its_date() {
    let mut c = vec![
        cand("fast-clock", "2026-11-30T12:09:00Z", 10, true),
        cand("right", "2026-11-30T12:01:00Z", 10, true),
        cand("newest", "2026-11-30T12:05:00Z", 10, true),
    ];
    c[2].newest_created = true;
    let rules = KeepRules {
        daily: 1,
        weekly: 1,
        monthly: 1,
    };
    let p = plan(&c, &rules, &NO_GUARD, &TimeZone::UTC);
    assert_eq!(kept(&p), ["fast-clock", "newest"]);
    let newest = p.decisions.iter().find(|d| d.id == "newest").unwrap();
    assert_eq!(newest.reasons, ["newest created backup"]);
    assert_eq!(deleted_ids(&p), BTreeSet::from(["right".into()]));
}

#[test]
fn daily_keeps_the_newest_of_each_day_and_says_why() {
    let c = vec![
        cand("a", "2026-11-28T08:00:00Z", 10, true),
        cand("b", "2026-11-28T20:00:00Z", 10, true),
        cand("c", "2026-11-29T08:00:00Z", 10, true),
        cand("d", "2026-11-30T08:00:00Z", 10, true),
    ];
    let rules = KeepRules {
        daily: 2,
        weekly: 0,
        monthly: 0,
    };
    let p = plan(&c, &rules, &NO_GUARD, &TimeZone::UTC);
    assert_eq!(kept(&p), ["d", "c"]);
    assert_eq!(
        p.decisions[0].reasons,
        ["daily 2026-11-30", "newest verified backup"]
    );
    assert_eq!(p.decisions[2].reasons, ["no rule keeps it"]);
    assert_eq!(deleted_ids(&p), BTreeSet::from(["a".into(), "b".into()]));
}

#[test]
fn buckets_follow_the_operators_time_zone() {
    // 23:30 UTC on the 29th is the 30th in Berlin: one day there, two in UTC.
    let c = vec![
        cand("late", "2026-11-29T23:30:00Z", 10, true),
        cand("next", "2026-11-30T06:00:00Z", 10, true),
    ];
    let rules = KeepRules {
        daily: 5,
        weekly: 0,
        monthly: 0,
    };
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    assert_eq!(kept(&plan(&c, &rules, &NO_GUARD, &berlin)), ["next"]);
    assert_eq!(
        kept(&plan(&c, &rules, &NO_GUARD, &TimeZone::UTC)),
        ["next", "late"]
    );
}

#[test]
fn the_newest_verified_backup_is_kept_whatever_the_rules() {
    let c = vec![
        cand("old-verified", "2026-11-01T08:00:00Z", 10, true),
        cand("new-unverified", "2026-11-30T08:00:00Z", 10, false),
    ];
    let rules = KeepRules {
        daily: 1,
        weekly: 0,
        monthly: 0,
    };
    let p = plan(&c, &rules, &NO_GUARD, &TimeZone::UTC);
    assert_eq!(kept(&p), ["new-unverified", "old-verified"]);
    assert_eq!(p.decisions[1].reasons, ["newest verified backup"]);
}

#[test]
fn a_suspiciously_small_newest_backup_stops_all_deletion() {
    let mut c: Vec<Candidate> = (1..=9)
        .map(|d| {
            cand(
                &format!("b{d}"),
                &format!("2026-11-{d:02}T08:00:00Z"),
                1000,
                true,
            )
        })
        .collect();
    c.push(cand("tiny", "2026-11-10T08:00:00Z", 300, true));
    let rules = KeepRules {
        daily: 2,
        weekly: 0,
        monthly: 0,
    };
    let guard = AnomalyGuard {
        ratio: 0.5,
        window: 7,
    };
    let p = plan(&c, &rules, &guard, &TimeZone::UTC);
    assert_eq!(p.deleted().count(), 0);
    assert_eq!(p.warnings.len(), 1);
    assert!(
        p.warnings[0].contains(
            "tiny is 300 bytes, less than 50% of the median of the 7 before it (1000 bytes)"
        ),
        "{}",
        p.warnings[0]
    );
    assert!(p
        .decisions
        .iter()
        .any(|d| d.reasons.contains(&"anomaly guard".to_string())));
    // A normal-sized newest backup lets the rules work again.
    c.push(cand("normal", "2026-11-11T08:00:00Z", 990, true));
    let p = plan(&c, &rules, &guard, &TimeZone::UTC);
    assert!(p.warnings.is_empty());
    assert_eq!(kept(&p), ["normal", "tiny"]);
}

/// The reference model: per rule, the newest backup of each bucket, buckets newest
/// first, the first `count` of them.
fn reference(c: &[Candidate], rules: &KeepRules, tz: &TimeZone) -> BTreeSet<String> {
    let mut sorted = c.to_vec();
    order(&mut sorted);
    let mut keep = BTreeSet::new();
    for (rule, count) in [
        (Rule::Daily, rules.daily),
        (Rule::Weekly, rules.weekly),
        (Rule::Monthly, rules.monthly),
    ] {
        // bucket -> (position of its newest member, id)
        let mut buckets: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for (pos, cand) in sorted.iter().enumerate() {
            buckets
                .entry(rule.bucket(cand.time, tz))
                .or_insert((pos, cand.id.clone()));
        }
        let mut reps: Vec<(usize, String)> = buckets.into_values().collect();
        reps.sort();
        keep.extend(reps.into_iter().take(count as usize).map(|(_, id)| id));
    }
    if let Some(v) = sorted.iter().find(|c| c.verified) {
        keep.insert(v.id.clone());
    }
    keep
}

fn timeline() -> impl Strategy<Value = Vec<Candidate>> {
    // Around the 2025 autumn and 2026 spring DST changes in Europe/Berlin, with
    // duplicate timestamps (several sources/backups in the same second).
    let start = ts("2025-10-20T00:00:00Z").as_second();
    prop::collection::vec(
        (0i64..(170 * 86400), any::<bool>(), 1u64..1000, 0u8..4),
        1..60,
    )
    .prop_map(move |items| {
        let mut out = Vec::new();
        for (i, (offset, verified, bytes, dup)) in items.into_iter().enumerate() {
            let time = Timestamp::from_second(start + offset).unwrap();
            for d in 0..=(dup / 3) {
                out.push(Candidate {
                    id: format!("id{i:03}-{d}"),
                    time,
                    logical_bytes: bytes,
                    verified,
                    newest_created: false,
                });
            }
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn matches_the_reference_model(
        c in timeline(),
        daily in 0u32..10,
        weekly in 0u32..6,
        monthly in 0u32..5,
        berlin in any::<bool>(),
    ) {
        let tz = if berlin { TimeZone::get("Europe/Berlin").unwrap() } else { TimeZone::UTC };
        let rules = KeepRules { daily, weekly, monthly };
        let p = plan(&c, &rules, &NO_GUARD, &tz);
        let kept: BTreeSet<String> = p.decisions.iter().filter(|d| d.keep).map(|d| d.id.clone()).collect();
        prop_assert_eq!(&kept, &reference(&c, &rules, &tz));
        // Every candidate is decided once, and every decision says why.
        prop_assert_eq!(p.decisions.len(), c.len());
        prop_assert!(p.decisions.iter().all(|d| !d.reasons.is_empty()));
        // Deterministic: shuffled input, same plan.
        let mut reversed = c.clone();
        reversed.reverse();
        prop_assert_eq!(plan(&reversed, &rules, &NO_GUARD, &tz), p);
    }

    #[test]
    fn the_guards_only_ever_keep_more(c in timeline(), daily in 0u32..5) {
        let rules = KeepRules { daily, weekly: 0, monthly: 0 };
        let guard = AnomalyGuard { ratio: 0.5, window: 7 };
        let plain = deleted_ids(&plan(&c, &rules, &NO_GUARD, &TimeZone::UTC));
        let guarded = deleted_ids(&plan(&c, &rules, &guard, &TimeZone::UTC));
        prop_assert!(guarded.is_subset(&plain));
        // The newest verified backup is never deleted.
        let mut sorted = c.clone();
        order(&mut sorted);
        if let Some(v) = sorted.iter().find(|c| c.verified) {
            prop_assert!(!guarded.contains(&v.id));
        }
    }
}
