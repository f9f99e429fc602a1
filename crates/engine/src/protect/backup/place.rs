//! A backup's place in the stack's history, taken before any source is read: the
//! identity rule of a shared repository (a stack's backups in one repository come from
//! one host), the next sequence number (what `latest` goes by) and whether the clock
//! lies behind the newest backup.

use drydock_domain::config::{Config, LOCAL_COPY};
use drydock_domain::{plan, EventSink, Manifest};
use jiff::Timestamp;

use crate::copies::Catalog;
use crate::EngineError;

/// Where the next backup goes in the stack's history.
pub(super) struct Place {
    /// Its sequence number.
    pub(super) seq: u64,
    /// The newest backup, when its time is later than the clock's now (beyond the
    /// tolerance): its id and time.
    pub(super) newest_after_now: Option<(String, Timestamp)>,
}

/// Enforces the identity rule, and finds the next sequence number and whether the
/// clock lies behind the newest backup. Reads the local copy; only when it holds no
/// backup of the stack (a fresh machine), also every remote that can be read, so the
/// sequence goes on from the stack's history there and a host taking over a name
/// already used elsewhere is caught before its first backup.
pub(super) fn take_place(
    config: &Config,
    local: &drydock_storage::Repository,
    host: &str,
    planned: &[plan::PlannedSource<'_>],
    events: &dyn EventSink,
) -> Result<Place, EngineError> {
    let mut catalogs = vec![(
        LOCAL_COPY.to_string(),
        Catalog::load(local, &config.stack.name, events)?,
    )];
    if catalogs[0].1.manifests.is_empty() {
        for remote in &config.remotes {
            // Unreachable now: the sync after the backup reports it.
            if let Ok(c) = crate::copies::open_remote(config, remote, None)
                .and_then(|r| Catalog::load(&r, &config.stack.name, events))
            {
                catalogs.push((remote.name.clone(), c));
            }
        }
    }
    for (copy, catalog) in &catalogs {
        if let Some(newest) = catalog.newest() {
            check_identity(config, host, planned, copy, newest)?;
        }
    }
    let seq = catalogs
        .iter()
        .map(|(_, c)| c.next_seq())
        .max()
        .unwrap_or(1);
    let now = drydock_domain::clock::now();
    let newest_after_now = catalogs[0]
        .1
        .newest()
        .filter(|m| drydock_domain::clock::is_future(m.started_at, now))
        .map(|m| (m.id.to_string(), m.started_at));
    Ok(Place {
        seq,
        newest_after_now,
    })
}

/// The identity rule of a shared repository: a stack is its name *and* the host its
/// backups come from. A backup from host H2 into a copy whose newest backup of the
/// stack came from another host H1 is refused, whatever the sources: two hosts (or two
/// configs) with one stack name would otherwise share one history, so `latest` would
/// restore the other host's data and prune would apply one's retention to the other's
/// backups. A stack that really moved says so with `[stack] moved_from = "H1"`; a host
/// whose name is not stable (a container) sets `[stack] host`.
fn check_identity(
    config: &Config,
    host: &str,
    planned: &[plan::PlannedSource<'_>],
    copy: &str,
    newest: &Manifest,
) -> Result<(), EngineError> {
    if newest.host == host || config.stack.moved_from.as_deref() == Some(newest.host.as_str()) {
        return Ok(());
    }
    let theirs: Vec<String> = newest.sources.iter().map(|r| r.label()).collect();
    let ours: Vec<String> = planned.iter().map(|p| p.label()).collect();
    Err(EngineError::Refused(format!(
        "stack `{stack}` in copy `{copy}` ({location}) already holds backups from host `{other}` (newest {id}, sources {theirs}), and this is host `{host}` (sources {ours}); one stack name on two hosts would mix their backups (`latest` would restore the other host's data, prune would delete its backups), so nothing was stored. Give this config its own `[stack] name` in {file}; or, if stack `{stack}` moved from `{other}` to this host, set `[stack] moved_from = \"{other}\"`; or, if this is the same machine under a new host name, set `[stack] host = \"{other}\"`",
        stack = config.stack.name,
        location = crate::copies::location_of(config, copy),
        other = newest.host,
        id = newest.id,
        theirs = theirs.join(", "),
        ours = ours.join(", "),
        file = config.file.display(),
    )))
}
