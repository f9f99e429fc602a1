//! Operations: the running stack. `health` runs each service's checks, `diagnose`
//! explains a failing service and proposes fixes, `heal` applies the safe ones, and
//! `status` summarises protection (newest backups, RPO, owed restores) per service.

pub mod diagnose;
mod failure_patterns;
pub mod heal;
pub mod health;
pub mod status;
