//! The plan: declared steps, their dependencies and policies; validation
//! (names, cycles, foreign steps, bad settings), levels and `explain()`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use osapi_api::ops::{ContentType, Operation};
use osapi_api::results::CommandResult;
use osapi_api::target::Target;
use osapi_client::Client;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::error::{PlanError, TaskError};
use crate::guards::{Guard, StepNames};
use crate::results::{HostResult, Results};
use crate::retry::RetryPolicy;
use crate::rollout::Rollout;

/// What happens after a step's last failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorStrategy {
    /// No new step starts; running ones finish; the rest is reported skipped (default).
    #[default]
    StopAll,
    /// Dependents are skipped (unless guarded); everything else runs.
    Continue,
}

/// How many failed hosts a broadcast step tolerates before it fails.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum HostTolerance {
    /// Any failed host fails the step (default).
    #[default]
    None,
    /// Up to this many failed hosts.
    Count(usize),
    /// Up to this percentage of the expected hosts.
    Percent(f64),
}

impl HostTolerance {
    /// True when `failed` of `total` hosts is within the tolerance.
    pub fn allows(self, failed: usize, total: usize) -> bool {
        match self {
            HostTolerance::None => failed == 0,
            HostTolerance::Count(n) => failed <= n,
            HostTolerance::Percent(p) => total == 0 || (failed as f64) * 100.0 <= p * total as f64,
        }
    }
}

/// What a function step returns.
pub(crate) struct FuncOutput {
    pub changed: bool,
    pub data: Value,
}

/// What a custom step gets besides the results: the REST client, its name,
/// the attempt number and the run's cancellation token.
#[derive(Clone)]
pub struct TaskContext {
    /// Client of the orchestrator's controller.
    pub client: Client,
    /// The step's name.
    pub step: String,
    /// 1-based attempt.
    pub attempt: u32,
    /// Cancelled when the run is.
    pub cancel: CancellationToken,
}

/// A function step's body.
pub(crate) type StepFn = Arc<
    dyn Fn(TaskContext, Results) -> BoxFuture<'static, Result<FuncOutput, TaskError>> + Send + Sync,
>;

/// Steps that call the REST API directly instead of running a job.
#[derive(Clone)]
pub(crate) enum Builtin {
    Health,
    Upload {
        name: String,
        content_type: ContentType,
        data: Bytes,
        force: bool,
    },
    Changed {
        name: String,
        data: Bytes,
    },
    AgentList,
    AgentGet {
        hostname: String,
    },
}

/// What a step does.
#[derive(Clone)]
pub(crate) enum StepKind {
    Job {
        op: Operation,
        target: String,
        data: Value,
    },
    Builtin(Builtin),
    Func(StepFn),
}

/// The `detail` of a custom step's `step_started` event.
pub(crate) const CUSTOM_STEP_DETAIL: &str = "(custom function)";

impl StepKind {
    /// The `[start]` detail.
    pub fn detail(&self) -> String {
        match self {
            StepKind::Job { op, target, .. } => format!("operation={op} target={target}"),
            StepKind::Builtin(b) => match b {
                Builtin::Health => "GET /health".to_string(),
                Builtin::Upload { name, .. } => format!("upload file={name}"),
                Builtin::Changed { name, .. } => format!("compare file={name}"),
                Builtin::AgentList => "GET /agent".to_string(),
                Builtin::AgentGet { hostname } => format!("GET /agent/{hostname}"),
            },
            StepKind::Func(_) => CUSTOM_STEP_DETAIL.to_string(),
        }
    }

    /// The target of a job step.
    pub fn target(&self) -> Option<&str> {
        match self {
            StepKind::Job { target, .. } => Some(target),
            _ => None,
        }
    }
}

