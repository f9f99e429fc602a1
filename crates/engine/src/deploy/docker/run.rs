//! What both docker strategies share: the service's containers found by their labels
//! (never by name), a new container started from `image` with `{rev}` as the commit,
//! the health gate, the rollback target and the pruning of kept containers.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use drydock_domain::config::{expand_rev, DockerDeploy};
use drydock_domain::Event;
use drydock_runtimes::docker::{ContainerFacts, DockerClient, RunSpec};

use crate::deploy::app::{timed, AppDeployed, AppFailure, AppStep, AppTarget};
use crate::deploy::gate;
use crate::RunContext;

pub(crate) const LABEL_STACK: &str = "drydock.stack";
pub(crate) const LABEL_SERVICE: &str = "drydock.service";
pub(crate) const LABEL_COMMIT: &str = "drydock.commit";
pub(crate) const LABEL_DEPLOYED_AT: &str = "drydock.deployed_at";

/// How long an old container has to exit after SIGTERM before it is killed (it has
/// served its last request by then: this runs after the drain).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// One of the service's containers.
#[derive(Debug, Clone)]
pub(super) struct Version {
    pub facts: ContainerFacts,
    pub commit: String,
    /// When it last started (none: never).
    pub started: Option<jiff::Timestamp>,
}

impl Version {
    fn of(facts: ContainerFacts) -> Version {
        Version {
            commit: facts.labels.get(LABEL_COMMIT).cloned().unwrap_or_default(),
            started: facts.started_at.parse().ok(),
            facts,
        }
    }

    /// The host port the app's port is published on (127.0.0.1).
    pub fn host_port(&self, spec: &DockerDeploy) -> Option<u16> {
        self.facts.published.get(&spec.port).copied()
    }

    /// Where the health gate reaches it: its published port, else its own address.
    pub fn base(&self, spec: &DockerDeploy) -> Option<String> {
        match (self.host_port(spec), &self.facts.ip) {
            (Some(p), _) => Some(format!("http://127.0.0.1:{p}")),
            (None, Some(ip)) => Some(format!("http://{ip}:{}", spec.port)),
            (None, None) => None,
        }
    }
}

/// One deployment (or rollback) of one service under way: the steps done and the
/// changes made, so that every way out reports them.
pub(super) struct Run<'a> {
    pub spec: &'a DockerDeploy,
    pub target: &'a AppTarget<'a>,
    pub ctx: &'a RunContext,
    pub client: DockerClient,
    pub steps: Vec<AppStep>,
    pub changes: u32,
}

