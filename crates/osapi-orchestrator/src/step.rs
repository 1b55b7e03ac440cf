//! Step handles: what the operation constructors return. Chain
//! dependencies, retries, guards and policies on them; after the run, pass
//! them to [`crate::Report::result`] for the typed result.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::DecodeError;
use crate::guards::Guard;
use crate::lock;
use crate::plan::{
    Builtin, ErrorStrategy, FailBudget, Gate, HostTolerance, PlanInner, RolloutSpec, StepKind,
    StepSpec,
};
use crate::predicate::Predicate;
use crate::results::StepKey;
use crate::results::{HostResult, Results};
use crate::retry::RetryPolicy;
use crate::rollout::Rollout;
use crate::types::AgentListResult;
use crate::types::{CommandResult, FileDeployResult, FileUploadResult};

/// A step of the plan whose result decodes to `T`.
///
/// Handles are cheap to clone; every method changes the step in its plan and
/// returns the handle, so calls chain.
pub struct Step<T> {
    plan: Arc<Mutex<PlanInner>>,
    index: usize,
    _result: PhantomData<fn() -> T>,
}

impl<T> Clone for Step<T> {
    fn clone(&self) -> Self {
        Step {
            plan: self.plan.clone(),
            index: self.index,
            _result: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Step<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Step({:?})", self.name())
    }
}

/// An untyped step handle, for lists of dependencies of different types.
#[derive(Clone)]
pub struct StepRef {
    plan: Arc<Mutex<PlanInner>>,
    index: usize,
}

impl<T> Step<T> {
    pub(crate) fn new(plan: Arc<Mutex<PlanInner>>, index: usize) -> Self {
        Step {
            plan,
            index,
            _result: PhantomData,
        }
    }

    fn edit(self, f: impl FnOnce(&mut StepSpec)) -> Self {
        {
            let mut plan = lock(&self.plan);
            if let Some(spec) = plan.steps.get_mut(self.index) {
                f(Arc::make_mut(spec));
            }
        }
        self
    }

    fn add_dep(&self, plan: &Arc<Mutex<PlanInner>>, index: usize) {
        let foreign = !Arc::ptr_eq(&self.plan, plan);
        let mut inner = lock(&self.plan);
        if let Some(spec) = inner.steps.get_mut(self.index) {
            let spec = Arc::make_mut(spec);
            if foreign {
                spec.foreign_dep = true;
            } else if !spec.deps.contains(&index) {
                spec.deps.push(index);
            }
        }
    }

    /// The step's current name.
    pub fn name(&self) -> String {
        name_at(&self.plan, self.index)
    }

    /// An untyped handle.
    pub fn untyped(&self) -> StepRef {
        StepRef {
            plan: self.plan.clone(),
            index: self.index,
        }
    }

    /// Renames the step (names must be unique in the plan).
    pub fn named(self, name: impl Into<String>) -> Self {
        lock(&self.plan).rename(self.index, name.into());
        self
    }

    /// Runs after `dep` (and after any other dependency already given).
    pub fn after<U>(self, dep: &Step<U>) -> Self {
        self.add_dep(&dep.plan, dep.index);
        self
    }

    /// Runs after every step in `deps`.
    pub fn after_all<'a>(self, deps: impl IntoIterator<Item = &'a StepRef>) -> Self {
        for d in deps {
            self.add_dep(&d.plan, d.index);
        }
        self
    }

    /// `retries` extra attempts right after a failure (upstream's `Retry(n)`).
    /// What happens after the last attempt is still decided by [`Step::on_error`].
    pub fn retry(self, retries: u32) -> Self {
        self.retry_with(RetryPolicy::immediate(retries))
    }

    /// Retries with a policy (e.g. [`RetryPolicy::exponential`]).
    pub fn retry_with(self, policy: RetryPolicy) -> Self {
        self.edit(|s| s.retry = policy)
    }

    /// What happens when the step fails for good.
    pub fn on_error(self, strategy: ErrorStrategy) -> Self {
        self.edit(|s| s.on_error = strategy)
    }

    /// Shorthand for `on_error(ErrorStrategy::Continue)`.
    pub fn continue_on_error(self) -> Self {
        self.on_error(ErrorStrategy::Continue)
    }

    /// Limit for each attempt (for job steps also the job's deadline on the controller).
    pub fn timeout(self, limit: Duration) -> Self {
        self.edit(|s| {
            if limit.is_zero() {
                s.invalid = Some("timeout must be greater than zero".into());
            }
            s.timeout = Some(limit);
        })
    }