/// One declared step.
#[derive(Clone)]
pub(crate) struct StepSpec {
    pub name: String,
    pub kind: StepKind,
    pub deps: Vec<usize>,
    pub foreign_dep: bool,
    pub guards: Vec<Guard>,
    pub only_if_changed: bool,
    pub retry: RetryPolicy,
    pub on_error: ErrorStrategy,
    pub timeout: Option<Duration>,
    pub tolerance: HostTolerance,
    pub invalid: Option<String>,
    /// Per-host rules of a command step.
    pub command_rules: CommandRules,
    /// Batches, failure budget, pause and gate of a rolling step.
    pub rollout: Option<RolloutSpec>,
    /// Set on a step given to another's `gate(&step)`: it runs as that
    /// step's gate, not on its own.
    pub gate_of: Option<usize>,
    /// On a resumed run, only the hosts that did not succeed run again.
    pub resume_hosts: bool,
    /// Runs in check mode too (a command or custom step that changes nothing).
    pub safe_in_check: bool,
    /// Skipped with this reason whatever its guards say (check mode).
    pub forced_skip: Option<String>,
}

/// Hosts that may fail across a rollout before it stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum FailBudget {
    Count(usize),
    Percent(f64),
}

impl FailBudget {
    /// True when `failed` of `total` hosts is within the budget.
    pub fn allows(self, failed: usize, total: usize) -> bool {
        match self {
            FailBudget::Count(n) => failed <= n,
            FailBudget::Percent(p) => total == 0 || (failed as f64) * 100.0 / (total as f64) <= p,
        }
    }
}

/// A closure checking a batch's hosts: `Err` stops the rollout with its reason.
pub(crate) type GateCheck = Arc<dyn Fn(&[HostResult]) -> Result<(), String> + Send + Sync>;

/// A health check run after each batch of a rollout.
#[derive(Clone)]
pub(crate) enum Gate {
    /// Another step of the plan, run after each batch; a failure stops.
    Step(usize),
    /// A check of the batch's hosts.
    With(GateCheck),
}

/// How a rolling step goes through its hosts.
#[derive(Clone, Default)]
pub(crate) struct RolloutSpec {
    /// `None`: every host in one batch (with `max_parallel`).
    pub batches: Option<Rollout>,
    pub max_parallel: Option<usize>,
    /// `None`: no failure is allowed (the step's host tolerance applies).
    pub max_failed: Option<FailBudget>,
    pub pause: Duration,
    pub gate: Option<Gate>,
}

/// Decides from a host's command result whether it changed or failed.
pub(crate) type CommandRule = Arc<dyn Fn(&CommandResult) -> bool + Send + Sync>;

/// `changed_when` / `failed_when` of a command step.
#[derive(Clone, Default)]
pub(crate) struct CommandRules {
    pub changed_when: Option<CommandRule>,
    pub failed_when: Option<CommandRule>,
}

impl CommandRules {
    pub fn is_empty(&self) -> bool {
        self.changed_when.is_none() && self.failed_when.is_none()
    }
}

impl StepSpec {
    pub fn new(name: String, kind: StepKind) -> Self {
        StepSpec {
            name,
            kind,
            deps: Vec::new(),
            foreign_dep: false,
            guards: Vec::new(),
            only_if_changed: false,
            retry: RetryPolicy::none(),
            on_error: ErrorStrategy::StopAll,
            timeout: None,
            tolerance: HostTolerance::None,
            invalid: None,
            command_rules: CommandRules::default(),
            rollout: None,
            gate_of: None,
            resume_hosts: false,
            safe_in_check: false,
            forced_skip: None,
        }
    }
}

/// The steps of one orchestrator.
pub(crate) struct PlanInner {
    /// Shared so a run can snapshot the plan cheaply; edits copy on write.
    pub steps: Vec<Arc<StepSpec>>,
    /// How many steps carry each name (more than one is a plan error,
    /// reported by [`validate`]).
    names: HashMap<String, usize>,
    /// Per auto-name prefix, the suffix to try next: every lower one was
    /// taken when last looked at. Forgotten when a name is given up.
    next_suffix: HashMap<String, u64>,
}

