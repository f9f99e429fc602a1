//! Writes need `Authorization: Bearer <[serve] token>`: none given is 401 (with a
//! `WWW-Authenticate` challenge), a wrong one 403. The token is compared in constant
//! time over its SHA-256 (so neither its bytes nor its length leak through timing),
//! and never appears in a response or a log line.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::state::{error, AppState};

pub(super) async fn require_token(
    State(app): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(expected) = app.token.as_ref() else {
        return error(
            StatusCode::FORBIDDEN,
            "writes are disabled: this daemon has no [serve] token; set `token` in [serve] (a secret reference) and restart",
        );
    };
    let Some(given) = req.headers().get(header::AUTHORIZATION) else {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "this endpoint needs `Authorization: Bearer <token>` with the [serve] token",
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"drydock\""),
        );
        return response;
    };
    let given = given
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !same(given.trim().as_bytes(), expected.expose().as_bytes()) {
        tracing::warn!("refused a write with a wrong token");
        return error(
            StatusCode::FORBIDDEN,
            "the bearer token is not this daemon's [serve] token",
        )
        .into_response();
    }
    next.run(req).await
}

/// Constant-time equality of two secrets, over their digests.
fn same(given: &[u8], expected: &[u8]) -> bool {
    Sha256::digest(given)
        .ct_eq(&Sha256::digest(expected))
        .into()
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_same_token_matches() {
        assert!(super::same(b"s3cret", b"s3cret"));
        assert!(!super::same(b"s3cre", b"s3cret"));
        assert!(!super::same(b"", b"s3cret"));
    }
}
