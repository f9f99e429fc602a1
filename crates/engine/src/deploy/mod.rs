//! `drydock deploy`: what a deployment does, decided from what changed in git since
//! the last good deployment and how the infrastructure is now, and then done. The plan
//! is data (`DeployPlan`): `--plan` prints it, and execution follows the same object
//! step by step.
//!
//! - `plan.rs`: the plan; `changes.rs`: the changed paths between two commits, sorted
//!   by `[deploy]`'s globs; `decision.rs`: the decision matrix, a pure function with a
//!   test per branch;
//! - `execute.rs`: the plan carried out under `lock.rs`'s deploy lock, recorded step by
//!   step; `history.rs`: `drydock deployments`; `rollback.rs`: `drydock rollback`;
//! - `app.rs`: what every deployer shares; `kinds.rs`: the one place a service's
//!   `deploy = { kind }` picks its deployer: `docker/` (a swap behind nginx, or a
//!   recreate), `release/` (release directories, local or over ssh); `package.rs`:
//!   `drydock package`;
//! - `gate.rs`: the health gate and the served-build check every kind shares;
//! - `take_down.rs`: an app service's live version taken away (`drydock certify`'s
//!   destroy step), for the next deploy to put back.
//!
//! Services with `role = "app"` are the app; every other service (`role = "infra"` or
//! no role) is infrastructure, the side whose change takes a backup first.

// `AppFailure` carries the steps done before the failure, for the record; it is
// returned once per service and deployment, never in a loop, so its size is no cost.
#![allow(clippy::result_large_err)]

mod app;
mod changes;
mod decision;
mod docker;
mod execute;
mod gate;
mod history;
mod hooks;
mod infra;
mod kinds;
mod lock;
mod package;
mod plan;
mod release;
mod rollback;
mod take_down;

pub use app::{AppDeployed, AppFailure, AppStep, AppTarget};
pub use changes::Changes;
pub use decision::{decide, Changed, Decision, InfraState, Step};
pub use execute::{deploy, DeployFailure, DeployReport, Interrupted, Outcome, StepRun};
pub use history::{deployments, DeploymentView, DeploymentsReport};
pub use infra::SourceCheck;
pub use kinds::{
    deploy as deploy_service, rollback as rollback_service, take_down as take_down_service,
};
pub use lock::Holder;
pub use package::package_service;
pub use plan::{plan, DeployOptions, DeployPlan, ServiceBefore};
pub use release::{
    package, read_build_info, release_id, switch_link, BuildInfo, Package, PackageError, BUILD_INFO,
};
pub use rollback::{rollback, DataRollback, LostWrites, RollbackOptions, RollbackReport};
pub use take_down::{take_down, TakenDown};
