//! Secret references: `${env:NAME}` and `${file:PATH}`, never literals.
//!
//! A `Secret` remembers where its value comes from and, once resolved at config load,
//! the value itself. Debug, Display and Serialize show only the reference, so a secret
//! cannot leak through logs, JSON or error messages by accident.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Environment variables a secret was read from in this process. Children drydock
/// starts (dump tools, throwaway servers) get them removed from their environment and
/// only the one secret they need set explicitly, so `pg_dump` never sees the S3 key.
static SECRET_ENV: std::sync::Mutex<std::collections::BTreeSet<String>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// The names of the environment variables secrets were read from so far (see
/// `SECRET_ENV`): what a child process must not inherit.
pub fn secret_env_names() -> Vec<String> {
    SECRET_ENV
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect()
}

/// Where a secret's value comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// `${env:NAME}`
    Env(String),
    /// `${file:PATH}`: the file's content, without one trailing newline.
    File(PathBuf),
    /// A value written straight into the config. Rejected by validation; kept only so
    /// validation can report every literal at once with its line.
    Literal,
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "${{env:{name}}}"),
            SecretRef::File(path) => write!(f, "${{file:{}}}", path.display()),
            SecretRef::Literal => f.write_str("<literal value, redacted>"),
        }
    }
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a secret reference could not be resolved.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("a literal secret is not allowed; write a reference such as \"${{env:NAME}}\" or \"${{file:/path}}\"")]
    Literal,
    #[error("environment variable `{0}` is not set; export it or change the reference")]
    UndefinedEnv(String),
    #[error("environment variable `{0}` is empty; set it to the secret or change the reference")]
    EmptyEnv(String),
    #[error(
        "cannot read secret file {path}: {reason}; create it (mode 0600) or change the reference"
    )]
    File { path: PathBuf, reason: String },
    #[error("`{0}` looks like a reference but is not one of ${{env:NAME}} or ${{file:PATH}}")]
    BadReference(String),
    #[error(
        "secret file {path} is mode {mode:04o}, open to group or others; make it private: chmod 600 {path}"
    )]
    FileNotPrivate { path: PathBuf, mode: u32 },
}

/// A secret-valued config field.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    reference: SecretRef,
    value: Option<String>,
    malformed: Option<String>,
}

impl Secret {
    /// Parses a config string into a reference. A literal is accepted here and rejected
    /// by [`Secret::resolve`], so that validation can list every literal at once.
    pub fn parse(raw: &str) -> Self {
        let mut malformed = None;
        let reference =
            if let Some(inner) = raw.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                if let Some(name) = inner.strip_prefix("env:").filter(|n| is_env_name(n)) {
                    SecretRef::Env(name.to_string())
                } else if let Some(path) = inner.strip_prefix("file:").filter(|p| !p.is_empty()) {
                    SecretRef::File(PathBuf::from(path))
                } else {
                    malformed = Some(raw.to_string());
                    SecretRef::Literal
                }
            } else {
                SecretRef::Literal
            };
        Secret {
            reference,
            value: None,
            malformed,
        }
    }

    /// A secret whose value is known (tests, the demo stack); it reports as `${env:NAME}`.
    pub fn from_env_value(name: &str, value: &str) -> Self {
        Secret {
            reference: SecretRef::Env(name.to_string()),
            value: Some(value.to_string()),
            malformed: None,
        }
    }

    pub fn reference(&self) -> &SecretRef {
        &self.reference
    }

    /// Reads the referenced value and keeps it.
    pub fn resolve(&mut self) -> Result<(), SecretError> {
        if let Some(raw) = &self.malformed {
            // Only the shape is echoed back, and only when it is not a literal value.
            return Err(SecretError::BadReference(raw.clone()));
        }
        let value = match &self.reference {
            SecretRef::Literal => return Err(SecretError::Literal),
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(v) if v.is_empty() => return Err(SecretError::EmptyEnv(name.clone())),
                Ok(v) => {
                    SECRET_ENV
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(name.clone());
                    v
                }
                Err(_) => return Err(SecretError::UndefinedEnv(name.clone())),
            },
            SecretRef::File(path) => {
                check_secret_file(path)?;
                let mut text = String::new();
                // The size was checked above; the cap also holds if the file grew since.
                std::fs::File::open(path)
                    .and_then(|f| {
                        std::io::Read::read_to_string(
                            &mut std::io::Read::take(f, SECRET_FILE_MAX_BYTES),
                            &mut text,
                        )
                    })
                    .map_err(|e| SecretError::File {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                let text = text.strip_suffix('\n').unwrap_or(&text).to_string();
                if text.is_empty() {
                    return Err(SecretError::File {
                        path: path.clone(),
                        reason: "the file is empty".into(),
                    });
                }
                text
            }
        };
        self.value = Some(value);
        Ok(())
    }

    /// The resolved value. Pass it to child processes through their environment or a
    /// 0600 file, never on a command line.
    ///
    /// # Panics
    /// If the secret was not resolved: config loading resolves every secret, so code
    /// holding a validated config never sees that.
    pub fn expose(&self) -> &str {
        self.value
            .as_deref()
            .expect("secret resolved at config load")
    }
}

