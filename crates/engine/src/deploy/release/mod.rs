//! `deploy = { kind = "release" }`: an app that is not a container, deployed as
//! release directories on a local folder or an ssh host (`target.rs` holds the
//! operations on each, `package.rs` the package).
//!
//! A deploy: the commit already live and healthy changes nothing; otherwise the
//! package (built, or reused when its checksum verifies) is uploaded, its SHA-256
//! checked on the target, extracted to `releases/<id>/`, the shared folders linked
//! in, `previous` and `current` switched atomically, `restart` run in the new
//! `current`, and the URL health-gated and asked for the build id. A new build that
//! fails any of these is switched away from: `current` back to the old release, the
//! restart run again, the old release health-gated, the new release removed. Then old
//! releases are pruned to `keep`, never `current` nor `previous` (the rollback
//! target). Cancellation is honoured up to the switch; after it the deploy finishes.
//! `take_down` (certify's destroy step) unlinks `current` and removes its release.

mod package;
mod target;

use std::time::{Duration, Instant};

use drydock_domain::config::{HttpGate, ReleaseDeploy};
use drydock_domain::Event;

use crate::deploy::app::{timed, AppDeployed, AppFailure, AppStep, AppTarget};
use crate::deploy::gate;
use crate::RunContext;

pub use package::{
    package, read_build_info, release_id, BuildInfo, Package, PackageError, BUILD_INFO,
};
pub use target::switch_link;

use target::{Layout, Link, Target};

/// Deploys `target.commit` of a release service.
pub fn deploy(
    spec: &ReleaseDeploy,
    target: &AppTarget<'_>,
    ctx: &RunContext,
) -> Result<AppDeployed, AppFailure> {
    let mut run = Run::new("deploy", spec, target, ctx);
    let layout = run.inspect()?;
    let old = layout.current.clone();

    if let Some(current) = &old {
        if layout.info(current).map(|i| i.commit.as_str()) == Some(target.commit) {
            return run.already_live(current, &layout);
        }
    }
    run.cancel_point(None)?;

    let pkg = match run.step("package", |_| {
        package::package(spec, target, ctx)
            .map(|p| {
                let how = if p.reused { "reused" } else { "built" };
                let detail = format!("{how} {} ({} bytes)", p.id, p.bytes);
                (p, detail)
            })
            .map_err(|e| e.to_string())
    }) {
        Ok(p) => p,
        Err(cause) => {
            let log = target
                .state_dir
                .join("packages")
                .join(target.service)
                .join("last-build.log");
            let fix = format!(
                "fix the build (its whole output is in {}) and deploy again",
                log.display()
            );
            return Err(run.fail("package", cause, true, &fix));
        }
    };
    let id = pkg.id.clone();
    // Only a release this deploy wrote is removed again on failure or cancel.
    let written = !layout.has(&id);
    if !written {
        // The same package extracted earlier (a rollback moved away from it): it is
        // whole (its folder only appears after extraction), so it is switched to again.
        run.note("extract", format!("{id} already on the target"));
    } else {
        let uploaded = run.step("upload", |t| {
            t.upload(&pkg)
                .map(|_| ((), format!("{id} to {}", t.describe())))
        });
        if let Err(cause) = uploaded {
            run.discard_upload(&id);
            return Err(run.fail(
                "upload",
                cause,
                true,
                "check the target's free space and access, then deploy again",
            ));
        }
        let checked = run.step("verify-checksum", |t| {
            t.verify(&id)
                .map(|_| ((), format!("{} matches on the target", &pkg.sha256[..16])))
        });
        if let Err(cause) = checked {
            run.discard_upload(&id);
            return Err(run.fail(
                "verify-checksum",
                cause,
                true,
                "the package changed on its way (disk or network trouble on the target?); deploy again",
            ));
        }
        let extracted = run.step("extract", |t| {
            t.extract(&id, &spec.shared).map(|_| {
                let linked = if spec.shared.is_empty() {
                    String::new()
                } else {
                    format!(", linked {}", spec.shared.join(", "))
                };
                ((), format!("releases/{id}{linked}"))
            })
        });
        if let Err(cause) = extracted {
            run.remove_new(&id);
            run.discard_upload(&id);
            return Err(run.fail(
                "extract",
                cause,
                true,
                "check the target's free space and that it has tar and zstd, then deploy again",
            ));
        }
        run.changes += 1;
    }
    run.cancel_point(written.then_some(id.as_str()))?;

    run.switch_to(&id, old.as_deref(), layout.previous.as_deref())?;
    if let Err((step, cause)) = run.go_live(&id, target.commit) {
        let served = run.switch_back(old.as_deref(), &layout);
        if written {
            run.remove_new(&id);
        }
        let fix = match (&old, served) {
            (Some(o), true) => {
                format!("the release {o} is served again; fix the new build and deploy again")
            }
            (Some(o), false) => format!(
                "the release {o} is current again but did not come back healthy: look at {}/.drydock/restart.log and the app's logs, then roll back or deploy a fixed commit",
                run.t.describe()
            ),
            (None, _) => "nothing was live before; fix the build and deploy again".to_string(),
        };
        return Err(run.fail(&step, cause, served, &fix));
    }
    run.prune(&[Some(id.as_str()), old.as_deref()]);
    Ok(run.done(id, old))
}

