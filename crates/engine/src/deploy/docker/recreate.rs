//! `strategy = "recreate"`: for stacks without a proxy. The old container stops, the
//! new one starts on the same published port (`publish`, on 127.0.0.1) and must pass
//! the health gate (and serve its build, when a build id is configured); if it does
//! not, it is removed and the old container is started again and gated, so the old
//! version serves again. There is downtime between the stop and the gate: that is
//! what this strategy trades for not needing a proxy.

use std::time::Duration;

use drydock_domain::config::DockerDeploy;

use super::run::{rollback_target, Run, Version};
use super::swap::{bring_back, warn, Fresh};
use crate::deploy::app::{AppDeployed, AppFailure, AppTarget};
use crate::RunContext;

/// How long the new container's served build may take to show (its first requests).
const SETTLE: Duration = Duration::from_secs(5);

/// The running container that started last.
fn live_of(versions: &[Version]) -> Option<Version> {
    versions
        .iter()
        .filter(|v| v.facts.running)
        .max_by(|a, b| a.started.cmp(&b.started))
        .cloned()
}

type Bring<'f> =
    Box<dyn FnOnce(&mut Run<'_>) -> Result<(Version, Fresh), (String, String, String)> + 'f>;

pub fn deploy(
    spec: &DockerDeploy,
    target: &AppTarget<'_>,
    ctx: &RunContext,
) -> Result<AppDeployed, AppFailure> {
    let (mut run, versions) = Run::begin(spec, target, ctx)?;
    let commit = target.commit;
    let live = live_of(&versions);
    if let Some(l) = live.as_ref().filter(|l| l.commit == commit) {
        if run.healthy_now(l) && run.serves(commit, Duration::ZERO).is_ok() {
            let detail = format!("{} already live and healthy", l.facts.name);
            let _ = run.step("check", |_| Ok(((), detail)));
            let previous = rollback_target(&versions, Some(l), None).cloned();
            return Ok(run.done(l, previous.as_ref()));
        }
    }
    let run = run.clear_for_new("stop-old", live.as_ref())?;
    let publish = spec.publish;
    let bring: Bring<'_> = Box::new(move |run: &mut Run<'_>| {
        run.start_new(commit, || publish)
            .map(|v| (v, Fresh::Remove))
            .map_err(|e| {
                (
                    "start".to_string(),
                    e,
                    "fix what the error names and deploy again".to_string(),
                )
            })
    });
    replace(run, live, bring)
}

pub fn rollback(
    spec: &DockerDeploy,
    target: &AppTarget<'_>,
    to: Option<&str>,
    ctx: &RunContext,
) -> Result<AppDeployed, AppFailure> {
    let (mut run, versions) = Run::begin(spec, target, ctx)?;
    let live = live_of(&versions);
    if let Some(l) = run.already_back(live.as_ref(), to) {
        return Ok(run.done(&l, None));
    }
    // Known before anything stops: a rollback with nowhere to go changes nothing.
    let image_there = to
        .map(|c| run.client.image_exists(&run.image(c)).unwrap_or(false))
        .unwrap_or(false);
    if rollback_target(&versions, live.as_ref(), to).is_none() && !image_there {
        return Err(run.fail(
            "start",
            match to {
                Some(c) => {
                    format!("no container of commit {c} is kept and its image is not on this host")
                }
                None => "no earlier version is kept to roll back to".to_string(),
            },
            true,
            "nothing was changed; deploy the commit you want with `drydock deploy --rev`",
        ));
    }
    let live_for_bring = live.clone();
    let bring: Bring<'_> =
        Box::new(move |run: &mut Run<'_>| bring_back(run, &versions, live_for_bring.as_ref(), to));
    replace(run, live, bring)
}

/// Stop the old one, bring the new one up, gate it; if it fails, the old one again.
fn replace(
    mut run: Run<'_>,
    live: Option<Version>,
    bring: Bring<'_>,
) -> Result<AppDeployed, AppFailure> {
    if let Some(old) = &live {
        if let Err(e) = run.stop("stop-old", old) {
            let still = run.healthy_now(old);
            return Err(run.fail(
                "stop-old",
                e,
                still,
                "the old container could not be stopped; check `docker ps` and deploy again",
            ));
        }
    }
    let (new, fresh) = match bring(&mut run) {
        Ok(found) => found,
        Err((step, cause, fix)) => {
            let back = old_again(&mut run, live.as_ref());
            return Err(run.fail(&step, cause, back, fix));
        }
    };
    let healthy = run.gate(&new).and_then(|_| {
        if run.spec.build_id.is_none() {
            return Ok(());
        }
        let commit = new.commit.clone();
        run.step("build-id", |run| {
            run.serves(&commit, SETTLE)
                .map(|seen| ((), format!("serves build {}", seen.unwrap_or_default())))
        })
    });
    if let Err(e) = healthy {
        match fresh {
            Fresh::Remove => {
                let _ = run.remove("remove-new", &new, "not healthy");
            }
            Fresh::Stop => {
                let _ = run.stop("stop-new", &new);
            }
        }
        let back = old_again(&mut run, live.as_ref());
        let fix = if back {
            format!(
                "the old version serves again; run the image by hand (`docker run --rm {}`) to see why it fails, and deploy a fixed commit",
                new.facts.image
            )
        } else {
            "the old version did not come back healthy either: check `docker ps -a` and the app's logs".to_string()
        };
        return Err(run.fail("health-gate", e, back, fix));
    }
    let rollback_to = live.as_ref().filter(|l| l.facts.id != new.facts.id);
    if let Err(e) = run.prune(&new, rollback_to) {
        warn(&run, format!("pruning kept containers: {e}"));
    }
    Ok(run.done(&new, rollback_to))
}

/// Starts the old container again and gates it. Whether it serves (no old one: the
/// state before is back, trivially).
fn old_again(run: &mut Run<'_>, old: Option<&Version>) -> bool {
    let Some(old) = old else {
        return true;
    };
    match run.start_kept("start-old", old) {
        Ok(again) => run.gate(&again).is_ok(),
        Err(_) => false,
    }
}