impl<'a> Run<'a> {
    pub fn new(
        spec: &'a DockerDeploy,
        target: &'a AppTarget<'a>,
        ctx: &'a RunContext,
    ) -> Result<Run<'a>, AppFailure> {
        match DockerClient::connect() {
            Ok(client) => Ok(Run {
                spec,
                target,
                ctx,
                client,
                steps: Vec::new(),
                changes: 0,
            }),
            Err(e) => Err(AppFailure {
                service: target.service.to_string(),
                step: "connect".to_string(),
                cause: e.to_string(),
                old_still_served: true,
                fix: "nothing was changed; make the Docker daemon reachable and deploy again"
                    .to_string(),
                steps: Vec::new(),
            }),
        }
    }

    /// A deployment's or rollback's start: the run and the service's containers. A
    /// Docker daemon that does not answer fails it at `inspect`, nothing changed.
    pub fn begin(
        spec: &'a DockerDeploy,
        target: &'a AppTarget<'a>,
        ctx: &'a RunContext,
    ) -> Result<(Run<'a>, Vec<Version>), AppFailure> {
        let run = Run::new(spec, target, ctx)?;
        match run.versions() {
            Ok(versions) => Ok((run, versions)),
            Err(e) => Err(run.fail(
                "inspect",
                e,
                true,
                "nothing was changed; make the Docker daemon answer and try again",
            )),
        }
    }

    /// The last point before a deployment's first change: a cancellation stops it here
    /// (reported at `step`), then a container of the commit being deployed that is not
    /// the live one (left by an earlier attempt) is removed.
    pub fn clear_for_new(self, step: &str, live: Option<&Version>) -> Result<Run<'a>, AppFailure> {
        if self.ctx.cancel.is_cancelled() {
            return Err(self.fail(
                step,
                "cancelled before anything changed",
                true,
                "nothing was changed",
            ));
        }
        let mut run = self;
        match run.remove_same_commit(run.target.commit, live) {
            Ok(()) => Ok(run),
            Err(e) => Err(run.fail(
                "remove-stale",
                e,
                true,
                "nothing was switched; remove the container by hand (`docker rm -f`) and deploy again",
            )),
        }
    }

    /// A rollback to `to` that is live and healthy already: that version (recorded as a
    /// `check` step), with nothing to do.
    pub fn already_back(&mut self, live: Option<&Version>, to: Option<&str>) -> Option<Version> {
        let l = live?;
        let to = to.filter(|t| !t.is_empty())?;
        if !l.commit.starts_with(to) || !self.healthy_now(l) {
            return None;
        }
        let detail = format!("{} is already the live version", l.facts.name);
        let _ = self.step("check", |_| Ok(((), detail)));
        Some(l.clone())
    }

    /// Runs and records one step, and tells the run's listeners.
    pub fn step<T>(
        &mut self,
        action: &str,
        f: impl FnOnce(&mut Self) -> Result<(T, String), String>,
    ) -> Result<T, String> {
        let mut steps = std::mem::take(&mut self.steps);
        let result = timed(&mut steps, action, || f(self));
        // Steps `f` recorded itself (none today) stay in order before this one.
        let mut inner = std::mem::replace(&mut self.steps, steps);
        if !inner.is_empty() {
            let last = self.steps.pop();
            self.steps.append(&mut inner);
            self.steps.extend(last);
        }
        if let Some(s) = self.steps.last() {
            self.ctx.events.emit(Event::Step {
                message: format!("{}: {}: {}", self.target.service, s.action, s.detail),
            });
        }
        result
    }

    pub fn fail(
        self,
        step: &str,
        cause: impl Into<String>,
        old_still_served: bool,
        fix: impl Into<String>,
    ) -> AppFailure {
        AppFailure {
            service: self.target.service.to_string(),
            step: step.to_string(),
            cause: cause.into(),
            old_still_served,
            fix: fix.into(),
            steps: self.steps,
        }
    }

    pub fn done(self, version: &Version, previous: Option<&Version>) -> AppDeployed {
        AppDeployed {
            service: self.target.service.to_string(),
            version: version.facts.image.clone(),
            previous: previous.map(|p| p.facts.image.clone()),
            changes: self.changes,
            steps: self.steps,
        }
    }

    /// The image reference of `commit`.
    pub fn image(&self, commit: &str) -> String {
        expand_rev(&self.spec.image, commit)
    }

    /// Every container of this service, oldest start first.
    pub fn versions(&self) -> Result<Vec<Version>, String> {
        let found = self
            .client
            .labelled(&[
                (LABEL_STACK, self.target.stack),
                (LABEL_SERVICE, self.target.service),
            ])
            .map_err(|e| e.to_string())?;
        let mut all: Vec<Version> = found.into_iter().map(Version::of).collect();
        all.sort_by(|a, b| {
            a.started
                .cmp(&b.started)
                .then(a.facts.name.cmp(&b.facts.name))
        });
        Ok(all)
    }

    /// Creates and starts a container of `commit` (published on `publish`), after
    /// checking that its image is here (drydock never pulls: what runs is what the
    /// operator built or pulled).
    pub fn start_new(
        &mut self,
        commit: &str,
        publish: impl Fn() -> Option<u16>,
    ) -> Result<Version, String> {
        let image = self.image(commit);
        self.step("start", |run| {
            if !run.client.image_exists(&image).map_err(|e| e.to_string())? {
                return Err(format!(
                    "image {image} is not on this host; build or pull it (drydock does not pull), then deploy again"
                ));
            }
            let taken: Vec<String> = run
                .versions()?
                .into_iter()
                .map(|v| v.facts.name)
                .collect();
            let name = container_name(run.target, commit, &taken);
            let mut labels = HashMap::new();
            labels.insert(LABEL_STACK.to_string(), run.target.stack.to_string());
            labels.insert(LABEL_SERVICE.to_string(), run.target.service.to_string());
            labels.insert(LABEL_COMMIT.to_string(), commit.to_string());
            labels.insert(
                LABEL_DEPLOYED_AT.to_string(),
                jiff::Timestamp::now().to_string(),
            );
            let mut last = String::new();
            // A port picked free can be taken before Docker binds it: pick again.
            for _ in 0..3 {
                let port = publish();
                let spec = RunSpec {
                    name: name.clone(),
                    image: image.clone(),
                    labels: labels.clone(),
                    env: env_of(&run.spec.env),
                    port: run.spec.port,
                    publish: port,
                    network: run.spec.network.clone(),
                };
                match run.client.run(&spec) {
                    Ok(id) => {
                        run.changes += 1;
                        let facts = run
                            .client
                            .labelled(&[(LABEL_STACK, run.target.stack), (LABEL_COMMIT, commit)])
                            .map_err(|e| e.to_string())?
                            .into_iter()
                            .find(|f| f.id == id)
                            .ok_or_else(|| format!("container {name} vanished once started"))?;
                        let v = Version::of(facts);
                        let at = match port {
                            Some(p) => format!(" on 127.0.0.1:{p}"),
                            None => String::new(),
                        };
                        return Ok((v, format!("{name} from {image}{at}")));
                    }
                    Err(e) => {
                        last = e.to_string();
                        let busy = last.contains("already allocated")
                            || last.contains("address already in use");
                        if !busy || port.is_none() {
                            break;
                        }
                    }
                }
            }
            Err(last)
        })
    }

    /// Starts a kept (stopped) container again.
    pub fn start_kept(&mut self, action: &str, v: &Version) -> Result<Version, String> {
        let name = v.facts.name.clone();
        self.step(action, |run| {
            run.client.start(&name).map_err(|e| e.to_string())?;
            run.changes += 1;
            let again = run
                .versions()?
                .into_iter()
                .find(|x| x.facts.id == v.facts.id)
                .ok_or_else(|| format!("container {name} vanished once started"))?;
            Ok((again, format!("kept container {name} started again")))
        })
    }

    /// Waits until `v` passes the health gate.
    pub fn gate(&mut self, v: &Version) -> Result<(), String> {
        let Some(base) = v.base(self.spec) else {
            return self.step("health-gate", |_| {
                Err::<((), String), _>(format!(
                    "{} has no published port and no address to probe",
                    v.facts.name
                ))
            });
        };
        let gate = self.spec.health.clone();
        let cancel = self.ctx.cancel.clone();
        self.step("health-gate", |_| {
            let (took, probes) = gate::wait_healthy(&base, &gate, &cancel)?;
            Ok((
                (),
                format!(
                    "{} answered {} on {} after {probes} probes in {:.1?}",
                    v.facts.name, gate.status, gate.path, took
                ),
            ))
        })
    }

    /// One probe: whether `v` answers the gate's status now.
    pub fn healthy_now(&self, v: &Version) -> bool {
        let Some(base) = v.base(self.spec) else {
            return false;
        };
        let g = &self.spec.health;
        matches!(
            gate::probe(&base, &g.path, g.host.as_deref(), None, g.timeout),
            Ok(a) if a.status == g.status
        )
    }

    /// Whether `url` serves the build of `commit` (no check configured: yes), asked
    /// until it does or `patience` passes (a reloaded proxy's old workers, a recreated
    /// container's first requests).
    pub fn serves(&self, commit: &str, patience: Duration) -> Result<Option<String>, String> {
        let (Some(url), Some(check)) = (&self.spec.url, &self.spec.build_id) else {
            return Ok(None);
        };
        let started = std::time::Instant::now();
        loop {
            match gate::served_build(url, check, &self.spec.health, commit) {
                Ok(seen) => return Ok(Some(seen)),
                Err(e) if started.elapsed() >= patience => return Err(format!("{url} {e}")),
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// Removes a container that must not stay (a new version that failed).
    pub fn remove(&mut self, action: &str, v: &Version, why: &str) -> Result<(), String> {
        let name = v.facts.name.clone();
        self.step(action, |run| {
            run.client.remove(&v.facts.id).map_err(|e| e.to_string())?;
            run.changes += 1;
            Ok(((), format!("{name} removed ({why})")))
        })
    }

    /// Stops a container, keeping it for rollback.
    pub fn stop(&mut self, action: &str, v: &Version) -> Result<(), String> {
        let name = v.facts.name.clone();
        self.step(action, |run| {
            run.client
                .stop(&v.facts.id, STOP_TIMEOUT)
                .map_err(|e| e.to_string())?;
            run.changes += 1;
            Ok(((), format!("{name} stopped (kept for rollback)")))
        })
    }

    /// Containers of `commit` other than `except`: left over from an earlier try (a
    /// deploy killed midway) or kept from an earlier deploy of the same commit. The new
    /// container replaces them.
    pub fn remove_same_commit(
        &mut self,
        commit: &str,
        except: Option<&Version>,
    ) -> Result<(), String> {
        let stale: Vec<Version> = self
            .versions()?
            .into_iter()
            .filter(|v| v.commit == commit && Some(&v.facts.id) != except.map(|e| &e.facts.id))
            .collect();
        for v in stale {
            self.remove(
                "remove-stale",
                &v,
                "an earlier container of the same commit",
            )?;
        }
        Ok(())
    }

    /// Removes stopped containers beyond `keep`, most recently live first, never `live`
    /// nor `rollback_to` (the version a rollback would go back to).
    pub fn prune(&mut self, live: &Version, rollback_to: Option<&Version>) -> Result<(), String> {
        let keep = self.spec.keep;
        let mut kept: Vec<Version> = self
            .versions()?
            .into_iter()
            .filter(|v| v.facts.id != live.facts.id && !v.facts.running)
            .collect();
        // Most recently live first.
        kept.sort_by_key(|v| std::cmp::Reverse(v.started));
        let protect = rollback_to.map(|r| r.facts.id.clone());
        if let Some(p) = &protect {
            // The rollback target counts first, whatever its start time says.
            if let Some(i) = kept.iter().position(|v| &v.facts.id == p) {
                let v = kept.remove(i);
                kept.insert(0, v);
            }
        }
        let doomed: Vec<Version> = kept.into_iter().skip(keep).collect();
        if doomed.is_empty() {
            return Ok(());
        }
        self.step("prune", |run| {
            let mut names = Vec::new();
            for v in &doomed {
                run.client.remove(&v.facts.id).map_err(|e| e.to_string())?;
                run.changes += 1;
                names.push(v.facts.name.clone());
            }
            Ok(((), format!("removed {} (keep = {keep})", names.join(", "))))
        })
    }
}

/// The version a rollback goes to: the newest container of `to` (a full commit, or a
/// prefix of one) or, without `to`, the one that ran last before `live`.
pub(super) fn rollback_target<'v>(
    versions: &'v [Version],
    live: Option<&Version>,
    to: Option<&str>,
) -> Option<&'v Version> {
    let live_id = live.map(|l| l.facts.id.as_str());
    versions
        .iter()
        .filter(|v| Some(v.facts.id.as_str()) != live_id)
        .filter(|v| match to {
            Some(c) => !c.is_empty() && v.commit.starts_with(c),
            None => true,
        })
        .max_by(|a, b| a.started.cmp(&b.started))
}

