//! The collected figures written as text by `prometheus-client`: the Prometheus text
//! format (0.0.4, what `promtool check metrics` reads and every Prometheus scrapes) or
//! OpenMetrics (what Prometheus asks for first). The figures are handed over as one
//! collector of constant metrics, so samples come out in the catalogue's order (a
//! `Family` would write them in hash order) and nothing is kept between scrapes.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::collect::{Collected, Value};
use crate::families::Kind;
use crate::MetricsError;

/// Which text exposition format to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The format a scraper's `Accept` header asks for: OpenMetrics when it names
    /// `application/openmetrics-text` (Prometheus does, with the classic format as a
    /// fallback), the Prometheus text format otherwise (curl, promtool, older scrapers).
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Debug)]
struct Figures(Collected);

impl Collector for Figures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (family, samples) in &self.0.families {
            let metric_type = match family.kind {
                Kind::Gauge => MetricType::Gauge,
                Kind::Counter => MetricType::Counter,
            };
            let mut metric =
                encoder.encode_descriptor(family.name, family.help, None, metric_type)?;
            for sample in samples {
                let labels: Vec<(&str, &str)> = family
                    .labels
                    .iter()
                    .copied()
                    .zip(sample.labels.iter().map(String::as_str))
                    .collect();
                let encoder = metric.encode_family(&labels)?;
                match sample.value {
                    Value::Gauge(v) => ConstGauge::new(v).encode(encoder)?,
                    Value::Counter(v) => ConstCounter::new(v).encode(encoder)?,
                }
            }
        }
        Ok(())
    }
}

/// Writes `collected` in `format`.
pub fn encode(collected: Collected, format: Format) -> Result<String, MetricsError> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Figures(collected)));
    let mut text = String::new();
    match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut text, &registry),
    }
    .map_err(|_| MetricsError::Encode)?;
    Ok(text)
}