impl PlanInner {
    pub fn new() -> Self {
        PlanInner {
            steps: Vec::new(),
            names: HashMap::new(),
            next_suffix: HashMap::new(),
        }
    }

    /// Adds a step; returns its index.
    pub fn push(&mut self, spec: StepSpec) -> usize {
        *self.names.entry(spec.name.clone()).or_default() += 1;
        self.steps.push(Arc::new(spec));
        self.steps.len() - 1
    }

    /// Renames step `index` (a `named()` call).
    pub fn rename(&mut self, index: usize, name: String) {
        let Some(spec) = self.steps.get_mut(index) else {
            return;
        };
        let old = std::mem::replace(&mut Arc::make_mut(spec).name, name.clone());
        if let Some(count) = self.names.get_mut(&old) {
            *count -= 1;
            if *count == 0 {
                self.names.remove(&old);
                // A freed name may be an auto-name's suffix: look again.
                self.next_suffix.clear();
            }
        }
        *self.names.entry(name).or_default() += 1;
    }

    fn taken(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// A free name for `prefix`: `prefix`, then `prefix-2`, `prefix-3` …
    /// skipping names already taken (also by `named()` steps). Amortised
    /// constant time: a plan of thousands of steps with the same
    /// operation does not rescan its names for each new one.
    pub fn auto_name(&mut self, prefix: &str) -> String {
        if !self.taken(prefix) {
            return prefix.to_string();
        }
        let mut i = self.next_suffix.get(prefix).copied().unwrap_or(2);
        let name = loop {
            let candidate = format!("{prefix}-{i}");
            if !self.taken(&candidate) {
                break candidate;
            }
            i += 1;
        };
        self.next_suffix.insert(prefix.to_string(), i + 1);
        name
    }
}

/// Checks names, settings, foreign dependencies and cycles.
pub(crate) fn validate(steps: &[Arc<StepSpec>]) -> Result<(), PlanError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, s) in steps.iter().enumerate() {
        if s.name.is_empty() {
            return Err(PlanError::InvalidStep {
                step: format!("#{}", i + 1),
                message: "step name must not be empty".into(),
            });
        }
        if let Some(first) = seen.insert(&s.name, i) {
            return Err(PlanError::DuplicateName {
                name: s.name.clone(),
                first: first + 1,
                second: i + 1,
            });
        }
    }
    for s in steps {
        if s.foreign_dep {
            return Err(PlanError::ForeignDependency {
                step: s.name.clone(),
            });
        }
        if let Some(message) = &s.invalid {
            return Err(PlanError::InvalidStep {
                step: s.name.clone(),
                message: message.clone(),
            });
        }
        if let StepKind::Job { target, .. } = &s.kind {
            let invalid = |message: String| PlanError::InvalidStep {
                step: s.name.clone(),
                message,
            };
            // Controllers take `role:` or `:web` for a hostname (as upstream
            // does) and refuse it at run time: no host is named that.
            let parsed = Target::parse(target).map_err(|e| invalid(e.to_string()))?;
            match &parsed {
                Target::Host(h) if h.contains(':') => {
                    return Err(invalid(format!(
                        "target {h:?} is neither a hostname nor a label selector: write \
                         key:value with both parts, e.g. role:web"
                    )));
                }
                _ => {}
            }
            if s.rollout.is_some() && !parsed.is_broadcast() {
                return Err(invalid(format!(
                    "a rolling step needs hosts to go through: target _all or a label, not {target:?}"
                )));
            }
        } else if s.rollout.is_some() {
            return Err(PlanError::InvalidStep {
                step: s.name.clone(),
                message: "only operations on hosts can roll out in batches".into(),
            });
        }
    }
    find_cycle(steps)
}

