//! Release-directory deploys (`deploy = { kind = "release" }`) on a local folder and
//! through a real `sshd`: the package and its build info, the checksum checked on the
//! target, the atomic switch of `current`, the app served by a real HTTP server
//! (`busybox httpd`, started by the release's own `restart.sh`) and asked for its build
//! id, the switch back when a new build fails, pruning, idempotency and rollback.
//! Oracles drydock did not write: what the HTTP server serves (ureq), `sha256sum -c`,
//! files and links read with `std::fs`.

// `AppFailure` is the deployer's own (large) error; the helpers pass it on as is.
#![allow(clippy::result_large_err)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drydock_domain::config::{BuildIdCheck, HttpGate, ReleaseDeploy, ReleaseTarget, ServiceDeploy};
use drydock_domain::{Event, EventSink};
use drydock_engine::deploy::{
    deploy_service, package, rollback_service, switch_link, take_down_service, AppDeployed,
    AppFailure, AppTarget, BuildInfo, BUILD_INFO,
};
use drydock_engine::RunContext;
use drydock_testkit::free_port;
use drydock_testkit::sshd::SshServer;

/// A commit id of 40 hex digits, different for each `n`.
fn commit(n: u32) -> String {
    format!("{n:08x}").repeat(5)
}

/// An app in its config folder (`app/` with `public/up` and `restart.sh`), built by
/// copying it to `dist/` with the commit in `public/build`, deployed to `srv/` (or an
/// ssh URL), served by `busybox httpd` on `port`.
struct World {
    dir: tempfile::TempDir,
    state: PathBuf,
    port: u16,
    spec: ReleaseDeploy,
}

impl World {
    fn local() -> World {
        let dir = tempfile::tempdir().unwrap();
        let target = ReleaseTarget::Local(dir.path().join("srv"));
        World::with_target(dir, target, None)
    }

    fn over_ssh(sshd: &SshServer) -> World {
        let dir = tempfile::tempdir().unwrap();
        let target = ReleaseTarget::try_from(format!(
            "ssh://{}@127.0.0.1:{}{}",
            sshd.user(),
            sshd.port(),
            dir.path().join("srv-ssh").display()
        ))
        .unwrap();
        World::with_target(dir, target, Some(sshd.client_config()))
    }

