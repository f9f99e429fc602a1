//! `drydock populate SERVICE`: writes the deterministic test data set (users ->
//! projects -> files, over 1 MB; `drydock_sources::testdata`) into every data source of
//! a service, measures it back, and remembers the expected measures, so a drill or
//! `certify` can later prove a restore brought exactly that data back (step 5 of the readiness routine).

use std::sync::Arc;

use drydock_domain::config::Config;
use drydock_domain::{Event, Priority};
use drydock_sources::{TestData, TestMeasures};
use drydock_state::{StateDb, TestDataRecord};
use serde::{Deserialize, Serialize};

use crate::EngineError;
use crate::RunContext;

/// Default size of the file content in each source's test set.
pub const DEFAULT_MIN_BYTES: u64 = 2 << 20;

/// What `populate` writes. The field docs are also the `--help` lines (`clap` feature).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct PopulateOptions {
    /// The service whose data sources get the test data set.
    pub service: String,
    /// The same seed always writes the same data.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 1))]
    pub seed: u64,
    /// At least this much file content per source, e.g. `2MB`, `512KB` (default 2 MiB).
    // In bytes; the default is shown in the line above, in words.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "size",
            value_name = "SIZE",
            value_parser = parse_size,
            default_value_t = DEFAULT_MIN_BYTES,
            hide_default_value = true
        )
    )]
    pub min_bytes: u64,
}

impl Default for PopulateOptions {
    fn default() -> Self {
        PopulateOptions {
            service: String::new(),
            seed: 1,
            min_bytes: DEFAULT_MIN_BYTES,
        }
    }
}

/// A size as users write it: `2MB`, `512KB`, `1G`, plain bytes; K, M and G are binary
/// (KiB, MiB, GiB), with or without `B`/`iB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_uppercase();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}` is not a size; write e.g. 2MB or 512KB"))?;
    let factor = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("`{s}` has no known unit; write e.g. 2MB or 512KB")),
    };
    Ok(n * factor)
}

#[derive(Debug, Clone, Serialize)]
pub struct PopulateReport {
    pub service: String,
    pub seed: u64,
    /// Every source got its set and measured back exactly.
    pub ok: bool,
    pub sources: Vec<PopulatedSource>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PopulatedSource {
    pub source: String,
    pub kind: String,
    /// The verification query set's expected answers.
    pub expected: TestMeasures,
    /// What measuring right after writing gave.
    pub measured: Option<TestMeasures>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub fn populate(
    config: &Config,
    opts: &PopulateOptions,
    ctx: &RunContext,
) -> Result<PopulateReport, EngineError> {
    let events = Arc::clone(&ctx.events);
    crate::health::select(config, std::slice::from_ref(&opts.service))?;
    let service = &config.services[&opts.service];
    let sources: Vec<_> = service
        .data
        .iter()
        .filter(|s| s.priority() != Priority::None)
        .collect();
    if sources.is_empty() {
        return Err(EngineError::Refused(format!(
            "service `{}` declares no data source with a priority; nothing to populate",
            opts.service
        )));
    }
    let state = StateDb::open(&config.stack.state_dir)?;
    let data = TestData::generate(opts.seed, opts.min_bytes);
    let expected = data.expected();
    let mut results = Vec::new();
    for source_config in sources {
        let label = format!("{}/{}", opts.service, source_config.name());
        events.emit(Event::Step {
            message: format!(
                "{label}: writing {} users, {} projects, {} files ({} bytes)",
                expected.users, expected.projects, expected.files, expected.content_bytes
            ),
        });
        let source = drydock_sources::build(source_config);
        let outcome = source
            .populate(&data)
            .and_then(|()| source.measure_test_data())
            .map_err(|e| e.to_string());
        let mut result = PopulatedSource {
            source: label.clone(),
            kind: source.kind().to_string(),
            expected: expected.clone(),
            measured: None,
            error: None,
        };
        match outcome {
            Ok(measured) => {
                let differences = measured.differences(&expected);
                if differences.is_empty() {
                    state.record_test_data(&TestDataRecord {
                        service: opts.service.clone(),
                        source: source_config.name().to_string(),
                        seed: opts.seed,
                        min_bytes: opts.min_bytes,
                        expected: serde_json::to_string(&expected).expect("measures serialize"),
                        written_at: jiff::Timestamp::now(),
                    })?;
                } else {
                    result.error = Some(format!(
                        "written, but measured back differently: {}",
                        differences.join("; ")
                    ));
                }
                result.measured = Some(measured);
            }
            Err(e) => result.error = Some(e),
        }
        results.push(result);
    }
    Ok(PopulateReport {
        service: opts.service.clone(),
        seed: opts.seed,
        ok: results.iter().all(|r| r.error.is_none()),
        sources: results,
    })
}

/// The test data `populate` wrote into `service/source` and what it should measure,
/// or `None` when nothing was populated there.
pub fn expected_test_data(
    state: &StateDb,
    service: &str,
    source: &str,
) -> Result<Option<TestMeasures>, EngineError> {
    Ok(state
        .test_data(service, source)?
        .and_then(|rec| serde_json::from_str(&rec.expected).ok()))
}

impl PopulateReport {
    /// Ok when every source got its test data, else failed.
    pub fn verdict(&self) -> drydock_domain::Verdict {
        if self.ok {
            drydock_domain::Verdict::Ok
        } else {
            drydock_domain::Verdict::Failed
        }
    }
}
