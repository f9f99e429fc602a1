//! Switching the operator's nginx to a new upstream: drydock owns one include file
//! holding the service's `upstream NAME { server 127.0.0.1:PORT; }` block. A switch
//! writes it atomically (a temp file in the same folder, fsync, rename(2), fsync of the
//! folder: a reader or a crash sees the old file or the new, never half of one), checks
//! the whole config (`nginx -t`; on failure the previous file is put back and nothing
//! is switched), then reloads gracefully (`nginx -s reload`: old workers finish the
//! requests they hold; never a restart, which would drop them).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use drydock_domain::config::NginxProxy;

pub(super) struct Nginx<'a> {
    cfg: &'a NginxProxy,
    /// The upstream's name (`proxy_pass http://NAME`).
    name: String,
    /// Written into the file's comment: whose file this is.
    owner: String,
}

/// The file as it was before a switch, to put back.
#[derive(Debug, Clone)]
pub(super) struct Previous(Option<Vec<u8>>);

impl<'a> Nginx<'a> {
    pub fn new(cfg: &'a NginxProxy, service: &str, stack: &str) -> Nginx<'a> {
        Nginx {
            cfg,
            name: cfg.upstream.clone().unwrap_or_else(|| service.to_string()),
            owner: format!("stack {stack}, service {service}"),
        }
    }

    pub fn file(&self) -> &Path {
        &self.cfg.upstream_file
    }

    /// What the file says when `port` (the container of `commit`) is live.
    pub fn text(&self, port: u16, commit: &str) -> String {
        format!(
            "# Written by drydock ({}): the live version is commit {commit}.\n# Rewritten on every deploy and rollback; edits here are lost.\nupstream {} {{\n    server 127.0.0.1:{port};\n}}\n",
            self.owner, self.name
        )
    }

    /// The file's bytes now (`None`: there is none).
    pub fn current(&self) -> Result<Previous, String> {
        match fs::read(self.file()) {
            Ok(b) => Ok(Previous(Some(b))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Previous(None)),
            Err(e) => Err(format!("reading {}: {e}", self.file().display())),
        }
    }

    /// The loopback port the file points at now, if it is ours and names one.
    pub fn pointed_port(&self) -> Option<u16> {
        let Previous(Some(bytes)) = self.current().ok()? else {
            return None;
        };
        parse_port(&String::from_utf8_lossy(&bytes))
    }

    /// Whether the file already says exactly what `text` would.
    pub fn says(&self, port: u16, commit: &str) -> bool {
        matches!(self.current(), Ok(Previous(Some(b))) if b == self.text(port, commit).as_bytes())
    }

    /// Points the upstream at `port`: write, `nginx -t`, reload. On a failed check or
    /// reload the previous file is back in place and nothing was switched. Ok: the
    /// file as it was (to switch back to) and what the reload did.
    pub fn switch(&self, port: u16, commit: &str) -> Result<(Previous, String), String> {
        let previous = self.current()?;
        write_atomic(self.file(), self.text(port, commit).as_bytes())?;
        if let Err(e) = self.test() {
            return Err(match self.put_back(&previous) {
                Ok(()) => format!("{e}; {} is as it was", self.file().display()),
                Err(back) => format!(
                    "{e}; and putting {} back failed: {back}",
                    self.file().display()
                ),
            });
        }
        match self.reload() {
            Ok(seen) => Ok((previous, seen)),
            Err(e) => {
                // The master may have taken part of it: put the file back and ask
                // again, so what runs and what is on disk agree.
                let back = self
                    .put_back(&previous)
                    .and_then(|_| self.reload().map(|_| ()));
                Err(match back {
                    Ok(()) => format!(
                        "{e}; {} put back and nginx reloaded with it",
                        self.file().display()
                    ),
                    Err(b) => format!("{e}; and switching back failed: {b}"),
                })
            }
        }
    }

    /// Puts `previous` back and reloads (the switch back after a failed build check).
    pub fn switch_back(&self, previous: &Previous) -> Result<(), String> {
        self.put_back(previous)?;
        self.test()?;
        self.reload().map(|_| ())
    }

    fn put_back(&self, previous: &Previous) -> Result<(), String> {
        match &previous.0 {
            Some(bytes) => write_atomic(self.file(), bytes),
            None => match fs::remove_file(self.file()) {
                Ok(()) => sync_dir(self.file()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(format!("removing {}: {e}", self.file().display())),
            },
        }
    }

    /// `nginx -t`: the whole config, with the new file, is valid.
    pub fn test(&self) -> Result<(), String> {
        self.run(&["-t", "-q"], "nginx -t")
    }

    /// `nginx -s reload`, then waits until the reload has taken: the signal only asks
    /// the master, which reads the config, starts new workers and only then tells the
    /// old ones to stop accepting (their title turns to "worker process is shutting
    /// down"). Until then an old worker still takes new connections with the old
    /// upstream, so "reloaded" means: every accepting worker is one that was not there
    /// before. A master that keeps its old workers (the new config failed to apply,
    /// say a port it cannot bind) is an error naming nginx's error log. Ok: what was
    /// seen, for the step's detail.
    pub fn reload(&self) -> Result<String, String> {
        let master = self.master_pid();
        let before = master.map(accepting_workers);
        self.run(&["-s", "reload"], "nginx -s reload")?;
        let (Some(master), Some(before)) = (master, before) else {
            return Ok("reload signalled (its master process was not found to confirm)".into());
        };
        let started = std::time::Instant::now();
        loop {
            let now = accepting_workers(master);
            if !now.is_empty() && now.iter().all(|w| !before.contains(w)) {
                return Ok(format!(
                    "reloaded: workers {before:?} -> {now:?} in {:.0?}",
                    started.elapsed()
                ));
            }
            if started.elapsed() > RELOAD_WAIT {
                return Err(format!(
                    "nginx (master {master}) did not take the new config within {RELOAD_WAIT:?}: its workers are still {now:?}; nginx's error log says why"
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The master's pid, from the pid file the main config names (`pid ...;`), else
    /// nginx's compiled-in one.
    fn master_pid(&self) -> Option<i32> {
        let conf = match &self.cfg.conf {
            Some(c) => c.clone(),
            None => PathBuf::from(self.built_with("--conf-path=")?),
        };
        let text = fs::read_to_string(&conf).ok()?;
        let file = pid_directive(&text)
            .map(PathBuf::from)
            .or_else(|| self.built_with("--pid-path=").map(PathBuf::from))?;
        fs::read_to_string(file).ok()?.trim().parse().ok()
    }

    /// A `--flag=value` from `nginx -V`.
    fn built_with(&self, flag: &str) -> Option<String> {
        let out = Command::new(&self.cfg.binary).arg("-V").output().ok()?;
        let text = String::from_utf8_lossy(&out.stderr).to_string();
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(flag))
            .map(str::to_string)
    }

    fn run(&self, args: &[&str], what: &str) -> Result<(), String> {
        let mut cmd = Command::new(&self.cfg.binary);
        cmd.args(args);
        if let Some(conf) = &self.cfg.conf {
            cmd.arg("-c").arg(conf);
        }
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.cfg.binary.display()))?;
        if out.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&out.stderr);
        let said: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        Err(format!(
            "`{what}` failed ({}): {}",
            out.status,
            if said.is_empty() {
                "no message".to_string()
            } else {
                said.join("; ")
            }
        ))
    }
}

/// How long a reload may take to replace the workers.
const RELOAD_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The workers of `master` that accept connections (not shutting down), by pid.
fn accepting_workers(master: i32) -> Vec<i32> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = all
        .flatten()
        .filter(|p| p.stat().map(|s| s.ppid == master).unwrap_or(false))
        .filter(|p| {
            let title = p.cmdline().unwrap_or_default().join(" ");
            title.contains("worker process") && !title.contains("shutting down")
        })
        .map(|p| p.pid)
        .collect();
    pids.sort();
    pids
}

/// The `pid FILE;` directive of a main config (main context: outside any block).
fn pid_directive(text: &str) -> Option<String> {
    let mut depth = 0i32;
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if depth == 0 {
            if let Some(rest) = line.strip_prefix("pid") {
                if rest.starts_with(char::is_whitespace) {
                    let value = rest.trim().trim_end_matches(';').trim();
                    return Some(value.trim_matches(|c| c == '"' || c == '\'').to_string());
                }
            }
        }
        depth += line.matches('{').count() as i32 - line.matches('}').count() as i32;
    }
    None
}

/// The port of the first `server 127.0.0.1:PORT;` line.
fn parse_port(text: &str) -> Option<u16> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let rest = l.strip_prefix("server")?.trim_start();
            let addr = rest.split(|c: char| c == ';' || c.is_whitespace()).next()?;
            addr.strip_prefix("127.0.0.1:")?.parse().ok()
        })
}