    /// Runs only if some dependency changed something.
    pub fn only_if_changed(self) -> Self {
        self.edit(|s| s.only_if_changed = true)
    }

    fn guard(self, g: Guard) -> Self {
        self.edit(|s| s.guards.push(g))
    }

    /// Runs only if some dependency failed (a recovery step).
    pub fn only_if_failed(self) -> Self {
        self.guard(Guard::OnlyIfFailed)
    }

    /// Runs only if every dependency changed something.
    pub fn only_if_all_changed(self) -> Self {
        self.guard(Guard::OnlyIfAllChanged)
    }

    /// Runs only if some host of some dependency failed or was lost.
    pub fn only_if_any_host_failed(self) -> Self {
        self.guard(Guard::OnlyIfAnyHostFailed)
    }

    /// Runs only if every host of every dependency failed.
    pub fn only_if_all_hosts_failed(self) -> Self {
        self.guard(Guard::OnlyIfAllHostsFailed)
    }

    /// Runs only if some host of some dependency changed.
    pub fn only_if_any_host_changed(self) -> Self {
        self.guard(Guard::OnlyIfAnyHostChanged)
    }

    /// Runs only if every host of every dependency changed.
    pub fn only_if_all_hosts_changed(self) -> Self {
        self.guard(Guard::OnlyIfAllHostsChanged)
    }

    /// Runs only if some host of some dependency was skipped.
    pub fn only_if_any_host_skipped(self) -> Self {
        self.guard(Guard::OnlyIfAnyHostSkipped)
    }

    /// Runs only if `f` returns true for the results so far.
    pub fn when(self, f: impl Fn(&Results) -> bool + Send + Sync + 'static) -> Self {
        self.guard(Guard::When {
            f: Arc::new(f),
            reason: None,
        })
    }

    /// Like [`Step::when`], with the skip reason to report.
    pub fn when_with_reason(
        self,
        reason: impl Into<String>,
        f: impl Fn(&Results) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.guard(Guard::When {
            f: Arc::new(f),
            reason: Some(reason.into()),
        })
    }

    /// Runs only if an agent from `agent_list` (an [`crate::Orchestrator::agent_list`]
    /// step, made a dependency) that this step's target covers matches
    /// `predicate`: the agent itself for a hostname, the labelled agents for
    /// `key:value`, any agent for `_all`, `_any` and non-job steps.
    /// `predicate` is a [`Predicate`] (`os("debian")`, `fact_equals(…)`, …)
    /// or a closure over the agent:
    ///
    /// ```
    /// # fn demo(o: &osapi_orchestrator::Orchestrator) {
    /// let list = o.agent_list();
    /// o.command_exec("_all", "apt-get", &["update"])
    ///     .when_fact(&list, |a: &osapi_orchestrator::types::AgentInfo| a.labels.contains_key("apt"));
    /// # }
    /// ```
    pub fn when_fact(
        self,
        agent_list: &Step<AgentListResult>,
        predicate: impl Into<Predicate>,
    ) -> Self {
        let predicate = predicate.into();
        let step = self.after(agent_list);
        let foreign = !Arc::ptr_eq(&step.plan, &agent_list.plan);
        if foreign {
            return step;
        }
        step.guard(Guard::WhenFact {
            list: agent_list.index,
            predicate,
        })
    }

    /// A broadcast step still succeeds with up to `n` failed hosts.
    pub fn tolerate_host_failures(self, n: usize) -> Self {
        self.edit(|s| s.tolerance = HostTolerance::Count(n))
    }

    /// A broadcast step still succeeds with up to `percent` % failed hosts.
    pub fn tolerate_host_failure_percent(self, percent: f64) -> Self {
        self.edit(|s| {
            if !(0.0..=100.0).contains(&percent) {
                s.invalid = Some(format!(
                    "host failure tolerance {percent}% must be between 0 and 100"
                ));
            }
            s.tolerance = HostTolerance::Percent(percent);
        })
    }
}

/// Rolling changes (see [`crate::rollout`]): for job steps on `_all` or a
/// label; each batch is one job for exactly its hosts, after the previous
/// one.
impl<T> Step<T> {
    fn edit_rollout(self, f: impl FnOnce(&mut RolloutSpec)) -> Self {
        self.edit(|s| f(s.rollout.get_or_insert_with(RolloutSpec::default)))
    }