/// Puts back the release of commit `to` (a full commit deployed earlier), or with
/// `None` the release `previous` points at.
pub fn rollback(
    spec: &ReleaseDeploy,
    target: &AppTarget<'_>,
    to: Option<&str>,
    ctx: &RunContext,
) -> Result<AppDeployed, AppFailure> {
    let mut run = Run::new("rollback", spec, target, ctx);
    let layout = run.inspect()?;
    let Some(current) = layout.current.clone() else {
        return Err(run.fail(
            "rollback",
            format!("nothing is deployed on {}", run.t.describe()),
            true,
            "deploy first; there is nothing to roll back",
        ));
    };
    let chosen = match to {
        Some(commit) => layout
            .releases
            .iter()
            .rev()
            .find(|(_, info)| info.as_ref().is_some_and(|i| i.commit == commit))
            .map(|(id, _)| id.clone()),
        None => layout
            .previous
            .clone()
            .filter(|p| layout.has(p) && *p != current)
            .or_else(|| {
                // No `previous` link (made by hand?): the release before current.
                let at = layout.releases.iter().position(|(r, _)| *r == current)?;
                at.checked_sub(1).map(|i| layout.releases[i].0.clone())
            }),
    };
    let Some(back) = chosen else {
        let what = match to {
            Some(c) => format!("no release of commit {c} is kept on {}", run.t.describe()),
            None => format!(
                "no release before {current} is kept on {}",
                run.t.describe()
            ),
        };
        return Err(run.fail(
            "rollback",
            what,
            true,
            "roll back to a commit listed in the target's releases/*/build_info.json, or deploy that commit again",
        ));
    };
    let commit = layout
        .info(&back)
        .map(|i| i.commit.clone())
        .unwrap_or_default();
    if back == current {
        return run.already_live(&current, &layout);
    }
    run.switch_to(&back, Some(&current), layout.previous.as_deref())?;
    if let Err((step, cause)) = run.go_live(&back, &commit) {
        let served = run.switch_back(Some(&current), &layout);
        return Err(run.fail(
            &step,
            format!("the rollback target {back} failed: {cause}"),
            served,
            &if served {
                format!("{current} is served again; roll back to another commit, or deploy a fixed one")
            } else {
                format!("{current} is current again but not healthy: look at {}/.drydock/restart.log and the app's logs", run.t.describe())
            },
        ));
    }
    Ok(run.done(back, Some(current)))
}