/// Replaces `path` with `bytes` so that nobody sees a partial file: a temp file in the
/// same folder (so rename(2) does not cross file systems), fsync, rename, fsync of
/// the folder (so the rename itself survives a crash).
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let temp: PathBuf = dir.join(format!(".{name}.drydock-{}", std::process::id()));
    let result = (|| {
        let mut f = fs::File::create(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        // Readable by nginx's workers whatever drydock's umask.
        fs::set_permissions(&temp, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
        fs::rename(&temp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(format!("writing {}: {e}", path.display()));
    }
    sync_dir(path)
}

fn sync_dir(path: &Path) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("syncing {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_read_back_from_the_file_drydock_writes() {
        let cfg = NginxProxy {
            upstream_file: "/x".into(),
            upstream: Some("app".into()),
            binary: "nginx".into(),
            conf: None,
            drain: std::time::Duration::from_secs(1),
        };
        let n = Nginx::new(&cfg, "web", "clinic");
        let text = n.text(41234, "abc");
        assert!(text.contains("upstream app {"), "{text}");
        assert_eq!(parse_port(&text), Some(41234));
        assert_eq!(parse_port("upstream a {\n  server 10.0.0.1:80;\n}"), None);
        assert_eq!(parse_port("# server 127.0.0.1:9;\n"), None);
    }

    #[test]
    fn the_pid_file_is_the_main_contexts_directive() {
        let conf = "user www-data;\npid /run/x.pid; # here\nhttp {\n  pid /not/this;\n}\n";
        assert_eq!(pid_directive(conf).as_deref(), Some("/run/x.pid"));
        assert_eq!(pid_directive("http {\n pid /a;\n}\n"), None);
        assert_eq!(pid_directive("pidfile x;\n"), None);
    }

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("up.conf");
        fs::write(&file, "old").unwrap();
        write_atomic(&file, b"new").unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "new");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }
}
