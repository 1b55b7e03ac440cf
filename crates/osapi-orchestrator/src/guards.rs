//! Guards: conditions a step's dependencies' outcomes must meet for it to run.
//! Several guards on one step all apply (AND); the first that fails gives the
//! skip reason. A guarded step is evaluated even when a dependency failed.

use std::sync::Arc;

use osapi_api::agent::{AgentInfo, ListAgentsResponse};
use osapi_api::target::Target;

use crate::panics;
use crate::predicate::Predicate;
use crate::results::{HostStatus, Results, StepResult, StepStatus};

/// A user guard over the live results.
pub(crate) type WhenFn = Arc<dyn Fn(&Results) -> bool + Send + Sync>;

#[derive(Clone)]
pub(crate) enum Guard {
    OnlyIfFailed,
    OnlyIfAllChanged,
    OnlyIfAnyHostFailed,
    OnlyIfAllHostsFailed,
    OnlyIfAnyHostChanged,
    OnlyIfAllHostsChanged,
    OnlyIfAnyHostSkipped,
    When { f: WhenFn, reason: Option<String> },
    WhenFact { list: usize, predicate: Predicate },
}

/// Names of the plan's steps by index (the plan implements it; guards
/// name the steps they read without depending on the plan).
pub(crate) trait StepNames {
    /// The name of step `index` (empty if there is none).
    fn step_name(&self, index: usize) -> &str;
}

/// The verdict of a guard.
pub(crate) enum Verdict {
    Run,
    Skip(String),
    /// Skipped because a dependency failed: the failure cascades to the
    /// step's own dependents.
    DependencyFailed(String),
    /// The guard itself failed (panicked): the step fails.
    Error(String),
}

fn host_failed(status: HostStatus) -> bool {
    status.is_failure()
}

impl Guard {
    /// Checks the guard. `deps` are the direct dependencies' results.
    pub fn check(
        &self,
        deps: &[Arc<StepResult>],
        results: &Results,
        steps: &(impl StepNames + ?Sized),
        own_target: Option<&str>,
    ) -> Verdict {
        let verdict = |ok: bool, reason: &str| {
            if ok {
                Verdict::Run
            } else {
                Verdict::Skip(reason.to_string())
            }
        };
        let hosts = || deps.iter().flat_map(|d| d.hosts.iter());
        let every_dep_has_hosts = !deps.is_empty() && deps.iter().all(|d| !d.hosts.is_empty());
        match self {
            Guard::OnlyIfFailed => verdict(
                deps.iter().any(|d| d.status == StepStatus::Failed),
                "only-if-failed: no dependency failed",
            ),
            Guard::OnlyIfAllChanged => verdict(
                !deps.is_empty() && deps.iter().all(|d| d.changed),
                "only-if-all-changed: not all dependencies changed",
            ),
            Guard::OnlyIfAnyHostFailed => verdict(
                hosts().any(|h| host_failed(h.status)),
                "only-if-any-host-failed: no host failed",
            ),
            Guard::OnlyIfAllHostsFailed => verdict(
                every_dep_has_hosts && hosts().all(|h| host_failed(h.status)),
                "only-if-all-hosts-failed: not all hosts failed",
            ),
            Guard::OnlyIfAnyHostChanged => verdict(
                hosts().any(|h| h.changed),
                "only-if-any-host-changed: no host changed",
            ),
            Guard::OnlyIfAllHostsChanged => verdict(
                every_dep_has_hosts && hosts().all(|h| h.changed),
                "only-if-all-hosts-changed: not all hosts changed",
            ),
            Guard::OnlyIfAnyHostSkipped => verdict(
                hosts().any(|h| h.status == HostStatus::Skipped),
                "only-if-any-host-skipped: no host skipped",
            ),
            Guard::When { f, reason } => match panics::catch(|| f(results)) {
                Ok(true) => Verdict::Run,
                Ok(false) => Verdict::Skip(
                    reason
                        .clone()
                        .unwrap_or_else(|| "when: guard returned false".to_string()),
                ),
                Err(panic) => Verdict::Error(format!("when guard panicked: {panic}")),
            },
            Guard::WhenFact { list, predicate } => {
                let list_name = steps.step_name(*list);
                let agents: ListAgentsResponse = match results.decode(list_name) {
                    Ok(a) => a,
                    Err(e) => {
                        return Verdict::Skip(format!(
                            "when-fact: step {list_name:?} not found or failed: {e}"
                        ));
                    }
                };
                if agents.agents.is_empty() {
                    return Verdict::Skip("when-fact: no agents returned".into());
                }
                let target = own_target.and_then(|t| Target::parse(t).ok());
                let considered = |a: &AgentInfo| {
                    target
                        .as_ref()
                        .is_none_or(|t| t.selects(&a.hostname, &a.labels))
                };
                let result = panics::catch(|| {
                    agents
                        .agents
                        .iter()
                        .filter(|a| considered(a))
                        .any(|a| predicate.matches(a))
                });
                match result {
                    Ok(true) => Verdict::Run,
                    Ok(false) => Verdict::Skip("when-fact: no matching agent".into()),
                    Err(panic) => Verdict::Error(format!("when-fact predicate panicked: {panic}")),
                }
            }
        }
    }

    /// For `explain()`.
    pub fn describe(&self, steps: &(impl StepNames + ?Sized)) -> String {
        match self {
            Guard::OnlyIfFailed => "only-if-failed".into(),
            Guard::OnlyIfAllChanged => "only-if-all-changed".into(),
            Guard::OnlyIfAnyHostFailed => "only-if-any-host-failed".into(),
            Guard::OnlyIfAllHostsFailed => "only-if-all-hosts-failed".into(),
            Guard::OnlyIfAnyHostChanged => "only-if-any-host-changed".into(),
            Guard::OnlyIfAllHostsChanged => "only-if-all-hosts-changed".into(),
            Guard::OnlyIfAnyHostSkipped => "only-if-any-host-skipped".into(),
            Guard::When { .. } => "when".into(),
            Guard::WhenFact { list, predicate } => {
                format!("when-fact {} on {}", predicate, steps.step_name(*list))
            }
        }
    }
}
