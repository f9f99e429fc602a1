//! `strategy = "swap"`: zero downtime behind nginx. The new container starts beside the
//! old one on a fresh loopback port and must pass the health gate; only then is nginx
//! switched (`nginx.rs`), the served build checked (switched back if it is not the
//! new one), the old container left to finish what it holds (the drain), then stopped
//! and kept for rollback. Until the switch, a failure only removes the new container:
//! the old one never stopped serving. A rollback is the same switch towards a kept
//! container.

use std::time::Duration;

use drydock_domain::config::{DockerDeploy, NginxProxy, ProxyConfig};
use drydock_domain::Event;

use super::nginx::Nginx;
use super::run::{free_port, rollback_target, Run, Version};
use crate::deploy::app::{AppDeployed, AppFailure, AppTarget};
use crate::RunContext;

/// How long the served build may take to become the new one after the reload (the
/// master starts new workers; old ones answer only requests they already hold).
const SETTLE: Duration = Duration::from_secs(10);

fn proxy_of<'s>(
    spec: &'s DockerDeploy,
    target: &AppTarget<'_>,
) -> Result<&'s NginxProxy, AppFailure> {
    match &spec.proxy {
        Some(ProxyConfig::Nginx(n)) => Ok(n),
        None => Err(AppFailure {
            service: target.service.to_string(),
            step: "switch".to_string(),
            cause: "a swap needs a reverse proxy to switch, and none is configured".to_string(),
            old_still_served: true,
            fix: "add proxy = { kind = \"nginx\", upstream_file = \"...\" } to the service's deploy, or use strategy = \"recreate\"".to_string(),
            steps: Vec::new(),
        }),
    }
}

/// The container nginx sends requests to: the running one on the port the upstream
/// file names, else the one that started last.
fn live_of(versions: &[Version], pointed: Option<u16>, spec: &DockerDeploy) -> Option<Version> {
    let running = || versions.iter().filter(|v| v.facts.running);
    pointed
        .and_then(|p| running().find(|v| v.host_port(spec) == Some(p)))
        .or_else(|| running().max_by(|a, b| a.started.cmp(&b.started)))
        .cloned()
}

pub fn deploy(
    spec: &DockerDeploy,
    target: &AppTarget<'_>,
    ctx: &RunContext,
) -> Result<AppDeployed, AppFailure> {
    let proxy = proxy_of(spec, target)?;
    let (mut run, versions) = Run::begin(spec, target, ctx)?;
    let nginx = Nginx::new(proxy, target.service, target.stack);
    let commit = target.commit;
    let pointed = nginx.pointed_port();
    let live = live_of(&versions, pointed, spec);

    // Idempotent: the commit is live, healthy, pointed at and served: nothing to do.
    if let Some(l) = live.as_ref().filter(|l| l.commit == commit) {
        let here = l.host_port(spec).filter(|p| nginx.says(*p, commit));
        if here.is_some() && run.healthy_now(l) && run.serves(commit, Duration::ZERO).is_ok() {
            let detail = format!("{} already live, healthy and served", l.facts.name);
            let _ = run.step("check", |_| Ok(((), detail)));
            let previous = rollback_target(&versions, Some(l), None).cloned();
            return Ok(run.done(l, previous.as_ref()));
        }
    }
    let mut run = run.clear_for_new("start", live.as_ref())?;
    let avoid: Vec<u16> = versions.iter().filter_map(|v| v.host_port(spec)).collect();
    let new = match run.start_new(commit, || free_port(&avoid)) {
        Ok(v) => v,
        Err(e) => {
            return Err(run.fail(
                "start",
                e,
                true,
                "nothing was switched; fix what the error names and deploy again",
            ))
        }
    };
    put_live(run, &nginx, live, new, Fresh::Remove)
}

pub fn rollback(
    spec: &DockerDeploy,
    target: &AppTarget<'_>,
    to: Option<&str>,
    ctx: &RunContext,
) -> Result<AppDeployed, AppFailure> {
    let proxy = proxy_of(spec, target)?;
    let (mut run, versions) = Run::begin(spec, target, ctx)?;
    let nginx = Nginx::new(proxy, target.service, target.stack);
    let live = live_of(&versions, nginx.pointed_port(), spec);
    if let Some(l) = run.already_back(live.as_ref(), to) {
        return Ok(run.done(&l, None));
    }
    let (new, fresh) = match bring_back(&mut run, &versions, live.as_ref(), to) {
        Ok(found) => found,
        Err((step, cause, fix)) => return Err(run.fail(&step, cause, true, fix)),
    };
    put_live(run, &nginx, live, new, fresh)
}

