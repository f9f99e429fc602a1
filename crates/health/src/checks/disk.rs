//! `disk`: free space on the filesystem holding `path`, in percent and bytes, against
//! warning and critical thresholds.

use std::time::Instant;

use bytesize::ByteSize;
use drydock_domain::config::health::DiskCheck;

use crate::{Check, Outcome, Status, Verdict};

pub struct Disk {
    config: DiskCheck,
}

impl Disk {
    pub fn new(config: DiskCheck) -> Self {
        Disk { config }
    }
}

/// Total and available (to unprivileged users) bytes of the filesystem holding `path`.
pub fn space(path: &std::path::Path) -> Result<(u64, u64), String> {
    let st = nix::sys::statvfs::statvfs(path)
        .map_err(|e| format!("cannot stat the filesystem of {}: {e}", path.display()))?;
    let frsize = st.fragment_size() as u64;
    Ok((
        st.blocks() as u64 * frsize,
        st.blocks_available() as u64 * frsize,
    ))
}

impl Check for Disk {
    fn run(&self, _deadline: Instant) -> Outcome {
        let c = &self.config;
        let shown = c.path.display().to_string();
        let (total, free) = match space(&c.path) {
            Ok(s) => s,
            Err(e) => {
                let missing = !c.path.exists();
                return Outcome::critical(if missing {
                    format!("{shown} does not exist")
                } else {
                    e
                })
                .with("path", &shown)
                .with("missing", missing)
                .definitive();
            }
        };
        let free_pct = if total == 0 {
            0.0
        } else {
            free as f64 * 100.0 / total as f64
        };
        let mut v = Verdict::new();
        v.detail("path", &shown);
        v.detail("total_bytes", total);
        v.detail("free_bytes", free);
        v.detail("free_pct", (free_pct * 10.0).round() / 10.0);
        let text = format!(
            "{} free of {} ({free_pct:.1}%)",
            ByteSize::b(free),
            ByteSize::b(total)
        );
        let below_bytes = |limit: Option<ByteSize>| limit.is_some_and(|l| free < l.as_u64());
        if free_pct < c.critical_free_pct || below_bytes(c.critical_free_bytes) {
            v.problem(
                Status::Critical,
                format!("{text}: below the critical threshold"),
            );
        } else if free_pct < c.warn_free_pct || below_bytes(c.warn_free_bytes) {
            v.problem(
                Status::Warning,
                format!("{text}: below the warning threshold"),
            );
        }
        let mut o = v.finish(text);
        o.retry = false;
        o
    }
}
