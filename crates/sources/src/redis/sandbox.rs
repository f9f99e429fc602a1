//! Drill sandboxes (a throwaway server with the backup loaded) and the canary key
//! drills write and read back.

use crate::{DataSource, Sandbox};

use super::connect::Redis;
use super::throwaway::Throwaway;

/// The key holding the drill canary, in database 0.
pub const CANARY_KEY: &str = "_drydock:canary";

/// A throwaway server for a drill. Fields drop in order: the server is stopped before
/// its directory (config with the password, log) is removed.
pub(super) struct RedisSandbox {
    pub(super) target: Redis,
    pub(super) server: Throwaway,
    pub(super) _dir: tempfile::TempDir,
}

impl Sandbox for RedisSandbox {
    fn target(&self) -> &dyn DataSource {
        &self.target
    }

    fn describe(&self) -> String {
        format!("throwaway redis-server on 127.0.0.1:{}", self.server.port)
    }
}
