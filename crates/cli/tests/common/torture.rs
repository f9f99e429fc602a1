//! The torture suite's harness: quick or full mode, how many trials a scenario runs, a
//! seed every trial can be replayed from, and the per-scenario record (runs, failures,
//! data lost, how to reproduce) that `scripts/torture-report` turns into RELIABILITY.md.
//!
//! Quick mode (the default, what `.ci/run` runs) keeps every scenario inside the CI budget;
//! `DRYDOCK_TORTURE=full` runs the full trial counts. `DRYDOCK_TORTURE_SEED=N`
//! replays one scenario's trials from the seed a failure printed.

use std::path::PathBuf;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Quick,
    Full,
}

impl Mode {
    pub fn current() -> Mode {
        match std::env::var("DRYDOCK_TORTURE").as_deref() {
            Ok("full") => Mode::Full,
            Ok("quick") | Ok("") | Err(_) => Mode::Quick,
            Ok(other) => panic!("DRYDOCK_TORTURE={other}: expected `quick` or `full`"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Quick => "quick",
            Mode::Full => "full",
        }
    }
}

/// The trial count of a scenario in the current mode.
pub fn runs(quick: usize, full: usize) -> usize {
    match Mode::current() {
        Mode::Quick => quick,
        Mode::Full => full,
    }
}

/// Why a trial failed. `DataLost` is the one that must never happen: a backup the policy
/// keeps no longer restores exactly, wrong data was written, or a run claimed success with
/// data missing. `?` on a `String` error gives `Failed`.
#[derive(Debug)]
pub enum Failure {
    Failed(String),
    DataLost(String),
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure::Failed(why)
    }
}

impl From<&str> for Failure {
    fn from(why: &str) -> Failure {
        Failure::Failed(why.into())
    }
}

/// One scenario's trials and their outcome. Call [`Tally::finish`] at the end: it writes
/// the record and fails the test when any trial failed or lost data.
pub struct Tally {
    scenario: String,
    reproduce: String,
    seed: u64,
    rng: StdRng,
    runs: usize,
    failures: Vec<String>,
    data_lost: usize,
    started: Instant,
    /// Scenario-specific counts (job runs, retries ...), kept in the record as `figures`.
    figures: serde_json::Map<String, serde_json::Value>,
}

impl Tally {
    /// `scenario` is the row's name in RELIABILITY.md; `test` the test function, from
    /// which the reproduce command is derived.
    pub fn new(scenario: &str, test_binary: &str, test: &str) -> Tally {
        let seed = match std::env::var("DRYDOCK_TORTURE_SEED") {
            Ok(s) => s
                .parse()
                .unwrap_or_else(|_| panic!("DRYDOCK_TORTURE_SEED={s}: expected a number")),
            Err(_) => rand::rng().random(),
        };
        eprintln!("torture: {scenario}: seed {seed} (replay with DRYDOCK_TORTURE_SEED={seed})");
        Tally {
            scenario: scenario.into(),
            reproduce: format!(
                "DRYDOCK_TORTURE={} scripts/test -E 'binary({test_binary}) & test({test})'",
                Mode::current().name()
            ),
            seed,
            rng: StdRng::seed_from_u64(seed),
            runs: 0,
            failures: Vec::new(),
            data_lost: 0,
            started: Instant::now(),
            figures: serde_json::Map::new(),
        }
    }

    /// The scenario's random source: trials drawn from it replay from the printed seed.
    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// Runs one trial. An `Err` is kept with its trial number for the report; a panic
    /// inside the trial propagates and fails the test at once.
    pub fn trial(&mut self, run: impl FnOnce(&mut StdRng) -> Result<(), Failure>) {
        self.runs += 1;
        let n = self.runs;
        match run(&mut self.rng) {
            Ok(()) => {}
            Err(Failure::Failed(why)) => {
                eprintln!("torture: {}: trial {n} failed: {why}", self.scenario);
                self.failures.push(format!("trial {n}: {why}"));
            }
            Err(Failure::DataLost(what)) => {
                eprintln!("torture: {}: trial {n} LOST DATA: {what}", self.scenario);
                self.data_lost += 1;
                self.failures.push(format!("trial {n}: DATA LOST: {what}"));
            }
        }
    }

    /// Adds (or, for a number, adds to) a scenario-specific figure of the record.
    pub fn figure(&mut self, name: &str, value: serde_json::Value) {
        let sum = match (self.figures.get(name), &value) {
            (Some(old), serde_json::Value::Number(n)) if old.is_u64() && n.is_u64() => {
                serde_json::Value::from(old.as_u64().unwrap() + n.as_u64().unwrap())
            }
            _ => value,
        };
        self.figures.insert(name.into(), sum);
    }

    /// Writes the record under `target/torture/<mode>/` and fails the test on any failure.
    pub fn finish(self) {
        let dir = records_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let record = serde_json::json!({
            "scenario": self.scenario,
            "mode": Mode::current().name(),
            "runs": self.runs,
            "failures": self.failures.len(),
            "data_lost": self.data_lost,
            "seed": self.seed,
            "seconds": self.started.elapsed().as_secs_f64(),
            "reproduce": self.reproduce,
            "failure_details": self.failures,
            "figures": self.figures,
        });
        let slug: String = self
            .scenario
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        std::fs::write(
            dir.join(format!("{slug}.json")),
            serde_json::to_string_pretty(&record).unwrap(),
        )
        .unwrap();
        assert!(
            self.failures.is_empty(),
            "{}: {} of {} trials failed (seed {}):\n{}",
            self.scenario,
            self.failures.len(),
            self.runs,
            self.seed,
            self.failures.join("\n")
        );
    }
}

/// Where scenario records go: `target/torture/<mode>/`.
pub fn records_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("torture")
        .join(Mode::current().name())
}

/// `return Err(Failure::Failed(..))` unless `cond`: a scenario's check of what drydock
/// did, with the message formatted as `format!` does.
#[macro_export]
macro_rules! check {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err($crate::common::torture::Failure::Failed(format!($($why)+)));
        }
    };
}

/// `return Err(Failure::DataLost(..))` unless `cond`: data a good backup held is gone.
#[macro_export]
macro_rules! lost_unless {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err($crate::common::torture::Failure::DataLost(format!($($why)+)));
        }
    };
}
