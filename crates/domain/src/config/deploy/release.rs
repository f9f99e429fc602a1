//! `deploy = { kind = "release", ... }`: an app that is not a container (a shared
//! host, Passenger, a systemd service) deployed as release directories. `drydock
//! package` runs `build` and packs `output` with its build info; `deploy` uploads the
//! package to `target` (a local folder, or `ssh://` through the system's OpenSSH),
//! checks its SHA-256 there, extracts it to `releases/<id>/`, links the shared
//! folders, switches `current` atomically, runs `restart` and health-gates the result.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::docker::validate_url;
use super::gate::{BuildIdCheck, HttpGate};
use crate::config::errors::Collector;
use crate::config::fields::absolute;
use crate::spans::KeyPath;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseDeploy {
    /// The build command, run by `sh -c` in the config's folder (`DRYDOCK_REV` is the
    /// commit).
    pub build: String,
    /// The folder the build leaves, which is packaged (relative to the config's folder).
    pub output: PathBuf,
    /// Where releases go: `/srv/app` or `ssh://user@host:port/srv/app`.
    pub target: ReleaseTarget,
    /// Run on the target after the switch (`systemctl restart app`,
    /// `touch tmp/restart.txt`), in the new `current`.
    #[serde(default)]
    pub restart: Option<String>,
    /// Folders under `<target>/shared/` linked into every release (uploads, logs).
    #[serde(default)]
    pub shared: Vec<String>,
    /// Where users reach the app, for the health gate and the build-id check.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub health: Option<HttpGate>,
    #[serde(default)]
    pub build_id: Option<BuildIdCheck>,
    /// Releases kept; `current` and the rollback target are never pruned.
    #[serde(default = "ReleaseDeploy::default_keep")]
    pub keep: usize,
    /// Programs the build uses whose versions go in `build_info.json` (each asked
    /// `NAME --version`), e.g. `["node", "npm"]`; git and sh are always recorded.
    #[serde(default)]
    pub tools: Vec<String>,
    /// An OpenSSH client config passed to `ssh`/`scp` as `-F` (default: the user's
    /// `~/.ssh/config`), for ssh targets.
    #[serde(default)]
    pub ssh_config: Option<PathBuf>,
}

/// A release target: a local folder or a folder on an ssh host.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum ReleaseTarget {
    Local(PathBuf),
    Ssh {
        user: Option<String>,
        host: String,
        port: Option<u16>,
        path: PathBuf,
    },
}

