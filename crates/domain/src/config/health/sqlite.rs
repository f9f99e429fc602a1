//! `kind = "sqlite"`: the database file opens and passes a quick integrity check.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::spec::{CheckKindSpec, CheckValidation};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteCheck {
    pub path: PathBuf,
}

/// The `sqlite` kind.
pub(super) enum SqliteKind {}

impl CheckKindSpec for SqliteKind {
    type Config = SqliteCheck;
    const NAME: &'static str = "sqlite";

    fn validate(s: &mut SqliteCheck, v: &mut CheckValidation<'_, '_>) {
        v.absolute(&mut s.path);
    }

    fn paths(s: &SqliteCheck) -> Vec<&Path> {
        vec![&s.path]
    }
}
