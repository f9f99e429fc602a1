//! `none`: no process owns the data (plain files, a tool that runs on demand), so there
//! is nothing to stop before its files are replaced.

use crate::runtime::{Runtime, RuntimeError, State};

pub struct NoProcess;

impl Runtime for NoProcess {
    fn kind(&self) -> &'static str {
        "none"
    }
    fn can_stop(&self) -> bool {
        true
    }
    fn state(&self) -> Result<State, RuntimeError> {
        Ok(State::Stopped)
    }
    fn stop(&self) -> Result<(), RuntimeError> {
        Ok(())
    }
    fn start(&self) -> Result<(), RuntimeError> {
        Ok(())
    }
    /// Nothing runs: recreating is nothing, and the data is checked after as always.
    fn can_recreate(&self) -> Result<(), String> {
        Ok(())
    }
    fn recreate(&self) -> Result<(), RuntimeError> {
        Ok(())
    }
}