/// Takes the live release away (`drydock certify`'s destroy step): `current` unlinked
/// and its release folder removed, so the next deploy has to put it back from its
/// package (uploaded, checked, extracted, switched, restarted, gated). `previous`, the
/// other releases and `shared/` (the data) stay. Ok: (changes, what was done).
pub fn take_down(
    spec: &ReleaseDeploy,
    target: &AppTarget<'_>,
    ctx: &RunContext,
) -> Result<(u32, String), String> {
    let mut run = Run::new("take down", spec, target, ctx);
    let layout = run.step("inspect", |t| {
        t.inspect().map(|l| {
            let detail = format!("current {}", l.current.as_deref().unwrap_or("none"));
            (l, detail)
        })
    })?;
    let Some(current) = layout.current else {
        return Ok((0, format!("no release is live on {}", run.t.describe())));
    };
    run.step("unlink", |t| {
        t.unlink(Link::Current)
            .map(|_| ((), format!("current (was {current})")))
    })?;
    // The rollback target stays whole, whatever `current` was.
    if layout.previous.as_deref() == Some(current.as_str()) {
        return Ok((
            1,
            format!(
                "current unlinked on {} (releases/{current} kept: `previous` points at it)",
                run.t.describe()
            ),
        ));
    }
    run.step("remove", |t| {
        t.remove(&current)
            .map(|_| ((), format!("releases/{current}")))
    })?;
    Ok((
        2,
        format!(
            "current unlinked and releases/{current} removed on {} (previous, the other releases and shared/ kept)",
            run.t.describe()
        ),
    ))
}

/// One deploy or rollback under way: its target, steps and changes.
struct Run<'a> {
    /// `deploy`, `rollback` or `take down`, for the events.
    verb: &'static str,
    spec: &'a ReleaseDeploy,
    target: &'a AppTarget<'a>,
    ctx: &'a RunContext,
    t: Box<dyn Target>,
    steps: Vec<AppStep>,
    changes: u32,
}

impl<'a> Run<'a> {
    fn new(
        verb: &'static str,
        spec: &'a ReleaseDeploy,
        target: &'a AppTarget<'a>,
        ctx: &'a RunContext,
    ) -> Self {
        Run {
            verb,
            spec,
            target,
            ctx,
            t: target::open(spec),
            steps: Vec::new(),
            changes: 0,
        }
    }

    /// A timed step, told to the events as it ends (`deploy SERVICE: ACTION: DETAIL`,
    /// or `rollback ...`).
    fn step<T>(
        &mut self,
        action: &str,
        f: impl FnOnce(&dyn Target) -> Result<(T, String), String>,
    ) -> Result<T, String> {
        let t = self.t.as_ref();
        let result = timed(&mut self.steps, action, || f(t));
        if let Some(last) = self.steps.last() {
            self.ctx.events.emit(Event::Step {
                message: format!(
                    "{} {}: {}: {}",
                    self.verb, self.target.service, last.action, last.detail
                ),
            });
        }
        result
    }

    /// A step that took no work worth timing.
    fn note(&mut self, action: &str, detail: String) {
        let _ = self.step(action, |_| Ok(((), detail)));
    }

    fn inspect(&mut self) -> Result<Layout, AppFailure> {
        match self.step("inspect", |t| {
            t.inspect().map(|l| {
                let detail = format!(
                    "{} release(s), current {}",
                    l.releases.len(),
                    l.current.as_deref().unwrap_or("none")
                );
                (l, detail)
            })
        }) {
            Ok(l) => Ok(l),
            Err(cause) => Err(self.fail(
                "inspect",
                cause,
                true,
                "check that the target is reachable and readable, then deploy again",
            )),
        }
    }

    fn fail(&mut self, step: &str, cause: String, old_still_served: bool, fix: &str) -> AppFailure {
        AppFailure {
            service: self.target.service.to_string(),
            step: step.to_string(),
            cause,
            old_still_served,
            fix: fix.to_string(),
            steps: std::mem::take(&mut self.steps),
        }
    }

    /// Before the switch a cancel stops the deploy, removing the new release if any.
    fn cancel_point(&mut self, new: Option<&str>) -> Result<(), AppFailure> {
        let Some(why) = self.ctx.cancel.reason() else {
            return Ok(());
        };
        if let Some(id) = new {
            self.remove_new(id);
        }
        Err(self.fail(
            "cancelled",
            why,
            true,
            "nothing was switched; deploy again when ready",
        ))
    }

    fn discard_upload(&mut self, id: &str) {
        let _ = self.step("clean-up", |t| {
            t.discard_upload(id)
                .map(|_| ((), format!("removed the upload of {id}")))
        });
    }