    /// Runs the step on its hosts in batches (`Rollout::batches(["1",
    /// "25%", "100%"])`), each batch after the previous one ended. Without
    /// [`Step::max_failed_hosts`] or [`Step::max_fail_percent`], a failed
    /// host stops the rollout after its batch; hosts never reached are
    /// reported `skipped` with the reason.
    pub fn rolling(self, rollout: Rollout) -> Self {
        let problem = rollout.problem();
        self.edit(|s| {
            if let Some(p) = problem {
                s.invalid = Some(p);
            }
            s.rollout.get_or_insert_with(RolloutSpec::default).batches = Some(rollout);
        })
    }

    /// On [`crate::Orchestrator::resume_from`], runs this broadcast step
    /// again only on the hosts that did not succeed in the journal (failed,
    /// lost or never reached; one job each), keeping the others' recorded
    /// results: Ansible's retry files, per step.
    pub fn resume_hosts(self) -> Self {
        self.edit(|s| s.resume_hosts = true)
    }

    /// Runs this command or custom step in check mode too
    /// ([`crate::Orchestrator::check`]): it changes nothing (a `cat`, a
    /// query), so running it makes the preview more complete.
    pub fn safe_in_check(self) -> Self {
        self.edit(|s| s.safe_in_check = true)
    }

    /// At most `n` hosts run at once (in each batch, when rolling).
    pub fn max_parallel_hosts(self, n: usize) -> Self {
        self.edit(|s| {
            if n == 0 {
                s.invalid = Some("max_parallel_hosts must be at least 1".into());
            }
            s.rollout
                .get_or_insert_with(RolloutSpec::default)
                .max_parallel = Some(n.max(1));
        })
    }

    /// The rollout goes on while at most `n` hosts failed in all; the step
    /// succeeds if it reached every host within that budget.
    pub fn max_failed_hosts(self, n: usize) -> Self {
        self.edit_rollout(|r| r.max_failed = Some(FailBudget::Count(n)))
    }

    /// The rollout goes on while at most `percent` % of the step's hosts
    /// failed.
    pub fn max_fail_percent(self, percent: f64) -> Self {
        self.edit(|s| {
            if !(0.0..=100.0).contains(&percent) {
                s.invalid = Some(format!(
                    "max_fail_percent {percent} must be between 0 and 100"
                ));
            }
            s.rollout
                .get_or_insert_with(RolloutSpec::default)
                .max_failed = Some(FailBudget::Percent(percent));
        })
    }

    /// Waits `pause` between batches.
    pub fn pause_between(self, pause: Duration) -> Self {
        self.edit_rollout(|r| r.pause = pause)
    }

    /// Runs `gate` after each batch: when it fails, the rollout stops. The
    /// gate step runs only as this step's gate, not on its own: the report
    /// shows it skipped ("runs as the gate of …"), and each check's
    /// verdict is in the batch events (`[gate]` lines).
    pub fn gate<U>(self, gate: &Step<U>) -> Self {
        if Arc::ptr_eq(&self.plan, &gate.plan) {
            let me = self.index;
            let gate_index = gate.index;
            {
                let mut plan = lock(&self.plan);
                if let Some(spec) = plan.steps.get_mut(gate_index) {
                    Arc::make_mut(spec).gate_of = Some(me);
                }
            }
            self.edit_rollout(|r| r.gate = Some(Gate::Step(gate_index)))
        } else {
            self.edit(|s| s.foreign_dep = true)
        }
    }

    /// Checks each batch's hosts when it ends: `Err(reason)` stops the
    /// rollout before the next batch.
    pub fn gate_with(
        self,
        check: impl Fn(&[HostResult]) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        let check = Arc::new(check);
        self.edit_rollout(|r| r.gate = Some(Gate::With(check)))
    }
}

impl Step<FileDeployResult> {
    /// Returns a unified diff of the content that changed on each host
    /// (`FileDeployResult::diff`, at most 64 KiB), shown in verbose output.
    pub fn diff(self) -> Self {
        self.edit(|s| {
            if let StepKind::Job { data, .. } = &mut s.kind
                && let Some(fields) = data.as_object_mut()
            {
                fields.insert("diff".into(), Value::Bool(true));
            }
        })
    }
}

impl Step<FileUploadResult> {
    /// Replace a stored object whose content differs (otherwise that is an error).
    pub fn force(self) -> Self {
        self.edit(|s| {
            if let StepKind::Builtin(Builtin::Upload { force, .. }) = &mut s.kind {
                *force = true;
            }
        })
    }
}

