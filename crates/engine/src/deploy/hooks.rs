//! `[deploy.hooks]` run around a deployment or a rollback: `sh -c COMMAND` in the
//! config's folder, stdin closed, with the deployment described in `DRYDOCK_*`
//! variables (documented on `DeployHooks`). One place, so a deployment and a rollback
//! give their hooks the same environment.

use drydock_domain::config::Config;

/// What a hook is told about the run it belongs to.
pub(super) struct HookRun<'a> {
    pub deployment: i64,
    /// `deploy` or `rollback`.
    pub kind: &'a str,
    pub rev: &'a str,
    pub commit: &'a str,
    pub decision: &'a str,
}

/// Why a hook failed, and what to do.
pub(super) struct HookFailure {
    pub step: String,
    pub cause: String,
    pub fix: String,
}

/// Runs hook `name` (`pre-deploy`, `post-deploy`, `on-failure`) if configured; Err when
/// it exits non-zero or cannot run.
pub(super) fn run(
    config: &Config,
    name: &str,
    command: Option<&str>,
    r: &HookRun<'_>,
    extra: &[(&str, &str)],
) -> Result<(), HookFailure> {
    let Some(command) = command else {
        return Ok(());
    };
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .current_dir(config.dir())
        .env("DRYDOCK_DEPLOYMENT", r.deployment.to_string())
        .env("DRYDOCK_KIND", r.kind)
        .env("DRYDOCK_REV", r.rev)
        .env("DRYDOCK_COMMIT", r.commit)
        .env("DRYDOCK_DECISION", r.decision)
        .env("DRYDOCK_STACK", &config.stack.name)
        .envs(extra.iter().copied())
        .stdin(std::process::Stdio::null())
        .output();
    let fail = |cause: String| HookFailure {
        step: name.to_string(),
        cause,
        fix: format!(
            "fix the `{}` hook in [deploy.hooks], or remove it",
            name.replace('-', "_")
        ),
    };
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(fail(format!(
            "`{command}` exited with {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
        Err(e) => Err(fail(format!("`{command}` could not run: {e}"))),
    }
}