    fn remove_new(&mut self, id: &str) {
        let _ = self.step("clean-up", |t| {
            t.remove(id)
                .map(|_| ((), format!("removed the new release {id}")))
        });
    }

    /// `previous` to what was live (`old`), then `current` to `id`; on failure both
    /// links back (`previous` to `prior`).
    fn switch_to(
        &mut self,
        id: &str,
        old: Option<&str>,
        prior: Option<&str>,
    ) -> Result<(), AppFailure> {
        let switched = self.step("switch", |t| {
            if let Some(o) = old {
                t.switch(Link::Previous, o)?;
            }
            t.switch(Link::Current, id)?;
            let from = old.map(|o| format!(" from {o}")).unwrap_or_default();
            Ok(((), format!("current to {id}{from}")))
        });
        match switched {
            Ok(()) => {
                self.changes += 1;
                Ok(())
            }
            Err(cause) => {
                // Each rename happened whole or not at all: put back what was there.
                self.restore_links(old, prior);
                Err(self.fail(
                    "switch",
                    cause,
                    true,
                    "check the target folder's permissions, then deploy again",
                ))
            }
        }
    }

    /// Puts `current` back to `old` (none: removes it) and `previous` to `previous`.
    fn restore_links(&mut self, old: Option<&str>, previous: Option<&str>) -> bool {
        self.step("switch-back", |t| {
            match old {
                Some(o) => t.switch(Link::Current, o)?,
                None => t.unlink(Link::Current)?,
            }
            match previous {
                Some(p) => t.switch(Link::Previous, p)?,
                None => t.unlink(Link::Previous)?,
            }
            let to = old.unwrap_or("no release (there was none)");
            Ok(((), format!("current back to {to}")))
        })
        .is_ok()
    }

    /// After a failed go-live of `new`: the links back, the old release restarted and
    /// health-gated. Whether the old release is what is served.
    fn switch_back(&mut self, old: Option<&str>, layout: &Layout) -> bool {
        if !self.restore_links(old, layout.previous.as_deref()) {
            return false;
        }
        self.changes += 1;
        let Some(old) = old else {
            // Nothing was served before, and nothing is now.
            return true;
        };
        let commit = layout
            .info(old)
            .map(|i| i.commit.clone())
            .unwrap_or_default();
        self.go_live(old, &commit).is_ok()
    }

    /// Restart, health gate, build id, for the release `id` of `commit` now current.
    /// Err: the step that failed and why.
    fn go_live(&mut self, id: &str, commit: &str) -> Result<(), (String, String)> {
        if let Some(command) = &self.spec.restart {
            self.step("restart", |t| {
                t.restart(command, id, commit)
                    .map(|_| ((), format!("ran in {id}")))
            })
            .map_err(|c| ("restart".to_string(), c))?;
        }
        let Some(url) = &self.spec.url else {
            return Ok(());
        };
        let gate_spec = self.spec.health.clone().unwrap_or_default();
        let cancel = drydock_domain::Cancel::default();
        // After the switch the deploy finishes: the gate is not cut short by a cancel.
        self.step("health-gate", |_| {
            gate::wait_healthy(url, &gate_spec, &cancel).map(|(took, probes)| {
                (
                    (),
                    format!(
                        "{url}{} healthy after {probes} probe(s) in {took:.1?}",
                        gate_spec.path
                    ),
                )
            })
        })
        .map_err(|c| ("health-gate".to_string(), c))?;
        if let Some(check) = &self.spec.build_id {
            self.step("build-id", |_| {
                served_build_within(url, check, &gate_spec, commit)
                    .map(|seen| ((), format!("serves {seen}")))
            })
            .map_err(|c| ("build-id".to_string(), c))?;
        }
        Ok(())
    }