impl TryFrom<String> for ReleaseTarget {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        if !raw.contains("://") {
            return Ok(ReleaseTarget::Local(PathBuf::from(raw)));
        }
        let url = url::Url::parse(&raw).map_err(|e| {
            format!("`{raw}` is not a target ({e}); write /srv/app or ssh://user@host:22/srv/app")
        })?;
        if url.scheme() != "ssh" {
            return Err(format!(
                "scheme `{}` is not a release target; write /srv/app or ssh://user@host:22/srv/app",
                url.scheme()
            ));
        }
        if url.password().is_some() {
            return Err("a password in the target URL would be logged and stored; use key authentication (~/.ssh/config)".to_string());
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{raw}` names no host; write ssh://user@host:22/srv/app"))?;
        let path = url.path();
        if path.len() <= 1 {
            return Err(format!(
                "`{raw}` names no folder on the host; write ssh://user@host:22/srv/app"
            ));
        }
        Ok(ReleaseTarget::Ssh {
            user: Some(url.username())
                .filter(|u| !u.is_empty())
                .map(str::to_string),
            host: host.to_string(),
            port: url.port(),
            path: PathBuf::from(path),
        })
    }
}

impl From<ReleaseTarget> for String {
    fn from(t: ReleaseTarget) -> String {
        t.to_string()
    }
}

impl std::fmt::Display for ReleaseTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReleaseTarget::Local(p) => write!(f, "{}", p.display()),
            ReleaseTarget::Ssh {
                user,
                host,
                port,
                path,
            } => {
                write!(f, "ssh://")?;
                if let Some(u) = user {
                    write!(f, "{u}@")?;
                }
                write!(f, "{host}")?;
                if let Some(p) = port {
                    write!(f, ":{p}")?;
                }
                write!(f, "{}", path.display())
            }
        }
    }
}

impl ReleaseDeploy {
    fn default_keep() -> usize {
        5
    }

    pub(super) fn validate(&mut self, c: &mut Collector<'_>, at: &KeyPath, base: &Path) {
        if self.build.trim().is_empty() {
            c.push(
                &at.key("build"),
                "empty build command; give the shell command that builds the release",
            );
        }
        self.output = absolute(base, &self.output);
        if let ReleaseTarget::Local(p) = &mut self.target {
            *p = absolute(base, p);
        }
        if self.keep < 2 {
            c.push(
                &at.key("keep"),
                "keep below 2 leaves no earlier release to roll back to; keep at least 2",
            );
        }
        if let Some(file) = &mut self.ssh_config {
            *file = absolute(base, file);
            if matches!(self.target, ReleaseTarget::Local(_)) {
                c.push(
                    &at.key("ssh_config"),
                    "ssh_config is for ssh:// targets; remove it, or write target = \"ssh://user@host/path\"",
                );
            }
        }
        for (i, tool) in self.tools.iter().enumerate() {
            if tool.is_empty() || tool.contains(|ch: char| ch.is_whitespace() || ch == '/') {
                c.push(
                    &at.key("tools").index(i),
                    format!(
                        "`{tool}` is not a program name; write a name found on PATH, e.g. \"node\""
                    ),
                );
            }
        }
        for (i, dir) in self.shared.iter().enumerate() {
            let p = Path::new(dir);
            if dir.is_empty() || p.is_absolute() || p.components().any(|c| c.as_os_str() == "..") {
                c.push(
                    &at.key("shared").index(i),
                    format!("`{dir}` must be a relative path inside the release, without '..' (e.g. \"storage/uploads\")"),
                );
            }
        }
        if let Some(url) = &self.url {
            validate_url(c, &at.key("url"), url);
        }
        if (self.health.is_some() || self.build_id.is_some()) && self.url.is_none() {
            c.push(
                at,
                "health and build_id are asked where users reach the app: give url = \"http://...\"",
            );
        }
        if let Some(h) = &self.health {
            h.validate(c, &at.key("health"));
        }
        if let Some(b) = &self.build_id {
            b.validate(c, &at.key("build_id"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_back() {
        for raw in [
            "/srv/app",
            "ssh://deploy@example.org:2222/srv/app",
            "ssh://host/srv/app",
        ] {
            let t = ReleaseTarget::try_from(raw.to_string()).unwrap();
            assert_eq!(t.to_string(), raw);
        }
        let t = ReleaseTarget::try_from("ssh://deploy@h:2222/srv/app".to_string()).unwrap();
        assert_eq!(
            t,
            ReleaseTarget::Ssh {
                user: Some("deploy".into()),
                host: "h".into(),
                port: Some(2222),
                path: "/srv/app".into()
            }
        );
        for bad in ["ssh://u:pw@h/srv", "ftp://h/srv", "ssh://h", "ssh://h/"] {
            assert!(ReleaseTarget::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    fn load(deploy: &str) -> Result<crate::config::Config, crate::config::ConfigErrors> {
        let text = format!(
            "[stack]\nname = \"s\"\nstate_dir = \"state\"\n\n[repository]\npath = \"/r\"\npassword = \"${{env:PATH}}\"\n\n[services.web]\nrole = \"app\"\nruntime = {{ kind = \"external\" }}\ndeploy = {deploy}\n"
        );
        crate::config::Config::from_text(Path::new("/etc/drydock/drydock.toml"), &text)
    }

    #[test]
    fn tools_and_ssh_config_load_and_bad_ones_are_named() {
        let c = load(r#"{ kind = "release", build = "make", output = "dist", target = "ssh://h/srv/app", tools = ["node"], ssh_config = "ssh/config" }"#).unwrap();
        let Some(crate::config::ServiceDeploy::Release(r)) = &c.services["web"].deploy else {
            panic!("not a release deploy")
        };
        assert_eq!(r.tools, ["node"]);
        assert_eq!(
            r.ssh_config.as_deref(),
            Some(Path::new("/etc/drydock/ssh/config"))
        );
        assert_eq!(r.output, Path::new("/etc/drydock/dist"));

        let e = load(r#"{ kind = "release", build = "make", output = "dist", target = "/srv/app", tools = ["node --version", ""], ssh_config = "c" }"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`node --version` is not a program name"), "{e}");
        assert!(e.contains("`` is not a program name"), "{e}");
        assert!(e.contains("ssh_config is for ssh:// targets"), "{e}");
    }
}
