//! `external`: drydock only connects to the service; it never starts or stops it.

use crate::runtime::{Runtime, RuntimeError, State};

pub struct External;

impl Runtime for External {
    fn kind(&self) -> &'static str {
        "external"
    }
    fn can_stop(&self) -> bool {
        false
    }
    fn state(&self) -> Result<State, RuntimeError> {
        Ok(State::Unknown)
    }
    fn stop(&self) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unsupported {
            service: String::new(),
            message: "runtime `external` cannot be stopped by drydock".into(),
        })
    }
    fn start(&self) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unsupported {
            service: String::new(),
            message: "runtime `external` cannot be started by drydock".into(),
        })
    }
    /// Not drydock's to recreate: a deployment leaves it to its operator (and still
    /// backs its data up and compares it).
    fn can_recreate(&self) -> Result<(), String> {
        Ok(())
    }
    fn recreate(&self) -> Result<(), RuntimeError> {
        Ok(())
    }
}
