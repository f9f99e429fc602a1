//! This host's name, as restic records it in lock and key files.

/// The kernel's host name; empty when it cannot be read.
pub(crate) fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