/// What to do with the version being put live if it does not make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fresh {
    /// Created for this deployment: remove it.
    Remove,
    /// A kept container started again: stop it, it stays kept.
    Stop,
}

/// Starts the version a rollback goes to: its kept container, or a new one from its
/// image when it was pruned (or its old port is taken now).
pub(super) fn bring_back(
    run: &mut Run<'_>,
    versions: &[Version],
    live: Option<&Version>,
    to: Option<&str>,
) -> Result<(Version, Fresh), (String, String, String)> {
    let spec = run.spec;
    let avoid: Vec<u16> = versions.iter().filter_map(|v| v.host_port(spec)).collect();
    let publish = |_: &Run<'_>| {
        let avoid = avoid.clone();
        move || match spec.strategy {
            drydock_domain::config::Strategy::Swap => free_port(&avoid),
            drydock_domain::config::Strategy::Recreate => spec.publish,
        }
    };
    match rollback_target(versions, live, to) {
        Some(t) if t.facts.running => Ok((t.clone(), Fresh::Stop)),
        Some(t) => {
            match run.start_kept("start", t) {
                Ok(v) => Ok((v, Fresh::Stop)),
                Err(e) => {
                    let image = run.image(&t.commit);
                    let there = run.client.image_exists(&image).unwrap_or(false);
                    if !there || t.facts.image != image {
                        return Err((
                            "start".into(),
                            e,
                            format!(
                                "nothing was switched; start {} by hand or deploy the commit again",
                                t.facts.name
                            ),
                        ));
                    }
                    // Its old port is taken, say: the image makes the same version anew.
                    let _ = run.remove("remove-stale", t, "it would not start again");
                    let commit = t.commit.clone();
                    let p = publish(run);
                    run.start_new(&commit, p)
                    .map(|v| (v, Fresh::Remove))
                    .map_err(|e| ("start".into(), e, "nothing was switched; fix what the error names and roll back again".into()))
                }
            }
        }
        None => {
            let Some(commit) = to.filter(|c| !c.is_empty()) else {
                return Err((
                    "start".into(),
                    "no earlier version is kept to roll back to".into(),
                    "nothing was changed; deploy the commit you want with `drydock deploy --rev`"
                        .into(),
                ));
            };
            let image = run.image(commit);
            if !run.client.image_exists(&image).unwrap_or(false) {
                return Err((
                    "start".into(),
                    format!("no container of commit {commit} is kept and its image {image} is not on this host"),
                    "nothing was changed; build or pull the image and roll back again, or deploy that commit".into(),
                ));
            }
            let p = publish(run);
            run.start_new(commit, p)
                .map(|v| (v, Fresh::Remove))
                .map_err(|e| {
                    (
                        "start".into(),
                        e,
                        "nothing was switched; fix what the error names and roll back again".into(),
                    )
                })
        }
    }
}