/// Secrets are passwords and keys; a file past this size is not one.
pub const SECRET_FILE_MAX_BYTES: u64 = 64 << 10;

/// A secret file any group member or other user can open is a secret shared with them:
/// refused, like libpq refuses such a `.pgpass` and ssh such a key. Symlinks are
/// followed (Kubernetes mounts secrets as links), so the file's own mode counts. Only a
/// regular file of a sane size is read: `${file:/dev/zero}` or a FIFO must not fill
/// memory or hang the config load.
fn check_secret_file(path: &std::path::Path) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let refuse = |reason: String| SecretError::File {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| refuse(e.to_string()))?;
    if !meta.is_file() {
        return Err(refuse("it is not a regular file".into()));
    }
    if meta.len() > SECRET_FILE_MAX_BYTES {
        return Err(refuse(format!(
            "it holds {} bytes, more than a secret ({} KiB at most)",
            meta.len(),
            SECRET_FILE_MAX_BYTES >> 10
        )));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::FileNotPrivate {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.reference)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.reference, f)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(Secret::parse(&raw))
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.reference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_literals_do_not() {
        assert_eq!(
            Secret::parse("${env:PGPASSWORD}").reference(),
            &SecretRef::Env("PGPASSWORD".into())
        );
        assert_eq!(
            Secret::parse("${file:/run/secrets/pg}").reference(),
            &SecretRef::File("/run/secrets/pg".into())
        );
        assert_eq!(Secret::parse("hunter2").reference(), &SecretRef::Literal);
        assert_eq!(
            Secret::parse("${env:}").resolve(),
            Err(SecretError::BadReference("${env:}".into()))
        );
        assert_eq!(
            Secret::parse("hunter2").resolve(),
            Err(SecretError::Literal)
        );
    }

    #[test]
    fn debug_and_serialize_never_show_the_value() {
        let s = Secret::from_env_value("X", "canary-value-123");
        assert!(!format!("{s:?} {s}").contains("canary"));
        assert!(!serde_json::to_string(&s).unwrap().contains("canary"));
        assert_eq!(s.expose(), "canary-value-123");
    }

    #[test]
    fn undefined_env_var_is_an_error_naming_it() {
        let mut s = Secret::parse("${env:DRYDOCK_TEST_SURELY_UNDEFINED}");
        assert_eq!(
            s.resolve(),
            Err(SecretError::UndefinedEnv(
                "DRYDOCK_TEST_SURELY_UNDEFINED".into()
            ))
        );
    }

    fn private_file(path: &std::path::Path, text: &str) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn file_secret_drops_one_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        private_file(&path, "s3cret\n");
        let mut s = Secret::parse(&format!("${{file:{}}}", path.display()));
        s.resolve().unwrap();
        assert_eq!(s.expose(), "s3cret");
    }

    #[test]
    fn a_secret_file_open_to_group_or_others_is_refused_naming_its_mode_and_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pw");
        private_file(&path, "s3cret-canary\n");
        for mode in [0o640, 0o604, 0o644, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let mut s = Secret::parse(&format!("${{file:{}}}", path.display()));
            let err = s.resolve().unwrap_err();
            assert_eq!(
                err,
                SecretError::FileNotPrivate {
                    path: path.clone(),
                    mode
                }
            );
            let text = err.to_string();
            assert!(
                text.contains(&format!("mode {mode:04o}"))
                    && text.contains(&format!("chmod 600 {}", path.display()))
                    && !text.contains("s3cret-canary"),
                "{text}"
            );
        }
        for mode in [0o600, 0o400] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let mut s = Secret::parse(&format!("${{file:{}}}", path.display()));
            s.resolve().unwrap();
            assert_eq!(s.expose(), "s3cret-canary");
        }
    }

    #[test]
    fn a_device_a_fifo_or_a_huge_file_is_not_read_as_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix_mkfifo(&fifo);
        let big = dir.path().join("big");
        private_file(&big, &"x".repeat(SECRET_FILE_MAX_BYTES as usize + 1));
        for path in [std::path::Path::new("/dev/zero"), &fifo, &big] {
            let mut s = Secret::parse(&format!("${{file:{}}}", path.display()));
            let err = s.resolve().unwrap_err().to_string();
            assert!(
                err.contains(&path.display().to_string())
                    && (err.contains("not a regular file") || err.contains("more than a secret")),
                "{err}"
            );
        }
    }

    fn nix_mkfifo(path: &std::path::Path) {
        let status = std::process::Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}
