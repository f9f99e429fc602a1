//! `kind = "oidc"`: an OpenID Connect issuer's discovery document and keys answer.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::spec::{url_endpoints, CheckKindSpec, CheckValidation};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OidcCheck {
    /// The issuer URL; the discovery document is `ISSUER/.well-known/openid-configuration`.
    pub issuer: String,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// The `oidc` kind.
pub(super) enum OidcKind {}

impl CheckKindSpec for OidcKind {
    type Config = OidcCheck;
    const NAME: &'static str = "oidc";

    fn validate(o: &mut OidcCheck, v: &mut CheckValidation<'_, '_>) {
        v.url("issuer", &o.issuer, &["https", "http"]);
        v.absolute_opt(&mut o.ca_file);
    }

    fn endpoints(o: &OidcCheck) -> Vec<(String, u16)> {
        url_endpoints(&o.issuer)
    }
}