fn find_cycle(steps: &[Arc<StepSpec>]) -> Result<(), PlanError> {
    // Iterative DFS with colours; reports the cycle's path.
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut colour = vec![Colour::White; steps.len()];
    for root in 0..steps.len() {
        if colour[root] != Colour::White {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        colour[root] = Colour::Grey;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = steps[node].deps.get(*next) {
                *next += 1;
                match colour[dep] {
                    Colour::White => {
                        colour[dep] = Colour::Grey;
                        stack.push((dep, 0));
                    }
                    Colour::Grey => {
                        let start = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let mut path: Vec<String> = stack[start..]
                            .iter()
                            .map(|(n, _)| steps[*n].name.clone())
                            .collect();
                        path.push(steps[dep].name.clone());
                        return Err(PlanError::Cycle { path });
                    }
                    Colour::Black => {}
                }
            } else {
                colour[node] = Colour::Black;
                stack.pop();
            }
        }
    }
    Ok(())
}

/// Level of each step: 0 without dependencies, else 1 + the deepest dependency.
/// Requires an acyclic plan.
pub(crate) fn levels(steps: &[Arc<StepSpec>]) -> Vec<usize> {
    let order = topological_order(steps);
    let mut level = vec![0usize; steps.len()];
    for i in order {
        level[i] = steps[i]
            .deps
            .iter()
            .map(|&d| level[d] + 1)
            .max()
            .unwrap_or(0);
    }
    level
}

/// Which steps wait on which: each step's count of unfinished
/// dependencies and, for each step, the steps that wait on it. The
/// topological order below and the engine's scheduler both release steps
/// through it.
pub(crate) struct DependencyQueue {
    pending: Vec<usize>,
    dependents: Vec<Vec<usize>>,
}

impl DependencyQueue {
    pub fn new(steps: &[Arc<StepSpec>]) -> DependencyQueue {
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
        for (i, s) in steps.iter().enumerate() {
            for &d in &s.deps {
                dependents[d].push(i);
            }
        }
        DependencyQueue {
            pending: steps.iter().map(|s| s.deps.len()).collect(),
            dependents,
        }
    }

    /// Steps with no dependency, in declaration order.
    pub fn roots(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.pending.len()).filter(|&i| self.pending[i] == 0)
    }

    /// Marks step `i` finished; `ready` gets each step whose last
    /// unfinished dependency it was, in declaration order.
    pub fn release(&mut self, i: usize, mut ready: impl FnMut(usize)) {
        for &j in self
            .dependents
            .get(i)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            self.pending[j] -= 1;
            if self.pending[j] == 0 {
                ready(j);
            }
        }
    }
}

/// Steps in an order where dependencies come first (Kahn's algorithm).
pub(crate) fn topological_order(steps: &[Arc<StepSpec>]) -> Vec<usize> {
    let mut deps = DependencyQueue::new(steps);
    let mut queue: std::collections::VecDeque<usize> = deps.roots().collect();
    let mut order = Vec::with_capacity(steps.len());
    while let Some(i) = queue.pop_front() {
        order.push(i);
        deps.release(i, |j| queue.push_back(j));
    }
    order
}

/// Step names grouped by level, declaration order within a level.
pub(crate) fn level_groups(level: &[usize]) -> Vec<Vec<usize>> {
    let max = level.iter().copied().max();
    let mut groups = vec![Vec::new(); max.map(|m| m + 1).unwrap_or(0)];
    for (i, &l) in level.iter().enumerate() {
        groups[l].push(i);
    }
    groups
}

