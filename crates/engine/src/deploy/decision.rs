//! The deploy decision matrix, as a pure function of what changed and how the
//! infrastructure is: one of `skip`, `app`, `infra`, `heal`, `recreate`, with the reason
//! and every step in order. Execution follows these steps; `--plan` prints them.
//!
//! | condition | decision | steps |
//! |---|---|---|
//! | infra missing (not deployed) | `recreate` | backup what is readable, recreate, restore, verify, deploy app |
//! | infra changed | `infra` | backup, recreate, verify (restore what differs), deploy app if changed |
//! | infra unhealthy, not changed | `heal` | diagnose, heal; not fixed: backup, recreate, restore, verify; deploy app if changed |
//! | infra healthy, app changed | `app` | deploy app only (start new, health-gate, switch, stop old) |
//! | nothing changed, healthy | `skip` | none |

use serde::Serialize;

/// A step's `when` in the `heal` branch: it runs only if the heal did not fix it.
pub const IF_HEAL_FAILED: &str = "if heal did not fix it";
/// The `restore` step's `when` in the `infra` branch.
pub const IF_DATA_DIFFERS: &str = "for data that is missing or differs";

/// The decision, as the plan's JSON names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Skip,
    App,
    Infra,
    Heal,
    Recreate,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Skip => "skip",
            Decision::App => "app",
            Decision::Infra => "infra",
            Decision::Heal => "heal",
            Decision::Recreate => "recreate",
        }
    }
}

/// How the infrastructure services are before the deploy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InfraState {
    /// Unhealthy (a check critical), by name.
    pub unhealthy: Vec<String>,
    /// Not deployed at all (the runtime knows no such service), by name.
    pub missing: Vec<String>,
}

/// What the change detection found, as the decision needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed {
    pub infra: bool,
    pub app: bool,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What is done: `backup`, `recreate`, `restore`, `verify`, `diagnose`, `heal`,
    /// `deploy-app`.
    pub action: &'static str,
    /// The services it acts on.
    pub services: Vec<String>,
    /// When it runs, if not always (`if heal did not fix it`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<&'static str>,
}

/// The decision, its reason and its steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub decision: Decision,
    pub reason: String,
    pub steps: Vec<Step>,
}

