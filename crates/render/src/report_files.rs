//! Writing a report's two files: `FILE.json` (its serde shape) and `FILE.md` (its
//! Markdown rendering) beside each other, at the paths the engine named in the
//! report's `report_files`. The CLI calls this after a drill or certify; the daemon
//! will call the same, so both write the same bytes.

use std::path::{Path, PathBuf};

use drydock_engine::certify::CertifyReport;
use drydock_engine::drill::DrillReport;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ReportFileError {
    #[error("cannot write the report file {path}: {cause}; check that the folder is writable and the disk has room, or pick another place with --report")]
    Write {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
}

/// Writes a drill's report files (none when the report names none).
pub fn write_drill(report: &DrillReport) -> Result<(), ReportFileError> {
    write(
        &report.report_files,
        report,
        &crate::drill::markdown(report),
    )
}

/// Writes a certification's report files (none when the report names none).
pub fn write_certify(report: &CertifyReport) -> Result<(), ReportFileError> {
    write(
        &report.report_files,
        report,
        &crate::certify::markdown(report),
    )
}

/// Each named file gets the rendering its extension asks for; the folder is created.
fn write(files: &[String], report: &impl Serialize, markdown: &str) -> Result<(), ReportFileError> {
    for file in files {
        let path = Path::new(file);
        let bytes = if path.extension().is_some_and(|e| e == "md") {
            markdown.as_bytes().to_vec()
        } else {
            serde_json::to_vec_pretty(report).expect("a report serializes")
        };
        let err = |at: &Path| {
            let at = at.to_path_buf();
            move |cause| ReportFileError::Write { path: at, cause }
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err(dir))?;
        }
        std::fs::write(path, bytes).map_err(err(path))?;
    }
    Ok(())
}
