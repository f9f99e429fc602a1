//! The health gate and the served-build check, shared by every deployer: HTTP probes
//! with the configured Host header and per-probe timeout, repeated at the interval
//! until the expected status (not merely "some answer": a 3xx or a body saying
//! "unhealthy" under 200 is the app's business, the status is ours) or the deadline.

use std::time::{Duration, Instant};

use drydock_domain::config::{expand_rev, BuildIdCheck, HttpGate};
use drydock_domain::Cancel;

/// One probe's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// The header asked for, if any.
    pub header: Option<String>,
}

/// `GET base + path` once, with `host` as the Host header, within `timeout`.
pub fn probe(
    base: &str,
    path: &str,
    host: Option<&str>,
    header: Option<&str>,
    timeout: Duration,
) -> Result<Answer, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    let mut request = agent.get(&url);
    if let Some(host) = host {
        request = request.header("Host", host);
    }
    let mut response = request.call().map_err(|e| format!("GET {url}: {e}"))?;
    let status = response.status().as_u16();
    let header = header.and_then(|h| {
        response
            .headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    });
    let body = response
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    Ok(Answer {
        status,
        body,
        header,
    })
}

/// Probes `base` until it answers `gate.status` on `gate.path` or `gate.deadline`
/// passes. Ok: how long it took and how many probes. Err: the last answer or error.
pub fn wait_healthy(
    base: &str,
    gate: &HttpGate,
    cancel: &Cancel,
) -> Result<(Duration, u32), String> {
    let started = Instant::now();
    let mut probes = 0;
    loop {
        probes += 1;
        let last = match probe(base, &gate.path, gate.host.as_deref(), None, gate.timeout) {
            Ok(a) if a.status == gate.status => return Ok((started.elapsed(), probes)),
            Ok(a) => format!("answered {} (expected {})", a.status, gate.status),
            Err(e) => e,
        };
        let left = gate.deadline.saturating_sub(started.elapsed());
        if left.is_zero() || cancel.is_cancelled() {
            return Err(format!(
                "not healthy after {} probes in {:.0?}: {last}",
                probes,
                started.elapsed()
            ));
        }
        std::thread::sleep(gate.interval.min(left));
    }
}

/// Whether `base` serves the build `check.expect` (with `{rev}` as `commit`). Ok: the id
/// seen. Err: what was seen instead.
pub fn served_build(
    base: &str,
    check: &BuildIdCheck,
    gate: &HttpGate,
    commit: &str,
) -> Result<String, String> {
    let expected = expand_rev(&check.expect, commit);
    let path = check.path.as_deref().unwrap_or(&gate.path);
    let answer = probe(
        base,
        path,
        gate.host.as_deref(),
        check.header.as_deref(),
        gate.timeout,
    )?;
    let seen = match &check.header {
        Some(h) => answer
            .header
            .ok_or_else(|| format!("no `{h}` header in the answer to {path}"))?,
        None => answer.body.trim().to_string(),
    };
    if seen == expected {
        Ok(seen)
    } else {
        Err(format!("serves build `{seen}`, expected `{expected}`"))
    }
}