impl Step<CommandResult> {
    /// Sets a condition in the job's data (checked by the agent).
    fn condition(self, key: &'static str, value: &str) -> Self {
        let value = value.to_string();
        self.edit(|s| {
            if value.trim().is_empty() {
                s.invalid = Some(format!("{key} must not be empty"));
            }
            if let StepKind::Job { data, .. } = &mut s.kind
                && let Some(fields) = data.as_object_mut()
            {
                fields.insert(key.to_string(), Value::String(value));
            }
        })
    }

    /// Skips the command on each host where `path` exists (relative to the
    /// command's working directory), reporting it unchanged with the
    /// reason. `@fact.` references work, as in the command.
    ///
    /// ```no_run
    /// # let o = osapi_orchestrator::Orchestrator::builder("http://c", "t").build().unwrap();
    /// o.command_shell("_all", "tar xf /srv/app.tar -C /opt/app && touch /opt/app/.unpacked")
    ///     .creates("/opt/app/.unpacked");
    /// ```
    pub fn creates(self, path: &str) -> Self {
        self.condition("creates", path)
    }

    /// Skips the command on each host where `path` does not exist.
    pub fn removes(self, path: &str) -> Self {
        self.condition("removes", path)
    }

    /// Skips the command on each host where `command` (`/bin/sh -c`, same
    /// working directory and timeout) exits 0.
    pub fn unless(self, command: &str) -> Self {
        self.condition("unless", command)
    }

    /// Skips the command on each host where `command` exits non-zero.
    pub fn only_if(self, command: &str) -> Self {
        self.condition("only_if", command)
    }

    /// Decides per host from its result whether the command changed
    /// anything (by default a command that ran changed). A host skipped by
    /// a condition stays unchanged; a panic fails that host.
    ///
    /// ```no_run
    /// # let o = osapi_orchestrator::Orchestrator::builder("http://c", "t").build().unwrap();
    /// // `apt-mark hold` prints "… was already set on hold." when nothing changed.
    /// o.command_shell("_all", "apt-mark hold nginx")
    ///     .changed_when(|r| !r.stdout.contains("already set"));
    /// ```
    pub fn changed_when(self, f: impl Fn(&CommandResult) -> bool + Send + Sync + 'static) -> Self {
        let f: crate::plan::CommandRule = Arc::new(f);
        self.edit(|s| s.command_rules.changed_when = Some(f))
    }

    /// Decides per host from its result whether the command failed,
    /// instead of "exit code not 0" (e.g. `|r| r.exit_code > 1` for tools
    /// that exit 1 to say "nothing to do"). A panic fails that host.
    pub fn failed_when(self, f: impl Fn(&CommandResult) -> bool + Send + Sync + 'static) -> Self {
        let f: crate::plan::CommandRule = Arc::new(f);
        self.edit(|s| s.command_rules.failed_when = Some(f))
    }
}

impl<T> StepKey for Step<T> {
    fn step_name(&self) -> String {
        self.name()
    }
}

impl StepKey for StepRef {
    fn step_name(&self) -> String {
        name_at(&self.plan, self.index)
    }
}

/// The current name of step `index` of `plan`.
fn name_at(plan: &Mutex<PlanInner>, index: usize) -> String {
    lock(plan)
        .steps
        .get(index)
        .map(|s| s.name.clone())
        .unwrap_or_default()
}

impl<T> From<&Step<T>> for StepRef {
    fn from(s: &Step<T>) -> StepRef {
        s.untyped()
    }
}

/// What a custom step returns.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskOutput<T> {
    /// Whether it changed anything.
    pub changed: bool,
    /// Its result, decodable later.
    pub data: Option<T>,
}

impl<T: Serialize> TaskOutput<T> {
    /// Changed something, with a result.
    pub fn changed(data: T) -> Self {
        TaskOutput {
            changed: true,
            data: Some(data),
        }
    }

    /// Changed nothing, with a result.
    pub fn unchanged(data: T) -> Self {
        TaskOutput {
            changed: false,
            data: Some(data),
        }
    }
}

impl TaskOutput<()> {
    /// Changed something, no result.
    pub fn done_changed() -> Self {
        TaskOutput {
            changed: true,
            data: None,
        }
    }

    /// Changed nothing, no result.
    pub fn done_unchanged() -> Self {
        TaskOutput {
            changed: false,
            data: None,
        }
    }
}

impl Results {
    /// The typed result of a step, through its handle.
    pub fn result<T: DeserializeOwned>(&self, step: &Step<T>) -> Result<T, DecodeError> {
        self.decode(step)
    }
}