    fn with_target(dir: tempfile::TempDir, target: ReleaseTarget, ssh: Option<PathBuf>) -> World {
        let port = free_port();
        let root = dir.path();
        std::fs::create_dir_all(root.join("app/public")).unwrap();
        std::fs::create_dir_all(root.join("run")).unwrap();
        std::fs::write(root.join("app/public/up"), "ok\n").unwrap();
        std::fs::write(root.join("app/public/index.html"), "<h1>hello</h1>\n").unwrap();
        let world = World {
            state: root.join("state"),
            port,
            spec: ReleaseDeploy {
                build: "rm -rf dist && mkdir dist && cp -R app/. dist/ && printf %s \"$DRYDOCK_REV\" > dist/public/build".to_string(),
                output: root.join("dist"),
                target,
                restart: Some("sh ./restart.sh".to_string()),
                shared: vec!["uploads".to_string()],
                url: Some(format!("http://127.0.0.1:{port}")),
                health: Some(HttpGate {
                    interval: Duration::from_millis(50),
                    timeout: Duration::from_secs(2),
                    deadline: Duration::from_secs(3),
                    ..HttpGate::default()
                }),
                build_id: Some(BuildIdCheck {
                    path: Some("/build".to_string()),
                    header: None,
                    expect: "{rev}".to_string(),
                }),
                keep: 5,
                tools: vec!["zstd".to_string()],
                ssh_config: ssh,
            },
            dir,
        };
        world.write_restart(GOOD_RESTART);
        world
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The target folder on disk (the ssh target is on this machine too).
    fn root(&self) -> PathBuf {
        match &self.spec.target {
            ReleaseTarget::Local(p) => p.clone(),
            ReleaseTarget::Ssh { path, .. } => path.clone(),
        }
    }

    /// The release's `restart.sh`: stops the server the pid file names (and waits for
    /// it to let go of the port), starts `busybox httpd` on this release's `public/`.
    fn write_restart(&self, template: &str) {
        let script = template
            .replace("PIDFILE", &self.path("run/httpd.pid").display().to_string())
            .replace("PORT", &self.port.to_string());
        std::fs::write(self.path("app/restart.sh"), script).unwrap();
    }

    fn target<'a>(&'a self, commit: &'a str) -> AppTarget<'a> {
        AppTarget {
            stack: "release-test",
            service: "web",
            commit,
            config_dir: self.dir.path(),
            state_dir: &self.state,
        }
    }

    fn deploy(&self, commit: &str) -> Result<AppDeployed, AppFailure> {
        self.deploy_with(commit, &RunContext::default())
    }

    fn deploy_with(&self, commit: &str, ctx: &RunContext) -> Result<AppDeployed, AppFailure> {
        deploy_service(
            &ServiceDeploy::Release(self.spec.clone()),
            &self.target(commit),
            ctx,
        )
    }

    fn deployed(&self, commit: &str) -> AppDeployed {
        let d = self.deploy(commit).unwrap_or_else(|f| panic!("{f:#?}"));
        assert_eq!(self.served(), Some(commit.to_string()), "{d:#?}");
        d
    }

    fn rollback(&self, to: Option<&str>) -> Result<AppDeployed, AppFailure> {
        // The commit deployed now is what the executor would pass as the target.
        rollback_service(
            &ServiceDeploy::Release(self.spec.clone()),
            &self.target("unused"),
            to,
            &RunContext::default(),
        )
    }

    /// What the HTTP server says its build is (None: no answer).
    fn served(&self) -> Option<String> {
        get(self.port, "/build")
            .filter(|(s, _)| *s == 200)
            .map(|(_, b)| b)
    }

    /// The release `current` points at.
    fn current(&self) -> Option<String> {
        link_id(&self.root().join("current"))
    }

    fn releases(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.root().join("releases"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    fn info(&self, id: &str) -> BuildInfo {
        let text = std::fs::read_to_string(self.root().join("releases").join(id).join(BUILD_INFO))
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for World {
    /// Stops the HTTP server the restart scripts started (by the pid they wrote).
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.path("run/httpd.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
    }
}

/// Stops the old server (waiting until it is gone or a zombie, since nothing may reap
/// it here) and starts one on this release.
const GOOD_RESTART: &str = r#"set -e
pidfile=PIDFILE
if [ -f "$pidfile" ]; then
  old=$(cat "$pidfile")
  kill "$old" 2>/dev/null || true
  i=0
  while [ -e "/proc/$old" ] && ! grep -q '^State:.*Z' "/proc/$old/status" 2>/dev/null && [ $i -lt 200 ]; do
    sleep 0.02; i=$((i+1))
  done
fi
busybox httpd -f -p 127.0.0.1:PORT -h "$(pwd -P)/public" &
echo $! > "$pidfile"
echo "started $DRYDOCK_RELEASE of $DRYDOCK_REV"
"#;

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(2)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .get(&format!("http://127.0.0.1:{port}{path}"))
        .call()
        .ok()?;
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().ok()?;
    Some((status, body.trim().to_string()))
}

fn link_id(path: &Path) -> Option<String> {
    let to = std::fs::read_link(path).ok()?;
    to.file_name()?.to_str().map(str::to_string)
}

fn actions(steps: &[drydock_engine::deploy::AppStep]) -> Vec<&str> {
    steps.iter().map(|s| s.action.as_str()).collect()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Waits until the HTTP server serves `commit`; how long that took.
fn until_served(w: &World, commit: &str, started: Instant) -> Duration {
    let deadline = started + Duration::from_secs(30);
    while Instant::now() < deadline {
        if w.served().as_deref() == Some(commit) {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("{commit} not served within 30 s");
}

#[test]
fn a_local_release_is_packaged_checked_extracted_switched_and_served() {
    let w = World::local();
    let c1 = commit(1);
    let d = w.deployed(&c1);
    let id = d.version.clone();

    // The id: UTC time, then the commit's first 12 digits.
    let (time, short) = id.split_once('-').unwrap();
    assert_eq!(short, &c1[..12]);
    assert!(
        jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", time).is_ok(),
        "{id}"
    );
    assert_eq!(
        actions(&d.steps),
        [
            "inspect",
            "package",
            "upload",
            "verify-checksum",
            "extract",
            "switch",
            "restart",
            "health-gate",
            "build-id",
            "prune"
        ],
        "{d:#?}"
    );
    assert_eq!(
        d.changes, 2,
        "a release written and a link switched: {d:#?}"
    );
    assert_eq!(d.previous, None);

    // The release holds the build's files and its build info; `current` is it.
    let release = w.root().join("releases").join(&id);
    assert_eq!(
        std::fs::read_to_string(release.join("public/up")).unwrap(),
        "ok\n"
    );
    assert_eq!(
        std::fs::read_to_string(release.join("public/build")).unwrap(),
        c1
    );
    let info = w.info(&id);
    assert_eq!(
        (info.service.as_str(), info.commit.as_str()),
        ("web", c1.as_str())
    );
    assert_eq!(info.build_type, "release");
    assert!(info.built_at.parse::<jiff::Timestamp>().is_ok(), "{info:?}");
    assert!(info.tools["git"].starts_with("git version"), "{info:?}");
    assert!(info.tools["zstd"].contains("Zstandard"), "{info:?}");
    assert!(info.tools.contains_key("sh"), "{info:?}");
    assert_eq!(w.current().as_deref(), Some(id.as_str()));
    assert_eq!(
        std::fs::read_link(w.root().join("current")).unwrap(),
        Path::new("releases").join(&id)
    );
    // The shared folder is linked in, and what is written there outlives the release.
    std::fs::write(release.join("uploads/a.txt"), "kept").unwrap();
    assert_eq!(
        std::fs::read_to_string(w.root().join("shared/uploads/a.txt")).unwrap(),
        "kept"
    );
    // The upload was extracted and dropped.
    assert_eq!(
        std::fs::read_dir(w.root().join(".drydock/incoming"))
            .unwrap()
            .count(),
        0
    );

    // The package in the state folder: private, and `sha256sum -c` agrees.
    let pkgs = w.path("state/packages/web");
    assert_eq!(mode(&pkgs), 0o700);
    assert_eq!(mode(&pkgs.join(format!("{id}.tar.zst"))), 0o600);
    assert_eq!(mode(&pkgs.join(format!("{id}.tar.zst.sha256"))), 0o600);
    let check = Command::new("sha256sum")
        .args(["-c", &format!("{id}.tar.zst.sha256")])
        .current_dir(&pkgs)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        format!("{id}.tar.zst: OK")
    );

    // Deployed again: nothing changes, quickly.
    let started = Instant::now();
    let again = w.deploy(&c1).unwrap();
    let took = started.elapsed();
    assert_eq!(again.changes, 0, "{again:#?}");
    assert_eq!(actions(&again.steps), ["inspect", "check-live"]);
    assert_eq!(again.version, id);
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(w.releases(), std::slice::from_ref(&id));
    eprintln!("idempotent second deploy (local): {took:?}");

    // Packaging the same commit again reuses the package while it verifies ...
    let ctx = RunContext::default();
    let p = package(&w.spec, &w.target(&c1), &ctx).unwrap();
    assert!(p.reused);
    assert_eq!(p.id, id);
    // ... and builds a new one once it does not.
    let file = pkgs.join(format!("{id}.tar.zst"));
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    let p = package(&w.spec, &w.target(&c1), &ctx).unwrap();
    assert!(!p.reused, "{p:#?}");
    assert!(
        !file.exists() || p.id == id,
        "the corrupt package was removed"
    );
}

/// Flips a byte of the package on the target once it is uploaded (between the upload
/// and the check), as a disk or a network would.
struct CorruptAfterUpload {
    root: PathBuf,
    done: Mutex<bool>,
}

impl EventSink for CorruptAfterUpload {
    fn emit(&self, event: Event) {
        let Event::Step { message } = event else {
            return;
        };
        let Some(rest) = message.strip_prefix("deploy web: upload: ") else {
            return;
        };
        let id = rest.split_whitespace().next().unwrap();
        let file = self
            .root
            .join(".drydock/incoming")
            .join(format!("{id}.tar.zst"));
        let mut bytes = std::fs::read(&file).unwrap();
        let at = bytes.len() / 3;
        bytes[at] ^= 0x01;
        std::fs::write(&file, bytes).unwrap();
        *self.done.lock().unwrap() = true;
    }
}

#[test]
fn a_package_corrupted_between_upload_and_check_is_refused_and_current_stays() {
    let w = World::local();
    let (c1, c2) = (commit(1), commit(2));
    let first = w.deployed(&c1);

    let sink = Arc::new(CorruptAfterUpload {
        root: w.root(),
        done: Mutex::new(false),
    });
    let ctx = RunContext::new(sink.clone());
    let failed = w.deploy_with(&c2, &ctx).unwrap_err();
    assert!(*sink.done.lock().unwrap(), "the upload was seen");
    assert_eq!(failed.step, "verify-checksum", "{failed:#?}");
    assert!(failed.old_still_served);
    assert!(failed.cause.contains("SHA-256"), "{failed:#?}");
    assert_eq!(
        actions(&failed.steps),
        [
            "inspect",
            "package",
            "upload",
            "verify-checksum",
            "clean-up"
        ]
    );
    // Nothing of the new build is on the target; the old one is current and served.
    assert_eq!(w.current(), Some(first.version.clone()));
    assert_eq!(w.releases(), std::slice::from_ref(&first.version));
    assert_eq!(
        std::fs::read_dir(w.root().join(".drydock/incoming"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(w.served(), Some(c1));
    // The package itself was fine: the next deploy goes through.
    w.deployed(&c2);
}

#[test]
fn a_new_build_whose_restart_fails_or_that_is_unhealthy_is_switched_back() {
    let w = World::local();
    let (c1, c2, c3) = (commit(1), commit(2), commit(3));
    let first = w.deployed(&c1);

    // The new release's restart fails.
    w.write_restart("echo 'cannot bind: port taken' >&2\nexit 3\n");
    let failed = w.deploy(&c2).unwrap_err();
    assert_eq!(failed.step, "restart", "{failed:#?}");
    assert!(failed.cause.contains("cannot bind"), "{failed:#?}");
    assert!(failed.old_still_served, "{failed:#?}");
    let steps = actions(&failed.steps);
    assert!(
        steps.ends_with(&[
            "switch",
            "restart",
            "switch-back",
            "restart",
            "health-gate",
            "build-id",
            "clean-up"
        ]),
        "{steps:?}"
    );
    assert_eq!(w.current(), Some(first.version.clone()));
    assert_eq!(
        w.releases(),
        std::slice::from_ref(&first.version),
        "the new release is removed"
    );
    assert_eq!(w.served(), Some(c1.clone()));

    // The new build starts but is never healthy (no /up).
    w.write_restart(GOOD_RESTART);
    std::fs::remove_file(w.path("app/public/up")).unwrap();
    let started = Instant::now();
    let failed = w.deploy(&c3).unwrap_err();
    let took = started.elapsed();
    assert_eq!(failed.step, "health-gate", "{failed:#?}");
    assert!(failed.cause.contains("404"), "{failed:#?}");
    assert!(failed.old_still_served, "{failed:#?}");
    assert_eq!(w.current(), Some(first.version.clone()));
    assert_eq!(w.releases(), std::slice::from_ref(&first.version));
    assert_eq!(w.served(), Some(c1));
    // Within the gate's deadline (3 s) and the switch back.
    assert!(took < Duration::from_secs(3 + 5), "{took:?}");
    eprintln!("unhealthy build refused and old one served again in {took:?}");
}

#[test]
fn old_releases_are_pruned_to_keep_but_never_current_or_previous() {
    let mut w = World::local();
    w.spec.keep = 2;
    let ids: Vec<String> = (1..=4).map(|n| w.deployed(&commit(n)).version).collect();
    assert_eq!(w.releases(), ids[2..].to_vec());

    // Back to the third: current is the third, previous the fourth.
    w.rollback(None).unwrap();
    assert_eq!(w.current(), Some(ids[2].clone()));
    assert_eq!(link_id(&w.root().join("previous")), Some(ids[3].clone()));

    // A fifth: the two newest are the fourth and fifth; the third was live before it
    // (the rollback target now) and stays, beyond `keep`.
    let fifth = w.deployed(&commit(5));
    assert_eq!(fifth.previous, Some(ids[2].clone()));
    let mut want = vec![ids[2].clone(), ids[3].clone(), fifth.version.clone()];
    want.sort();
    assert_eq!(w.releases(), want);

    // A sixth: previous is the fifth; the third and fourth go.
    let sixth = w.deployed(&commit(6));
    let mut want = vec![fifth.version.clone(), sixth.version.clone()];
    want.sort();
    assert_eq!(w.releases(), want);
    let prune = sixth.steps.iter().find(|s| s.action == "prune").unwrap();
    assert!(
        prune.detail.contains(&ids[2]) && prune.detail.contains(&ids[3]),
        "{prune:?}"
    );
    assert_eq!(
        sixth.changes,
        2 + 2,
        "written, switched, two pruned: {sixth:#?}"
    );
}

/// Two releases, each with a `build_info.json`, under `root`.
fn two_releases(root: &Path) {
    for id in ["a", "b"] {
        let dir = root.join("releases").join(id);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(BUILD_INFO), format!("{{\"id\":\"{id}\"}}")).unwrap();
    }
}

/// Reads `root/current/build_info.json` in a loop while `switch` flips `current`
/// between two releases, until at least `min_reads` reads and `min_switches` switches
/// were done (or `limit` passes). (reads, failed reads, switches).
fn read_while_switching(
    root: &Path,
    min_reads: usize,
    min_switches: usize,
    limit: Duration,
    switch: impl Fn(&Path, &str) + Send + 'static,
) -> (usize, usize, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (stop, reads, failed) = (stop.clone(), reads.clone(), failed.clone());
        let file = root.join("current").join(BUILD_INFO);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match std::fs::read_to_string(&file) {
                    Ok(text) if text.starts_with("{\"id\":") => {}
                    _ => {
                        failed.fetch_add(1, Ordering::SeqCst);
                    }
                }
                reads.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let started = Instant::now();
    let mut switches = 0;
    while started.elapsed() < limit {
        if reads.load(Ordering::SeqCst) >= min_reads && switches >= min_switches {
            break;
        }
        switch(root, if switches % 2 == 0 { "b" } else { "a" });
        switches += 1;
    }
    stop.store(true, Ordering::SeqCst);
    reader.join().unwrap();
    (
        reads.load(Ordering::SeqCst),
        failed.load(Ordering::SeqCst),
        switches,
    )
}

#[test]
fn switching_current_is_atomic_for_a_reader_and_unlink_then_link_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    two_releases(root);
    switch_link(root, "current", "a").unwrap();

    // drydock's switch: a temp link renamed over `current`.
    let (reads, failed, switches) =
        read_while_switching(root, 10_000, 2_000, Duration::from_secs(60), |root, id| {
            switch_link(root, "current", id).unwrap()
        });
    eprintln!("atomic switch: {reads} reads during {switches} switches, {failed} failed");
    assert!(reads >= 10_000, "{reads}");
    assert!(switches >= 2_000, "{switches}");
    assert_eq!(failed, 0, "a reader saw no current/build_info.json");

    // `ln -sfn` (unlink, then symlink) under the same reader: some reads find no
    // `current`, which is why the test above can fail.
    let (reads, failed, switches) =
        read_while_switching(root, 10_000, 2_000, Duration::from_secs(60), |root, id| {
            let link = root.join("current");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(format!("releases/{id}"), &link).unwrap();
        });
    eprintln!("ln -sfn style: {failed} failed of {reads} reads during {switches} switches");
    assert!(
        failed > 0,
        "unlink + symlink never showed a gap in {reads} reads"
    );
}

#[test]
fn a_release_taken_down_is_put_back_from_its_package_and_keeps_previous_and_shared() {
    let w = World::local();
    let (c1, c2) = (commit(1), commit(2));
    let first = w.deployed(&c1);
    let second = w.deployed(&c2);
    let upload = w.root().join("shared/uploads/a.txt");
    std::fs::write(&upload, "user data").unwrap();

    // certify's destroy step: `current` and its release go; the rest stays.
    let kind = ServiceDeploy::Release(w.spec.clone());
    let ctx = RunContext::default();
    let (changes, what) = take_down_service(&kind, &w.target(&c2), &ctx).unwrap();
    assert_eq!(changes, 2, "{what}");
    assert!(
        what.contains(&format!("releases/{} removed", second.version)),
        "{what}"
    );
    assert_eq!(w.current(), None);
    assert_eq!(w.releases(), std::slice::from_ref(&first.version));
    assert_eq!(
        link_id(&w.root().join("previous")),
        Some(first.version.clone())
    );
    assert_eq!(std::fs::read_to_string(&upload).unwrap(), "user data");
    let (changes, what) = take_down_service(&kind, &w.target(&c2), &ctx).unwrap();
    assert_eq!(changes, 0, "{what}");
    assert!(what.starts_with("no release is live"), "{what}");

    // The same commit again goes through upload, checksum and extract, and is served.
    let again = w.deployed(&c2);
    let done = actions(&again.steps);
    for step in [
        "upload",
        "verify-checksum",
        "extract",
        "switch",
        "restart",
        "health-gate",
    ] {
        assert!(done.contains(&step), "{step} missing: {done:?}");
    }
    assert!(again.changes >= 2, "{again:#?}");
    assert_eq!(
        std::fs::read_to_string(w.root().join("current/uploads/a.txt")).unwrap(),
        "user data"
    );
}

#[test]
fn rollback_to_the_previous_release_serves_the_previous_build() {
    let w = World::local();
    let (c1, c2) = (commit(1), commit(2));
    let first = w.deployed(&c1);
    let second = w.deployed(&c2);
    assert_eq!(second.previous, Some(first.version.clone()));

    let started = Instant::now();
    let back = w.rollback(None).unwrap();
    let served_in = until_served(&w, &c1, started);
    eprintln!("rollback (local) until the old build is served: {served_in:?}");
    assert!(served_in < Duration::from_secs(10), "{served_in:?}");
    assert_eq!(back.version, first.version);
    assert_eq!(back.previous, Some(second.version.clone()));
    assert_eq!(back.changes, 1, "{back:#?}");
    assert_eq!(w.current(), Some(first.version.clone()));

    // Rolling back again returns to what was live before the rollback.
    w.rollback(None).unwrap();
    assert_eq!(w.served(), Some(c2.clone()));
    // To a named commit; to one never deployed is refused, naming it.
    w.rollback(Some(&c1)).unwrap();
    assert_eq!(w.served(), Some(c1));
    let refused = w.rollback(Some(&commit(9))).unwrap_err();
    assert!(refused.cause.contains(&commit(9)), "{refused:#?}");
    assert!(refused.old_still_served);
}

#[test]
fn an_ssh_target_deploys_idempotently_and_rolls_back_through_a_real_sshd() {
    let sshd = SshServer::start();
    let w = World::over_ssh(&sshd);
    let (c1, c2) = (commit(1), commit(2));

    let started = Instant::now();
    let first = w.deployed(&c1);
    eprintln!("first deploy over ssh: {:?}", started.elapsed());
    let release = w.root().join("releases").join(&first.version);
    assert_eq!(
        std::fs::read_to_string(release.join("public/build")).unwrap(),
        c1
    );
    assert_eq!(w.info(&first.version).commit, c1);
    assert_eq!(w.current(), Some(first.version.clone()));
    assert!(release.join("uploads").is_symlink());
    assert!(sshd.logins() > 0, "the deploy went through the sshd");
    // The restart ran over ssh, in the new release, with its variables.
    let log = sshd.ssh(&format!("cat {}/.drydock/restart.log", w.root().display()));
    assert_eq!(log.trim(), format!("started {} of {c1}", first.version));

    let started = Instant::now();
    let again = w.deploy(&c1).unwrap();
    let took = started.elapsed();
    eprintln!("idempotent second deploy over ssh: {took:?}");
    assert_eq!(again.changes, 0, "{again:#?}");
    assert_eq!(actions(&again.steps), ["inspect", "check-live"]);
    // One ssh login (about 0.5 s on this machine) and one HTTP probe; the margin is for
    // a loaded CI machine.
    assert!(took < Duration::from_secs(2), "{took:?}");

    let second = w.deployed(&c2);
    assert_eq!(second.previous, Some(first.version.clone()));

    let started = Instant::now();
    let back = w.rollback(Some(&c1)).unwrap();
    let served_in = until_served(&w, &c1, started);
    eprintln!("rollback over ssh until the old build is served: {served_in:?}");
    assert!(served_in < Duration::from_secs(10), "{served_in:?}");
    assert_eq!(back.version, first.version);
    assert_eq!(w.current(), Some(first.version.clone()));

    w.rollback(None).unwrap();
    assert_eq!(w.served(), Some(c2));
    assert_eq!(w.current(), Some(second.version.clone()));
}

/// Cancels the run when a step of `action` is told (as a daemon cancelling a job).
struct CancelAt {
    action: &'static str,
    cancel: drydock_domain::Cancel,
}

impl EventSink for CancelAt {
    fn emit(&self, event: Event) {
        if let Event::Step { message } = event {
            if message.starts_with(&format!("deploy web: {}: ", self.action)) {
                self.cancel.cancel("cancelled by the test");
            }
        }
    }
}

#[test]
fn a_deploy_cancelled_before_the_switch_removes_the_new_release_and_switches_nothing() {
    let w = World::local();
    let first = w.deployed(&commit(1));
    let cancel = drydock_domain::Cancel::new();
    let mut ctx = RunContext::new(Arc::new(CancelAt {
        action: "extract",
        cancel: cancel.clone(),
    }));
    ctx.cancel = cancel;
    let failed = w.deploy_with(&commit(2), &ctx).unwrap_err();
    assert_eq!(failed.step, "cancelled", "{failed:#?}");
    assert!(failed.old_still_served);
    assert_eq!(
        actions(&failed.steps),
        [
            "inspect",
            "package",
            "upload",
            "verify-checksum",
            "extract",
            "clean-up"
        ]
    );
    assert_eq!(w.current(), Some(first.version.clone()));
    assert_eq!(w.releases(), [first.version]);
    assert_eq!(w.served(), Some(commit(1)));
}
