//! Removes secrets from text drydock shows (log lines, messages): every secret value
//! the config resolved, and anything that looks like a credential (`password=...`,
//! `user:pass@` in URLs, `Authorization: Bearer ...`, `requirepass ...`).

use std::sync::OnceLock;

use drydock_domain::config::Config;
use regex::Regex;

pub const MARK: &str = "[REDACTED]";

/// The secrets of one config, and the patterns.
pub struct Redactor {
    values: Vec<String>,
}

fn patterns() -> &'static [(Regex, &'static str)] {
    static P: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    P.get_or_init(|| {
        [
            (r"(?i)((?:password|passwd|pwd|secret|token|api[_-]?key)\w*\s*[=:]\s*)(?:'[^']*'|\x22[^\x22]*\x22|\S+)", "${1}[REDACTED]"),
            (r"(?i)(\b(?:password)\s+)(?:'[^']*'|\x22[^\x22]*\x22)", "${1}[REDACTED]"),
            (r"(?i)(\b(?:requirepass|masterauth)\s+)(?:'[^']*'|\x22[^\x22]*\x22|\S+)", "${1}[REDACTED]"),
            (r"([a-zA-Z][a-zA-Z0-9+.-]*://[^:/\s@]+:)[^@\s]+@", "${1}[REDACTED]@"),
            (r"(?i)(authorization:\s*\w+\s+)\S+", "${1}[REDACTED]"),
        ]
        .into_iter()
        .map(|(re, with)| (Regex::new(re).expect("valid pattern"), with))
        .collect()
    })
}

impl Redactor {
    pub fn new(config: &Config) -> Self {
        let mut values = vec![config.repository.password.expose().to_string()];
        for (_, _, source) in config.sources() {
            values.extend(
                source
                    .spec()
                    .secrets()
                    .into_iter()
                    .map(|p| p.expose().to_string()),
            );
        }
        // A remote's keys end up in texts too (an S3 error can echo its access key).
        for remote in &config.remotes {
            values.push(remote.access_key_id.expose().to_string());
            values.push(remote.secret_access_key.expose().to_string());
            values.extend(remote.password.as_ref().map(|p| p.expose().to_string()));
        }
        for svc in config.services.values() {
            for check in &svc.health {
                values.extend(check.spec.password().map(|p| p.expose().to_string()));
            }
        }
        // A remote's S3 secret key and its own repository password: S3 and restic errors
        // can echo request details.
        for remote in &config.remotes {
            values.push(remote.secret_access_key.expose().to_string());
            values.extend(remote.password.as_ref().map(|p| p.expose().to_string()));
        }
        // Webhook and ping URLs, ntfy topics and SMTP passwords of [[notify]].
        for channel in &config.notify {
            values.extend(
                channel
                    .channel
                    .spec()
                    .secrets()
                    .into_iter()
                    .map(|s| s.expose().to_string()),
            );
        }
        // Very short values would blank out ordinary words; longest first so a secret
        // that contains another is removed whole.
        values.retain(|v| v.len() >= 4);
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor { values }
    }

    pub fn line(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MARK);
            }
        }
        for (re, with) in patterns() {
            out = re.replace_all(&out, *with).into_owned();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_common_shapes_are_removed() {
        let r = Redactor {
            values: vec!["s3cr3t-Value".into()],
        };
        for (line, gone) in [
            ("FATAL: bad login with s3cr3t-Value", "s3cr3t-Value"),
            ("ALTER ROLE app PASSWORD 'hunter22'", "hunter22"),
            (
                "connecting to postgres://app:pa55word@db:5432/app",
                "pa55word",
            ),
            ("requirepass topsecret1", "topsecret1"),
            ("env: REDIS_PASSWORD=abc123xyz", "abc123xyz"),
            ("Authorization: Bearer eyJhbGciOi.x.y", "eyJhbGciOi"),
        ] {
            let out = r.line(line);
            assert!(!out.contains(gone), "{line} -> {out}");
            assert!(out.contains(MARK), "{out}");
        }
        assert_eq!(r.line("checkpoint complete"), "checkpoint complete");
        let auth = "FATAL:  password authentication failed for user \"app\"";
        assert_eq!(r.line(auth), auth, "evidence stays readable");
    }

    #[test]
    fn notification_secrets_of_the_config_are_removed() {
        // SAFETY: only this test reads these variables.
        unsafe {
            std::env::set_var("DRYDOCK_REDACT_TEST_PW", "repo-pw-value");
            std::env::set_var(
                "DRYDOCK_REDACT_TEST_HOOK",
                "https://hooks.example.com/T0/hook-token-value",
            );
        }
        let config = Config::from_text(
            std::path::Path::new("/etc/drydock/drydock.toml"),
            "[stack]\nname = \"x\"\nstate_dir = \"s\"\n[repository]\npath = \"/r\"\npassword = \"${env:DRYDOCK_REDACT_TEST_PW}\"\n[[notify]]\nkind = \"webhook\"\nurl = \"${env:DRYDOCK_REDACT_TEST_HOOK}\"\n",
        )
        .unwrap();
        let out = Redactor::new(&config)
            .line("POST https://hooks.example.com/T0/hook-token-value failed");
        assert_eq!(out, format!("POST {MARK} failed"));
    }

    #[test]
    fn remote_secrets_of_the_config_are_removed() {
        // SAFETY: only this test reads these variables.
        unsafe {
            std::env::set_var("DRYDOCK_REDACT_TEST_S3_SECRET", "s3-secret-key-value");
            std::env::set_var("DRYDOCK_REDACT_TEST_REMOTE_PW", "remote-pw-value");
            std::env::set_var("DRYDOCK_REDACT_TEST_REPO_PW", "local-repo-pw");
            std::env::set_var("DRYDOCK_REDACT_TEST_S3_KEY", "GKexamplekey");
        }
        let config = Config::from_text(
            std::path::Path::new("/etc/drydock/drydock.toml"),
            "[stack]\nname = \"x\"\nstate_dir = \"s\"\n[repository]\npath = \"/r\"\npassword = \"${env:DRYDOCK_REDACT_TEST_REPO_PW}\"\n[[remote]]\nname = \"offsite\"\nkind = \"s3\"\nendpoint = \"http://127.0.0.1:3900\"\nregion = \"garage\"\nbucket = \"offsite-backups\"\naccess_key_id = \"${env:DRYDOCK_REDACT_TEST_S3_KEY}\"\nsecret_access_key = \"${env:DRYDOCK_REDACT_TEST_S3_SECRET}\"\npassword = \"${env:DRYDOCK_REDACT_TEST_REMOTE_PW}\"\n",
        )
        .unwrap();
        let out = Redactor::new(&config)
            .line("signature s3-secret-key-value mismatch; opening with remote-pw-value");
        assert_eq!(
            out,
            format!("signature {MARK} mismatch; opening with {MARK}")
        );
    }
}
