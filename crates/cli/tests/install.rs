//! `drydock install --systemd`: the unit it writes for the Compose example (snapshot),
//! writing into a unit folder, refusing to replace a different unit without --force,
//! what bad input gets, and the unit checked by `systemd-analyze verify` where it is
//! installed and always by this file's own reading of the keys a notify daemon needs.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A folder outside /tmp (PrivateTmp= would hide /tmp from the service, and the unit
/// says so by turning it off: the example must show the usual unit).
fn lasting_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn exe() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_drydock"))
        .canonicalize()
        .unwrap()
}

/// The Compose example's config (`examples/compose/drydock.toml`) in `dir`.
fn example_stack(dir: &Path) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/compose/drydock.toml");
    let config = dir.join("drydock.toml");
    std::fs::copy(example, &config).unwrap();
    config
}

fn install(config: &Path, args: &[&str]) -> Output {
    Command::new(exe())
        .arg("--config")
        .arg(config)
        .arg("install")
        .arg("--systemd")
        .args(args)
        .current_dir(config.parent().unwrap())
        .env_remove("DRYDOCK_CONFIG")
        .env("DRYDOCK_REPO_PASSWORD", "repo-secret-Hx81")
        .env("POSTGRES_PASSWORD", "pg-secret-Hx82")
        .env("REDIS_PASSWORD", "redis-secret-Hx83")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// `[Section] -> key -> values` (a key may repeat), comments and blanks skipped; a line
/// that is neither fails the test.
fn parse_unit(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.to_string());
            sections.entry(name.to_string()).or_default();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a unit line: {line:?}"));
        let section = current
            .clone()
            .unwrap_or_else(|| panic!("key before any section: {line:?}"));
        sections
            .get_mut(&section)
            .unwrap()
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
    }
    sections
}

/// What a `drydock serve` unit must hold, whatever the config.
fn check_required_keys(unit: &str, config: &Path) {
    let u = parse_unit(unit);
    let one = |section: &str, key: &str| -> String {
        let values = u
            .get(section)
            .and_then(|s| s.get(key))
            .unwrap_or_else(|| panic!("[{section}] {key}= missing:\n{unit}"));
        assert_eq!(values.len(), 1, "{key}= more than once:\n{unit}");
        values[0].clone()
    };
    assert_eq!(one("Service", "Type"), "notify");
    assert_eq!(one("Service", "NotifyAccess"), "main");
    assert_eq!(one("Service", "WatchdogSec"), "120s");
    assert_eq!(one("Service", "Restart"), "on-failure");
    assert_eq!(one("Service", "KillSignal"), "SIGTERM");
    assert_eq!(one("Service", "ProtectSystem"), "strict");
    assert_eq!(one("Service", "NoNewPrivileges"), "yes");
    assert_eq!(one("Service", "ProtectHome"), "read-only");
    assert!(["yes", "no"].contains(&one("Service", "PrivateTmp").as_str()));
    let stop: u64 = one("Service", "TimeoutStopSec")
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .expect("TimeoutStopSec in seconds");
    assert!(stop >= 60, "shorter than serve's stop grace: {stop}");
    let caps = one("Service", "CapabilityBoundingSet");
    for cap in caps.split(' ') {
        assert!(
            [
                "CAP_DAC_READ_SEARCH",
                "CAP_DAC_OVERRIDE",
                "CAP_CHOWN",
                "CAP_FOWNER",
                "CAP_FSETID",
                "CAP_KILL",
                "CAP_SETUID",
                "CAP_SETGID"
            ]
            .contains(&cap),
            "capability outside the narrow set: {cap}"
        );
    }
    assert!(!caps.contains("CAP_SYS_ADMIN"));
    let exec = one("Service", "ExecStart");
    assert_eq!(
        exec,
        format!("{} serve --config {}", exe().display(), config.display()),
        "ExecStart runs drydock itself (no wrapper: NotifyAccess=main)"
    );
    assert!(!one("Service", "ReadWritePaths").is_empty());
    assert_eq!(one("Install", "WantedBy"), "multi-user.target");
}