/// Health gate, switch, build check, drain, stop the old one, prune.
fn put_live(
    mut run: Run<'_>,
    nginx: &Nginx<'_>,
    live: Option<Version>,
    new: Version,
    fresh: Fresh,
) -> Result<AppDeployed, AppFailure> {
    let commit = new.commit.clone();
    let give_up = |run: &mut Run<'_>, why: &str| match fresh {
        Fresh::Remove => {
            let _ = run.remove("remove-new", &new, why);
        }
        Fresh::Stop => {
            let _ = run.stop("stop-new", &new);
        }
    };
    if let Err(e) = run.gate(&new) {
        if run.ctx.cancel.is_cancelled() {
            give_up(&mut run, "cancelled before the switch");
            let cause = format!("cancelled before the switch (the health gate stopped: {e})");
            return Err(run.fail("health-gate", cause, true, "nothing was switched"));
        }
        give_up(&mut run, "not healthy");
        let fix = format!(
            "nothing was switched; the old version still serves. Run the image by hand (`docker run --rm -p {0}:{0} {1}`) to see why {2} fails and deploy a fixed commit",
            run.spec.port, new.facts.image, run.spec.health.path
        );
        return Err(run.fail("health-gate", e, true, fix));
    }
    if run.ctx.cancel.is_cancelled() {
        give_up(&mut run, "cancelled before the switch");
        return Err(run.fail(
            "switch",
            "cancelled before the switch",
            true,
            "nothing was switched",
        ));
    }
    let Some(port) = new.host_port(run.spec) else {
        give_up(&mut run, "no published port");
        return Err(run.fail(
            "switch",
            format!("{} has no published port", new.facts.name),
            true,
            "nothing was switched; deploy again",
        ));
    };
    let file = nginx.file().display().to_string();
    let switched = run.step("switch", |_| {
        nginx.switch(port, &commit).map(|(p, reloaded)| {
            (
                p,
                format!("{file} -> 127.0.0.1:{port}, nginx -t passed, {reloaded}"),
            )
        })
    });
    let previous = match switched {
        Ok(p) => {
            run.changes += 1;
            p
        }
        Err(e) => {
            give_up(&mut run, "the proxy could not be switched");
            return Err(run.fail(
                "switch",
                e,
                true,
                "nothing was switched; fix the nginx configuration (`nginx -t` names the line) and deploy again",
            ));
        }
    };
    // After the switch a cancellation no longer stops us: finishing is the safe way.
    if run.spec.build_id.is_some() {
        let checked = run.step("build-id", |run| {
            run.serves(&commit, SETTLE)
                .map(|seen| ((), format!("serves build {}", seen.unwrap_or_default())))
        });
        if let Err(e) = checked {
            let back = run.step("switch-back", |_| {
                nginx
                    .switch_back(&previous)
                    .map(|_| ((), "upstream file put back, nginx reloaded".to_string()))
            });
            let back_ok = back.is_ok();
            if back_ok {
                run.changes += 1;
                // Requests sent to the new container since the switch finish first.
                let drain = nginx_drain(run.spec);
                let _ = run.step("drain", |_| {
                    std::thread::sleep(drain);
                    Ok((
                        (),
                        format!("{drain:.1?} for requests the new version holds"),
                    ))
                });
            }
            give_up(&mut run, "its build is not what is served");
            return Err(run.fail(
                "build-id",
                e,
                back_ok,
                if back_ok {
                    "switched back: the old version serves. Check that the proxy's `proxy_pass` uses the upstream drydock writes and that the build answers its id".to_string()
                } else {
                    format!("the switch back failed too: check {file} and `nginx -t`, then reload nginx by hand")
                },
            ));
        }
    }
    let old_running: Vec<Version> = match run.versions() {
        Ok(all) => all
            .into_iter()
            .filter(|v| v.facts.running && v.facts.id != new.facts.id)
            .collect(),
        Err(e) => {
            warn(&run, format!("listing the old containers to stop: {e}"));
            Vec::new()
        }
    };
    if !old_running.is_empty() {
        let drain = nginx_drain(run.spec);
        let _ = run.step("drain", |_| {
            std::thread::sleep(drain);
            Ok((
                (),
                format!("{drain:.1?} for requests the old version holds"),
            ))
        });
    }
    for v in &old_running {
        if let Err(e) = run.stop("stop-old", v) {
            warn(
                &run,
                format!("{} still runs (not served): {e}", v.facts.name),
            );
        }
    }
    let rollback_to = live.as_ref().filter(|l| l.facts.id != new.facts.id);
    if let Err(e) = run.prune(&new, rollback_to) {
        warn(&run, format!("pruning kept containers: {e}"));
    }
    Ok(run.done(&new, rollback_to))
}

fn nginx_drain(spec: &DockerDeploy) -> Duration {
    match &spec.proxy {
        Some(ProxyConfig::Nginx(n)) => n.drain,
        None => Duration::ZERO,
    }
}

/// Something after the switch went wrong that does not undo the deployment.
pub(super) fn warn(run: &Run<'_>, message: String) {
    run.ctx.events.emit(Event::Warning {
        message: format!("{}: {message}", run.target.service),
    });
}