    /// The live release is `commit` already: healthy (one probe) and serving its build
    /// changes nothing; otherwise it is restarted and gated.
    fn already_live(mut self, current: &str, layout: &Layout) -> Result<AppDeployed, AppFailure> {
        let commit = layout
            .info(current)
            .map(|i| i.commit.clone())
            .unwrap_or_default();
        let spec = self.spec;
        let checked = self.step("check-live", |_| {
            live_and_serving(spec, &commit).map(|d| {
                (
                    (),
                    format!("{current} of {} already live; {d}", short(&commit)),
                )
            })
        });
        if checked.is_ok() {
            return Ok(self.done(current.to_string(), layout.previous.clone()));
        }
        // Same files, not serving: a restart is the repair.
        match self.go_live(current, &commit) {
            Ok(()) => {
                self.changes += 1;
                Ok(self.done(current.to_string(), layout.previous.clone()))
            }
            Err((step, cause)) => Err(self.fail(
                &step,
                format!("the live release {current} is not healthy and a restart did not help: {cause}"),
                false,
                "look at the target's .drydock/restart.log and the app's logs; roll back or deploy a fixed commit",
            )),
        }
    }

    /// Removes releases beyond `keep` (oldest first) and crash leftovers; never one in
    /// `protect` nor `previous`.
    fn prune(&mut self, protect: &[Option<&str>]) {
        let keep = self.spec.keep;
        let pruned = self.step("prune", |t| {
            let layout = t.inspect()?;
            let mut safe: Vec<&str> = protect.iter().flatten().copied().collect();
            safe.extend(layout.current.as_deref());
            safe.extend(layout.previous.as_deref());
            // Oldest first by build time (ids share a second when built fast), then id.
            let mut ordered: Vec<(Option<jiff::Timestamp>, &str)> = layout
                .releases
                .iter()
                .map(|(r, i)| (i.as_ref().and_then(|i| i.built_at.parse().ok()), r.as_str()))
                .collect();
            ordered.sort();
            let ids: Vec<&str> = ordered.into_iter().map(|(_, r)| r).collect();
            let old = ids.len().saturating_sub(keep);
            let mut removed = Vec::new();
            for id in &ids[..old] {
                if !safe.contains(id) {
                    t.remove(id)?;
                    removed.push(id.to_string());
                }
            }
            // Extractions a crash cut short (never one whose release is whole).
            for id in layout.partial.iter().filter(|p| !layout.has(p)) {
                t.remove(id)?;
            }
            let detail = if removed.is_empty() {
                format!("{} release(s), none beyond keep = {keep}", ids.len())
            } else {
                format!("removed {}", removed.join(", "))
            };
            Ok((removed.len() as u32, detail))
        });
        // A prune that failed leaves more releases than asked, nothing broken.
        if let Ok(n) = pruned {
            self.changes += n;
        }
    }

    fn done(self, version: String, previous: Option<String>) -> AppDeployed {
        AppDeployed {
            service: self.target.service.to_string(),
            version,
            previous,
            changes: self.changes,
            steps: self.steps,
        }
    }
}

/// One probe of the health path and, when asked, of the build id: the live release
/// answers now, or it does not.
fn live_and_serving(spec: &ReleaseDeploy, commit: &str) -> Result<String, String> {
    let Some(url) = &spec.url else {
        return Ok("no url to probe".to_string());
    };
    let g = spec.health.clone().unwrap_or_default();
    let answer = gate::probe(url, &g.path, g.host.as_deref(), None, g.timeout)?;
    if answer.status != g.status {
        return Err(format!(
            "{} answered {} (expected {})",
            g.path, answer.status, g.status
        ));
    }
    match &spec.build_id {
        Some(check) => {
            gate::served_build(url, check, &g, commit).map(|seen| format!("healthy, serves {seen}"))
        }
        None => Ok("healthy".to_string()),
    }
}

/// The build id asked until it is the new one or the gate's deadline passes: a server
/// that finishes its restart late (Passenger, PHP-FPM) may serve the old code briefly.
fn served_build_within(
    url: &str,
    check: &drydock_domain::config::BuildIdCheck,
    g: &HttpGate,
    commit: &str,
) -> Result<String, String> {
    let started = Instant::now();
    loop {
        match gate::served_build(url, check, g, commit) {
            Ok(seen) => return Ok(seen),
            Err(e) if started.elapsed() >= g.deadline => return Err(e),
            Err(_) => std::thread::sleep(g.interval.min(Duration::from_millis(200))),
        }
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}
