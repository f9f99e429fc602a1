//! The words every part of drydock shares: how much a source matters ([`Priority`]),
//! what kind of data it is ([`SourceKind`]) and what part a service plays ([`Role`]).
//!
//! They live here, apart from the config and the plan that use them, so that no two
//! modules of this crate need each other: this file imports nothing from the crate.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How much a source matters. Ordered: `Critical` sorts first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Critical,
    High,
    Medium,
    Low,
    /// Declared, deliberately never backed up.
    None,
}

impl Priority {
    pub const ALL: [Priority; 5] = [
        Priority::Critical,
        Priority::High,
        Priority::Medium,
        Priority::Low,
        Priority::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "critical",
            Priority::High => "high",
            Priority::Medium => "medium",
            Priority::Low => "low",
            Priority::None => "none",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!("unknown priority `{s}`; use critical, high, medium, low or none")
            })
    }
}

/// The source kinds' stable names: written by `source_kinds!` from the one list of
/// kinds (`config/sources/registry.rs`), re-exported here with the rest of the
/// vocabulary.
pub use crate::config::sources::SourceKind;

/// The part a service plays in the stack (`role = "infra"` or `"app"`; `drydock init`
/// takes it from the Compose profile).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Infra,
    App,
}