/// `drydock-<stack>-<service>-<commit[..12]>`, with `-2`, `-3` ... when taken.
fn container_name(target: &AppTarget<'_>, commit: &str, taken: &[String]) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let base = format!(
        "drydock-{}-{}-{}",
        clean(target.stack),
        clean(target.service),
        clean(&commit[..commit.len().min(12)])
    );
    if !taken.contains(&base) && !exists(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|n| !taken.contains(n) && !exists(n))
        .unwrap_or(base)
}

/// Whether any container (ours or not) has the name.
fn exists(name: &str) -> bool {
    DockerClient::connect()
        .ok()
        .and_then(|c| c.inspect(name).ok())
        .flatten()
        .is_some()
}

fn env_of(env: &BTreeMap<String, String>) -> Vec<(String, String)> {
    env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// A free TCP port on 127.0.0.1, none of `avoid` (the ports kept containers will bind
/// again when a rollback starts them).
pub(super) fn free_port(avoid: &[u16]) -> Option<u16> {
    for _ in 0..20 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        if !avoid.contains(&port) {
            return Some(port);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: &str, commit: &str, started: &str) -> Version {
        Version::of(ContainerFacts {
            id: id.into(),
            name: id.into(),
            labels: HashMap::from([(LABEL_COMMIT.to_string(), commit.to_string())]),
            started_at: started.into(),
            ..ContainerFacts::default()
        })
    }

    #[test]
    fn the_rollback_target_is_the_version_that_ran_last_before_the_live_one() {
        let a = version("a", "aaaa", "2026-01-01T00:00:01Z");
        let b = version("b", "bbbb", "2026-01-01T00:00:03Z");
        let c = version("c", "cccc", "2026-01-01T00:00:02Z");
        let all = vec![a.clone(), c.clone(), b.clone()];
        // b runs now (started last); c ran before it.
        assert_eq!(rollback_target(&all, Some(&b), None).unwrap().facts.id, "c");
        assert_eq!(
            rollback_target(&all, Some(&b), Some("aa"))
                .unwrap()
                .facts
                .id,
            "a"
        );
        assert!(rollback_target(&all, Some(&b), Some("bbbb")).is_none());
        assert!(rollback_target(&all, Some(&b), Some("")).is_none());
        assert!(rollback_target(std::slice::from_ref(&b), Some(&b), None).is_none());
    }

    #[test]
    fn container_names_carry_stack_service_and_short_commit() {
        let target = AppTarget {
            stack: "clinic",
            service: "api web",
            commit: "0123456789abcdef",
            config_dir: std::path::Path::new("/"),
            state_dir: std::path::Path::new("/"),
        };
        let taken = vec!["drydock-clinic-api-web-0123456789ab".to_string()];
        let name = container_name(&target, "0123456789abcdef", &taken);
        assert!(
            name.starts_with("drydock-clinic-api-web-0123456789ab-"),
            "{name}"
        );
    }
}
