//! What a load reports: each problem as `file:line: key: message` ([`ConfigError`]),
//! all of them at once ([`ConfigErrors`]), and the [`Collector`] the sections push
//! them into while a load runs.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::spans::{KeyPath, SpanIndex};

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    /// Dotted key path, empty for file-level problems.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in one config file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            writeln!(f, "{e}")?;
        }
        let n = self.0.len();
        write!(
            f,
            "{n} error{} in {}",
            if n == 1 { "" } else { "s" },
            self.0
                .first()
                .map(|e| e.file.display().to_string())
                .unwrap_or_default()
        )
    }
}

impl std::error::Error for ConfigErrors {}

impl ConfigErrors {
    /// The first error, for callers that take one.
    pub fn first(&self) -> &ConfigError {
        &self.0[0]
    }
}

/// Collects errors with their lines while a load runs.
pub(super) struct Collector<'a> {
    pub(super) file: &'a Path,
    pub(super) spans: Option<&'a SpanIndex>,
    pub(super) errors: Vec<ConfigError>,
}

impl Collector<'_> {
    pub(super) fn push(&mut self, path: &KeyPath, message: impl Into<String>) {
        let line = self.spans.and_then(|s| s.line(path));
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            key: path.to_string(),
            message: message.into(),
        });
    }

    /// Deserializes one part of the document, recording a failure with its exact key.
    pub(super) fn section<T: DeserializeOwned>(
        &mut self,
        path: &KeyPath,
        value: toml::Value,
    ) -> Option<T> {
        match serde_path_to_error::deserialize::<_, T>(value) {
            Ok(v) => Some(v),
            Err(err) => {
                let mut at = path.clone();
                for seg in err.path().iter() {
                    match seg {
                        serde_path_to_error::Segment::Seq { index } => at = at.index(*index),
                        serde_path_to_error::Segment::Map { key } => at = at.key(key),
                        serde_path_to_error::Segment::Enum { .. }
                        | serde_path_to_error::Segment::Unknown => {}
                    }
                }
                let message = err.into_inner().to_string();
                // The toml deserializer appends "in `key`" lines; the path says that better.
                let message = message
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                // serde names an unknown key only in its message; point at that key's line.
                if let Some(field) = unknown_field(&message) {
                    if at.0.last() != Some(&crate::spans::Seg::Key(field.clone())) {
                        at = at.key(&field);
                    }
                    self.push(&at, format!("{message}; remove it or fix its spelling"));
                } else if message.starts_with("missing field") {
                    self.push(&at, format!("{message}; add it"));
                } else {
                    self.push(&at, message);
                }
                None
            }
        }
    }
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// The errors in file order (a stable sort: same-line errors keep the order found).
pub(super) fn sorted(mut errors: Vec<ConfigError>) -> Vec<ConfigError> {
    errors.sort_by_key(|e| e.line.unwrap_or(0));
    errors
}
