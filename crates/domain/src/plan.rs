//! Which sources a run touches, and in what order: priorities, selection, ordering.
//!
//! A plan is computed from the config alone, so `backup`, `restore` and later `drill`
//! agree on what "the critical sources" are and always handle them first.

use crate::config::{Config, ServiceConfig, SourceConfig};
use serde::{Deserialize, Serialize};
// Callers have always found `Priority` here.
pub use crate::vocabulary::Priority;

/// Which sources a command asked for. Plain data (a schedule can store it); with the
/// `clap` feature it is also the command line's `--all`, `--priority` and `--service`.
//
// The field docs are the `--help` lines.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
#[serde(default, deny_unknown_fields)]
pub struct Selection {
    /// Every source with a priority (all but `none`).
    #[cfg_attr(feature = "clap", arg(long, conflicts_with = "priorities"))]
    pub all: bool,
    /// Only these priorities, e.g. `--priority critical,high`.
    // Empty: the default set (critical and high: what a daily run backs up).
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "priority",
            value_name = "PRIORITY",
            value_delimiter = ',',
            value_parser = parse_priority
        )
    )]
    pub priorities: Vec<Priority>,
    /// Only this service (repeatable).
    // Empty: every service.
    #[cfg_attr(feature = "clap", arg(long = "service", short = 's'))]
    pub services: Vec<String>,
}

#[cfg(feature = "clap")]
fn parse_priority(s: &str) -> Result<Priority, String> {
    s.parse()
}

impl Selection {
    pub fn all() -> Self {
        Selection {
            all: true,
            ..Default::default()
        }
    }

    fn wants(&self, priority: Priority) -> bool {
        if priority == Priority::None {
            return self.priorities.contains(&Priority::None);
        }
        if self.all {
            return true;
        }
        if self.priorities.is_empty() {
            return matches!(priority, Priority::Critical | Priority::High);
        }
        self.priorities.contains(&priority)
    }
}

/// One source of a plan.
#[derive(Debug, Clone, Copy)]
pub struct PlannedSource<'a> {
    pub service: &'a str,
    pub service_config: &'a ServiceConfig,
    pub source: &'a SourceConfig,
}

impl PlannedSource<'_> {
    /// `service/source`, the name users see.
    pub fn label(&self) -> String {
        format!("{}/{}", self.service, self.source.name())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error("no service named `{0}` in the config; known services: {1}")]
    UnknownService(String, String),
    #[error("the selection matches no data source; check --service/--priority or use --all")]
    Empty,
}

/// A source of a selected service that a run did not take, and why: `backup` says so,
/// so no one believes a source is protected because it is in the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    pub service: String,
    pub source: String,
    pub priority: Priority,
    pub because: LeftOutBecause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeftOutBecause {
    /// Neither `--priority` nor `--all`: the default set is critical and high.
    NotInDefault,
    /// `--priority` named other classes.
    NotAsked,
    /// Priority `none` is taken only when `--priority none` asks for it, even with `--all`.
    PriorityNone,
}

/// The sources of the selected services that the selection's priorities leave out,
/// in config order.
pub fn left_out(config: &Config, selection: &Selection) -> Vec<LeftOut> {
    config
        .sources()
        .filter(|(service, _, _)| {
            selection.services.is_empty() || selection.services.iter().any(|s| s == service)
        })
        .filter(|(_, _, source)| !selection.wants(source.priority()))
        .map(|(service, _, source)| {
            let priority = source.priority();
            let because = if priority == Priority::None {
                LeftOutBecause::PriorityNone
            } else if selection.priorities.is_empty() {
                LeftOutBecause::NotInDefault
            } else {
                LeftOutBecause::NotAsked
            };
            LeftOut {
                service: service.to_string(),
                source: source.name().to_string(),
                priority,
                because,
            }
        })
        .collect()
}

/// The selected sources, critical first, then by service and source name.
pub fn plan<'a>(
    config: &'a Config,
    selection: &Selection,
) -> Result<Vec<PlannedSource<'a>>, PlanError> {
    for wanted in &selection.services {
        if !config.services.contains_key(wanted) {
            let known: Vec<&str> = config.services.keys().map(String::as_str).collect();
            return Err(PlanError::UnknownService(wanted.clone(), known.join(", ")));
        }
    }
    let mut planned: Vec<PlannedSource<'a>> = config
        .sources()
        .filter(|(service, _, _)| {
            selection.services.is_empty() || selection.services.iter().any(|s| s == service)
        })
        .filter(|(_, _, source)| selection.wants(source.priority()))
        .map(|(service, service_config, source)| PlannedSource {
            service,
            service_config,
            source,
        })
        .collect();
    planned.sort_by(|a, b| {
        (a.source.priority(), a.service, a.source.name()).cmp(&(
            b.source.priority(),
            b.service,
            b.source.name(),
        ))
    });
    if planned.is_empty() {
        return Err(PlanError::Empty);
    }
    Ok(planned)
}
