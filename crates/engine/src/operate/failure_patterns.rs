//! The failures `diagnose` knows: each a pattern matched against logs and check
//! messages, with its severity and the fix it suggests.

use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// A known failure: how it shows in logs and messages, and what to do.
pub(super) struct Pattern {
    pub(super) id: &'static str,
    pub(super) title: &'static str,
    pub(super) severity: Severity,
    pub(super) regex: &'static str,
    pub(super) fix: &'static str,
}

pub(super) const PATTERNS: &[Pattern] = &[
    Pattern {
        id: "out_of_memory",
        title: "Out of memory",
        severity: Severity::Critical,
        regex: r"(?i)out of memory|cannot allocate memory|oom[- ]?kill|killed process \d+|memory allocation .*failed|OOM command not allowed",
        fix: "Give the service more memory or lower its memory settings (shared_buffers, innodb_buffer_pool_size, maxmemory); check what else uses memory on the host",
    },
    Pattern {
        id: "disk_full",
        title: "Disk full",
        severity: Severity::Critical,
        regex: r"(?i)no space left on device|disk full|\bENOSPC\b|could not extend file|MISCONF .*(disk|save)",
        fix: "Free space on the data filesystem (old logs, WAL, dumps) or grow it, then start the service",
    },
    Pattern {
        id: "port_in_use",
        title: "Port already in use",
        severity: Severity::Critical,
        regex: r"(?i)address already in use|\bEADDRINUSE\b|could not bind|bind\(\) (to .* )?failed|Can't start server: Bind on TCP/IP port|Could not create server TCP listening socket",
        fix: "Stop the process holding the port (see the port report) or move the service to a free port, then start it",
    },
    Pattern {
        id: "permission_denied",
        title: "Permission denied",
        severity: Severity::Critical,
        regex: r"(?i)permission denied|\bEACCES\b|operation not permitted|must be owned by|has group or world access",
        fix: "Fix ownership and modes of the data directory and its files: the service's user must own them (PostgreSQL wants 0700)",
    },
    Pattern {
        id: "authentication_failed",
        title: "Authentication failed",
        severity: Severity::Critical,
        regex: r"(?i)password authentication failed|authentication failed|access denied for user|\bWRONGPASS\b|\bNOAUTH\b|invalid password|invalid username-password",
        fix: "Check the password reference in drydock.toml and the user's password on the server",
    },
    Pattern {
        id: "too_many_connections",
        title: "Too many connections",
        severity: Severity::Warning,
        regex: r"(?i)too many connections|max number of clients reached|remaining connection slots are reserved|too many clients already",
        fix: "Raise max_connections/maxclients or put a connection pooler in front; look for clients that leak connections",
    },
    Pattern {
        id: "data_corrupted",
        title: "Data directory corrupted or missing",
        severity: Severity::Critical,
        regex: r"(?i)does not appear to be a PostgreSQL database cluster|could not locate a valid checkpoint record|invalid checkpoint record|database files are incompatible|database disk image is malformed|InnoDB: (Database page corruption|Corruption)|Bad file format reading the append only file|Short read or OOM loading DB|Wrong signature trying to load DB|is damaged: quick_check|data missing|directory \S+ does not exist|could not open file \S+global/pg_control",
        fix: "The data is damaged or gone: do not restart it in a loop; recreate the service and restore its data from the latest verified backup (`drydock restore latest --service {service}`)",
    },
    Pattern {
        id: "configuration_error",
        title: "Configuration error",
        severity: Severity::Critical,
        regex: r"(?i)configuration file .* contains errors|invalid value for parameter|unrecognized configuration parameter|unknown variable|FATAL CONFIG FILE ERROR|Bad directive|syntax error in config",
        fix: "Fix the setting the log names, then start the service",
    },
    Pattern {
        id: "connection_refused",
        title: "Connection refused",
        severity: Severity::Critical,
        regex: r"(?i)connection refused|\bECONNREFUSED\b|nothing listens",
        fix: "Nothing listens on the service's port: start it (`drydock heal`) and read its log for why it stopped",
    },
];

pub(super) fn compiled() -> &'static [(&'static Pattern, Regex)] {
    static C: OnceLock<Vec<(&'static Pattern, Regex)>> = OnceLock::new();
    C.get_or_init(|| {
        PATTERNS
            .iter()
            .map(|p| (p, Regex::new(p.regex).expect("valid pattern")))
            .collect()
    })
}
