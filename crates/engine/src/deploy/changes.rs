//! Change detection: the paths changed between the last deployed commit and the one to
//! deploy, in the git repository holding the config, sorted into infrastructure and
//! app by `[deploy]`'s globs. git itself answers (`rev-parse`, `diff --name-only`), so
//! renames, submodules and `.gitattributes` mean what they mean to the operator.

use std::path::{Path, PathBuf};
use std::process::Command;

use drydock_domain::config::DeployConfig;
use serde::Serialize;

use crate::EngineError;

/// What changed, and why the plan thinks so.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// The last deployed commit, if one is known.
    pub from: Option<String>,
    /// The commit to deploy.
    pub to: String,
    /// Changed paths that are infrastructure (relative to the config's folder).
    pub infra: Vec<String>,
    /// Changed paths that are the app's.
    pub app: Vec<String>,
    /// Changed paths that are neither (documentation, say): they decide nothing.
    pub other: usize,
    /// Set when the sides were not found by diffing: no last deployment, or forced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assumed: Option<String>,
}

/// The git repository the config lives in.
pub struct GitRepo {
    dir: PathBuf,
}

impl GitRepo {
    /// The repository holding `config_dir`, or an error saying how to make one.
    pub fn at(config_dir: &Path) -> Result<GitRepo, EngineError> {
        let repo = GitRepo {
            dir: config_dir.to_path_buf(),
        };
        repo.git(&["rev-parse", "--git-dir"]).map_err(|cause| {
            repo.error(format!(
                "{cause}; deploy reads what changed from git: keep the config's folder in a git repository (`git init` and commit), or pass --infra-changed / --app-changed"
            ))
        })?;
        Ok(repo)
    }

    /// The full commit `rev` names.
    pub fn commit(&self, rev: &str) -> Result<String, EngineError> {
        if rev.starts_with('-') {
            return Err(self.error(format!("`{rev}` is not a revision")));
        }
        self.git(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ])
        .map(|out| out.trim().to_string())
        .map_err(|_| {
            self.error(format!(
                "git knows no commit `{rev}`; name a branch, tag or commit (`git log` lists them)"
            ))
        })
    }

    /// The paths changed from `from` to `to`, relative to the config's folder (changes
    /// outside it are not this stack's).
    pub fn changed_paths(&self, from: &str, to: &str) -> Result<Vec<String>, EngineError> {
        let out = self
            .git(&[
                "diff",
                "--name-only",
                "-z",
                "--relative",
                "--no-renames",
                from,
                to,
            ])
            .map_err(|cause| self.error(cause))?;
        Ok(out
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// The text of `path` (absolute, inside the repository's folder) at `commit`.
    pub fn file_at(&self, commit: &str, path: &Path) -> Result<String, EngineError> {
        // The config's folder may be relative (`.`): compare real paths.
        let real = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let (dir, path) = (real(&self.dir), real(path));
        let relative = path.strip_prefix(&dir).map_err(|_| {
            self.error(format!(
                "{} is outside the config's folder, so git has no earlier revision of it",
                path.display()
            ))
        })?;
        let spec = format!("{commit}:./{}", relative.display());
        self.git(&["show", &spec])
            .map_err(|e| self.error(format!("reading {} at {commit}: {e}", relative.display())))
    }

    fn git(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(&self.dir)
            .args(args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .output()
            .map_err(|e| format!("cannot run git ({e}); install git"))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let first = err.lines().next().unwrap_or("").trim();
            return Err(if first.is_empty() {
                format!("git {} failed", args.join(" "))
            } else {
                first.to_string()
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn error(&self, cause: String) -> EngineError {
        EngineError::ChangeDetection {
            dir: self.dir.clone(),
            cause,
        }
    }
}

/// Sorts changed `paths` by `[deploy]`'s globs; a path of both kinds is infrastructure.
pub fn classify(
    deploy: &DeployConfig,
    from: Option<String>,
    to: String,
    paths: &[String],
) -> Changes {
    let (infra_globs, app_globs) = (deploy.matcher(true), deploy.matcher(false));
    let mut c = Changes {
        from,
        to,
        ..Changes::default()
    };
    for path in paths {
        if infra_globs.is_match(path) {
            c.infra.push(path.clone());
        } else if app_globs.is_match(path) {
            c.app.push(path.clone());
        } else {
            c.other += 1;
        }
    }
    c
}
