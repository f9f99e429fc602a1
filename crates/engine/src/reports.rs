//! Where a report's `FILE.json` + `FILE.md` go: where the operator said, or under
//! `state_dir/reports/` with a name and a time. Drill and certify reports carry these
//! paths (the state database records them); the caller writes the files, with the
//! Markdown from `drydock-render`, since the engine returns data and renders nothing.

use std::path::{Path, PathBuf};

use drydock_domain::config::Config;
use jiff::Timestamp;

/// The base path (no extension): `file` without its extension, or
/// `state_dir/reports/NAME-YYYYmmdd-HHMMSS`.
pub(crate) fn base(config: &Config, file: Option<&Path>, name: &str, at: Timestamp) -> PathBuf {
    match file {
        Some(p) => p.with_extension(""),
        None => config
            .stack
            .state_dir
            .join("reports")
            .join(format!("{name}-{}", at.strftime("%Y%m%d-%H%M%S"))),
    }
}

/// The two files' paths, JSON first, as reports list them.
pub(crate) fn files(base: &Path) -> Vec<String> {
    vec![
        base.with_extension("json").display().to_string(),
        base.with_extension("md").display().to_string(),
    ]
}
