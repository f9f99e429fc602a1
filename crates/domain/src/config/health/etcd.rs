//! `kind = "etcd"`: the members answer, the cluster has a leader and the expected
//! number of members.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::spec::{url_endpoint, CheckKindSpec, CheckValidation};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EtcdCheck {
    /// Client URLs of the members to ask (`http://HOST:2379`).
    pub endpoints: Vec<String>,
    /// Members the cluster must have.
    #[serde(default)]
    pub expect_members: Option<usize>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// The `etcd` kind.
pub(super) enum EtcdKind {}

impl CheckKindSpec for EtcdKind {
    type Config = EtcdCheck;
    const NAME: &'static str = "etcd";

    fn validate(e: &mut EtcdCheck, v: &mut CheckValidation<'_, '_>) {
        if e.endpoints.is_empty() {
            v.push(
                "endpoints",
                "empty; list the members' client URLs (http://HOST:2379)",
            );
        }
        for (j, u) in e.endpoints.iter().enumerate() {
            v.url(&format!("endpoints[{j}]"), u, &["http", "https"]);
        }
        v.absolute_opt(&mut e.ca_file);
    }

    fn endpoints(e: &EtcdCheck) -> Vec<(String, u16)> {
        e.endpoints.iter().filter_map(|u| url_endpoint(u)).collect()
    }
}
