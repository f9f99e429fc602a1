//! Writing a report as `FILE.json` + `FILE.md` beside each other: where the operator
//! said, or under `state_dir/reports/` with a name and a time. Drill and certify
//! reports go through here.

use std::path::{Path, PathBuf};

use drydock_domain::config::Config;
use jiff::Timestamp;

use crate::EngineError;

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

/// Writes both files (creating the folder).
pub(crate) fn write(base: &Path, json: &[u8], markdown: &str) -> Result<(), EngineError> {
    let err = |path: &Path, cause| EngineError::State {
        path: path.to_path_buf(),
        cause,
    };
    if let Some(dir) = base.parent() {
        std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    }
    let json_path = base.with_extension("json");
    let md_path = base.with_extension("md");
    std::fs::write(&json_path, json).map_err(|e| err(&json_path, e))?;
    std::fs::write(&md_path, markdown).map_err(|e| err(&md_path, e))
}