/// The matrix. `infra` and `app` are the services of each role the deploy covers.
pub fn decide(changed: Changed, state: &InfraState, infra: &[String], app: &[String]) -> Decided {
    let step = |action, services: &[String], when| Step {
        action,
        services: services.to_vec(),
        when,
    };
    let deploy_app = |steps: &mut Vec<Step>| {
        if changed.app && !app.is_empty() {
            steps.push(step("deploy-app", app, None));
        }
    };
    let rebuild = |steps: &mut Vec<Step>, when| {
        steps.push(step("backup", infra, when));
        steps.push(step("recreate", infra, when));
        steps.push(step("restore", infra, when));
        steps.push(step("verify", infra, when));
    };
    let mut steps = Vec::new();
    let (decision, reason) = if !state.missing.is_empty() {
        rebuild(&mut steps, None);
        // A recreated stack needs its app too, changed or not.
        if !app.is_empty() {
            steps.push(step("deploy-app", app, None));
        }
        (
            Decision::Recreate,
            format!(
                "infrastructure not deployed: {}; it is recreated and its data restored from the newest backup",
                state.missing.join(", ")
            ),
        )
    } else if changed.infra && !infra.is_empty() {
        steps.push(step("backup", infra, None));
        steps.push(step("recreate", infra, None));
        steps.push(step("verify", infra, None));
        steps.push(step("restore", infra, Some(IF_DATA_DIFFERS)));
        deploy_app(&mut steps);
        (
            Decision::Infra,
            "the infrastructure changed: a proven backup first, then it is recreated and its data checked against that backup".to_string(),
        )
    } else if !state.unhealthy.is_empty() {
        let sick = &state.unhealthy;
        steps.push(step("diagnose", sick, None));
        steps.push(step("heal", sick, None));
        rebuild(&mut steps, Some(IF_HEAL_FAILED));
        deploy_app(&mut steps);
        (
            Decision::Heal,
            format!(
                "the infrastructure did not change but is unhealthy: {}; heal first, recreate from a backup only if that fails",
                sick.join(", ")
            ),
        )
    } else if changed.app && !app.is_empty() {
        deploy_app(&mut steps);
        (
            Decision::App,
            "only the app changed and the infrastructure is healthy: the app alone is deployed"
                .to_string(),
        )
    } else if changed.app {
        (
            Decision::Skip,
            "the app changed but no service has `role = \"app\"`: nothing to deploy".to_string(),
        )
    } else {
        (
            Decision::Skip,
            "nothing changed and the infrastructure is healthy".to_string(),
        )
    };
    Decided {
        decision,
        reason,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn actions(d: &Decided) -> Vec<String> {
        d.steps
            .iter()
            .map(|s| match s.when {
                Some(_) => format!("{}?", s.action),
                None => s.action.to_string(),
            })
            .collect()
    }

    #[test]
    fn every_branch_of_the_matrix() {
        let (infra, app) = (names(&["db"]), names(&["api"]));
        let healthy = InfraState::default();
        let sick = InfraState {
            unhealthy: names(&["db"]),
            ..InfraState::default()
        };
        let gone = InfraState {
            missing: names(&["db"]),
            ..InfraState::default()
        };
        let changed = |infra, app| Changed { infra, app };
        let cases: &[(Changed, &InfraState, Decision, &[&str])] = &[
            (changed(false, false), &healthy, Decision::Skip, &[]),
            (
                changed(false, true),
                &healthy,
                Decision::App,
                &["deploy-app"],
            ),
            (
                changed(true, false),
                &healthy,
                Decision::Infra,
                &["backup", "recreate", "verify", "restore?"],
            ),
            (
                changed(true, true),
                &sick,
                Decision::Infra,
                &["backup", "recreate", "verify", "restore?", "deploy-app"],
            ),
            (
                changed(false, false),
                &sick,
                Decision::Heal,
                &[
                    "diagnose",
                    "heal",
                    "backup?",
                    "recreate?",
                    "restore?",
                    "verify?",
                ],
            ),
            (
                changed(false, true),
                &sick,
                Decision::Heal,
                &[
                    "diagnose",
                    "heal",
                    "backup?",
                    "recreate?",
                    "restore?",
                    "verify?",
                    "deploy-app",
                ],
            ),
            (
                changed(false, false),
                &gone,
                Decision::Recreate,
                &["backup", "recreate", "restore", "verify", "deploy-app"],
            ),
        ];
        for (changed, state, decision, steps) in cases {
            let d = decide(*changed, state, &infra, &app);
            assert_eq!(d.decision, *decision, "{changed:?} {state:?}");
            assert_eq!(actions(&d), *steps, "{changed:?} {state:?}");
        }
    }

    #[test]
    fn an_app_change_without_app_services_is_a_skip_that_says_why() {
        let d = decide(
            Changed {
                infra: false,
                app: true,
            },
            &InfraState::default(),
            &names(&["db"]),
            &[],
        );
        assert_eq!((d.decision, d.steps.len()), (Decision::Skip, 0));
        assert!(d.reason.contains("role = \"app\""), "{}", d.reason);
    }

    #[test]
    fn a_stack_without_infrastructure_deploys_its_app_even_when_everything_counts_as_changed() {
        let d = decide(
            Changed {
                infra: true,
                app: true,
            },
            &InfraState::default(),
            &[],
            &names(&["api"]),
        );
        assert_eq!(d.decision, Decision::App, "{d:?}");
        assert_eq!(actions(&d), ["deploy-app"]);
    }
}