/// Text rendering of the plan with guards and policies.
pub(crate) fn explain(steps: &[Arc<StepSpec>]) -> String {
    if let Err(e) = validate(steps) {
        return format!("invalid plan: {e}\n");
    }
    let level = levels(steps);
    let groups = level_groups(&level);
    let mut out = String::new();
    let _ = writeln!(out, "Plan: {} steps, {} levels", steps.len(), groups.len());
    for (i, group) in groups.iter().enumerate() {
        let _ = writeln!(out);
        let parallel = if group.len() > 1 { " (parallel)" } else { "" };
        let _ = writeln!(out, "Level {i}{parallel}:");
        for &s in group {
            let spec = &steps[s];
            let kind = match &spec.kind {
                StepKind::Job { op, target, .. } => format!("[job {op} -> {target}]"),
                StepKind::Builtin(_) | StepKind::Func(_) => "[fn]".to_string(),
            };
            let _ = write!(out, "  {} {kind}", spec.name);
            if !spec.deps.is_empty() {
                let deps: Vec<&str> = spec.deps.iter().map(|&d| steps[d].name.as_str()).collect();
                let _ = write!(out, " <- {}", deps.join(", "));
            }
            let mut flags: Vec<String> = Vec::new();
            if spec.only_if_changed {
                flags.push("only-if-changed".into());
            }
            flags.extend(spec.guards.iter().map(|g| g.describe(steps)));
            if spec.retry.retries() > 0 {
                flags.push(format!("retry {}", spec.retry.retries()));
            }
            if spec.on_error == ErrorStrategy::Continue {
                flags.push("continue-on-error".into());
            }
            if let Some(t) = spec.timeout {
                flags.push(format!("timeout {}", osapi_api::format::go_duration(t)));
            }
            match spec.tolerance {
                HostTolerance::None => {}
                HostTolerance::Count(n) => flags.push(format!("tolerate {n} failed hosts")),
                HostTolerance::Percent(p) => flags.push(format!("tolerate {p}% failed hosts")),
            }
            if let StepKind::Job { data, .. } = &spec.kind {
                for key in ["creates", "removes", "unless", "only_if"] {
                    if let Some(v) = data.get(key).and_then(Value::as_str) {
                        flags.push(format!("{key} {v:?}"));
                    }
                }
            }
            if let Some(r) = &spec.rollout {
                flags.extend(describe_rollout(r, steps));
            }
            if let Some(of) = spec.gate_of {
                flags.push(format!("gate of {}", steps.step_name(of)));
            }
            if spec.resume_hosts {
                flags.push("resume-hosts".into());
            }
            if spec.safe_in_check {
                flags.push("safe-in-check".into());
            }
            if let StepKind::Job { data, .. } = &spec.kind
                && data.get("diff").and_then(Value::as_bool) == Some(true)
            {
                flags.push("diff".into());
            }
            if spec.command_rules.changed_when.is_some() {
                flags.push("changed-when".into());
            }
            if spec.command_rules.failed_when.is_some() {
                flags.push("failed-when".into());
            }
            if !flags.is_empty() {
                let _ = write!(out, " ({})", flags.join(", "));
            }
            let _ = writeln!(out);
        }
    }
    out
}

/// The `explain()` flags of a rollout.
fn describe_rollout(r: &RolloutSpec, steps: &[Arc<StepSpec>]) -> Vec<String> {
    let mut flags = Vec::new();
    if let Some(b) = &r.batches {
        flags.push(format!("rolling {b}"));
    }
    if let Some(n) = r.max_parallel {
        flags.push(format!("max {n} hosts at once"));
    }
    match r.max_failed {
        Some(FailBudget::Count(n)) => flags.push(format!("max {n} failed hosts")),
        Some(FailBudget::Percent(p)) => flags.push(format!("max {p}% failed hosts")),
        None => {}
    }
    if !r.pause.is_zero() {
        flags.push(format!("pause {}", osapi_api::format::go_duration(r.pause)));
    }
    match &r.gate {
        Some(Gate::Step(g)) => flags.push(format!("gate {}", steps.step_name(*g))),
        Some(Gate::With(_)) => flags.push("gate fn".into()),
        None => {}
    }
    flags
}

impl StepNames for [Arc<StepSpec>] {
    fn step_name(&self, index: usize) -> &str {
        self.get(index).map(|s| s.name.as_str()).unwrap_or_default()
    }
}
