//! `kind = "disk"`: free space on the filesystem holding a path, as a share and in
//! bytes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spec::{CheckKindSpec, CheckValidation};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiskCheck {
    /// A file or folder on the filesystem to check.
    pub path: PathBuf,
    /// Less free space (percent of the filesystem) is a warning ...
    #[serde(default = "DiskCheck::default_warn_free_pct")]
    pub warn_free_pct: f64,
    /// ... or critical.
    #[serde(default = "DiskCheck::default_critical_free_pct")]
    pub critical_free_pct: f64,
    /// Less free space than this (`"2 GiB"`, bytes as a number) is a warning ...
    #[serde(default)]
    pub warn_free_bytes: Option<bytesize::ByteSize>,
    /// ... or critical.
    #[serde(default)]
    pub critical_free_bytes: Option<bytesize::ByteSize>,
}

impl DiskCheck {
    /// The check a data path gets when nobody declared one. Nobody chose a share, so
    /// only bytes count: what matters is whether the next writes fit, and on a large
    /// shared disk 5% free is still many gigabytes (a percentage here warned about a
    /// 252 GiB disk with 23 GiB free).
    pub fn derived(path: PathBuf) -> Self {
        DiskCheck {
            path,
            warn_free_pct: 0.0,
            critical_free_pct: 0.0,
            warn_free_bytes: Some(bytesize::ByteSize::gib(2)),
            critical_free_bytes: Some(bytesize::ByteSize::mib(512)),
        }
    }

    fn default_warn_free_pct() -> f64 {
        20.0
    }
    fn default_critical_free_pct() -> f64 {
        10.0
    }
}

/// The `disk` kind.
pub(super) enum DiskKind {}

impl CheckKindSpec for DiskKind {
    type Config = DiskCheck;
    const NAME: &'static str = "disk";

    fn validate(d: &mut DiskCheck, v: &mut CheckValidation<'_, '_>) {
        v.absolute(&mut d.path);
        v.thresholds("free_pct", d.warn_free_pct, d.critical_free_pct, true);
        if let (Some(w), Some(cr)) = (d.warn_free_bytes, d.critical_free_bytes) {
            if cr > w {
                v.push(
                    "critical_free_bytes",
                    format!("must be at most warn_free_bytes ({w})"),
                );
            }
        }
    }

    fn paths(d: &DiskCheck) -> Vec<&Path> {
        vec![&d.path]
    }
}