/// `systemd-analyze verify` where it is installed (Debian's `systemd`; `.ci/run`
/// installs it): exit 0 and not a word about the unit (unknown keys are only
/// warned about). Returns whether it ran.
fn systemd_verify(unit_file: &Path) -> bool {
    let out = match Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit_file)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            println!(
                "systemd-analyze is not available ({e}): the unit was checked only by this \
                 test's own reading of its keys"
            );
            return false;
        }
    };
    let err = stderr(&out);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{err}"
    );
    let about_it: Vec<&str> = err.lines().filter(|l| l.contains("drydock")).collect();
    assert!(about_it.is_empty(), "systemd-analyze verify warns:\n{err}");
    println!("systemd-analyze verify: {} passed", unit_file.display());
    true
}

#[test]
fn dry_run_of_the_compose_example_prints_the_unit_and_writes_nothing() {
    let dir = lasting_dir();
    let config = example_stack(dir.path());
    let units = lasting_dir();
    let unit_dir = units.path().to_str().unwrap();

    let out = install(&config, &["--dry-run", "--unit-dir", unit_dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let path = units.path().join("drydock.service");
    assert!(
        text.starts_with(&format!("would write {}:\n", path.display())),
        "{text}"
    );
    assert!(
        text.contains("systemctl daemon-reload\n  systemctl enable --now drydock"),
        "{text}"
    );
    assert!(!path.exists(), "a dry run wrote the unit");
    // The secrets' names are told (they belong in the environment file), never a value.
    assert!(
        text.contains("DRYDOCK_REPO_PASSWORD, POSTGRES_PASSWORD, REDIS_PASSWORD"),
        "{text}"
    );
    assert!(
        !text.contains("-secret-Hx8"),
        "a secret's value in the output:\n{text}"
    );

    let out = install(&config, &["--dry-run", "--unit-dir", unit_dir, "--json"]);
    let report = json(&out);
    assert_eq!(report["written"], false);
    assert_eq!(report["dry_run"], true);
    let unit = report["unit"].as_str().unwrap().to_string();
    assert!(text.contains(&unit), "text and JSON show different units");
    check_required_keys(&unit, &config);
    let stack = dir.path().to_str().unwrap();
    let redacted = unit
        .replace(&exe().display().to_string(), "[DRYDOCK]")
        .replace(stack, "[STACK]");
    insta::assert_snapshot!("compose_example_unit", redacted);
}

#[test]
fn writes_the_unit_into_the_unit_dir_and_systemd_accepts_it() {
    let dir = lasting_dir();
    let config = example_stack(dir.path());
    let units = lasting_dir();
    let unit_dir = units.path().to_str().unwrap();

    let out = install(&config, &["--unit-dir", unit_dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = units.path().join("drydock.service");
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("wrote {}\n", path.display())),
        "{text}"
    );
    assert!(text.contains("systemctl enable --now drydock"), "{text}");
    let unit = std::fs::read_to_string(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "systemd units are world-readable");
    check_required_keys(&unit, &config);
    // The example runs in Compose, with named volumes and a bind-mounted folder.
    let u = parse_unit(&unit);
    assert_eq!(u["Service"]["SupplementaryGroups"], ["docker"]);
    let rw = &u["Service"]["ReadWritePaths"][0];
    for path in [".drydock/repo", ".drydock/state"] {
        assert!(
            rw.contains(&dir.path().join(path).display().to_string()),
            "{rw}"
        );
    }
    assert!(rw.contains("-/var/lib/docker/volumes"), "{rw}");
    systemd_verify(&path);

    // The same unit again: nothing to write, and it says so.
    let again = install(&config, &["--unit-dir", unit_dir]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("already holds this unit"),
        "{}",
        stdout(&again)
    );
}

#[test]
fn a_different_unit_is_not_replaced_without_force() {
    let dir = lasting_dir();
    let config = example_stack(dir.path());
    let units = lasting_dir();
    let unit_dir = units.path().to_str().unwrap();
    let path = units.path().join("drydock.service");
    let theirs = "[Service]\nExecStart=/usr/bin/true\n";
    std::fs::write(&path, theirs).unwrap();

    let out = install(&config, &["--unit-dir", unit_dir]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&path.display().to_string())
            && err.contains("differs")
            && err.contains("nothing was written")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), theirs);

    let forced = install(&config, &["--unit-dir", unit_dir, "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    let unit = std::fs::read_to_string(&path).unwrap();
    check_required_keys(&unit, &config);
}

#[test]
fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let units = lasting_dir();
    let unit_dir = units.path().to_str().unwrap();

    // A config that does not load: its errors, nothing written.
    let dir = lasting_dir();
    let config = dir.path().join("drydock.toml");
    std::fs::write(&config, "[stack]\nname = \"x\"\n").unwrap();
    let out = install(&config, &["--unit-dir", unit_dir]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("invalid config") && err.contains("drydock.toml"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(units.path()).unwrap().count(), 0);

    // A unit folder that does not exist.
    let config = example_stack(dir.path());
    let missing = units.path().join("no-such-folder");
    let out = install(&config, &["--unit-dir", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(64));
    let err = stderr(&out);
    assert!(
        err.contains(&missing.display().to_string()) && err.contains("does not exist"),
        "{err}"
    );
    assert!(!missing.exists());

    // `install` alone: --systemd is the only installer and must be asked for.
    let out = Command::new(exe())
        .args(["install", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(stderr(&out).contains("--systemd"), "{}", stderr(&out));
}

/// A stack of plain files and SQLite under /tmp owned by a user: no Docker group, the
/// folders beside the sources writable, the machine's /tmp kept, the owner as `User=`.
#[test]
fn the_unit_follows_the_config_owner_paths_and_runtimes() {
    let stack = common::Stack::new(
        "[services.app]\nruntime = { kind = \"none\" }\ndata = [\n  { kind = \"files\", name = \"uploads\", priority = \"critical\", path = \"./srv/uploads\" },\n  { kind = \"sqlite\", name = \"db\", priority = \"high\", path = \"./db/app.db\" },\n]\n",
    );
    for dir in ["srv/uploads", "db", "state", "repo"] {
        std::fs::create_dir_all(stack.path().join(dir)).unwrap();
    }
    let config = stack.path().join("drydock.toml");
    // `daemon` owns the config: the service runs as daemon, with the capabilities ambient.
    let owner = nix::unistd::User::from_name("daemon").unwrap().unwrap();
    nix::unistd::chown(&config, Some(owner.uid), None).unwrap();
    let units = lasting_dir();

    let out = stack
        .command(&["install", "--systemd", "--dry-run", "--json", "--unit-dir"])
        .arg(units.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    let unit = report["unit"].as_str().unwrap();
    check_required_keys(unit, &config);
    let u = parse_unit(unit);
    let s = &u["Service"];
    assert_eq!(s["User"], ["daemon"]);
    assert_eq!(s["AmbientCapabilities"], s["CapabilityBoundingSet"]);
    assert!(
        !s.contains_key("SupplementaryGroups"),
        "no Docker here:\n{unit}"
    );
    assert_eq!(s["EnvironmentFile"], ["-/etc/drydock/drydock.env"]);
    assert_eq!(s["PrivateTmp"], ["no"], "the stack lives in /tmp:\n{unit}");
    let rw: Vec<&str> = s["ReadWritePaths"][0].split(' ').collect();
    let at = |p: &str| stack.path().join(p).display().to_string();
    let mut want = vec![at("db"), at("repo"), at("srv"), at("state")];
    want.sort();
    assert_eq!(
        rw, want,
        "the repository, state, and the folders holding the sources"
    );
    let warnings = report["warnings"].to_string();
    assert!(warnings.contains("PrivateTmp=no"), "{warnings}");
    assert!(warnings.contains("TEST_REPO_PASSWORD"), "{warnings}");

    let path = units.path().join("drydock.service");
    std::fs::write(&path, unit).unwrap();
    systemd_verify(&path);
}
