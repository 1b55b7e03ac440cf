//! The engine: validates the plan, then schedules eagerly — a step starts as
//! soon as its own dependencies are done, up to a cap on steps in flight —
//! applies skip rules, error strategies and retries, and reports every step.
//!
//! Skip rules, in order (upstream's, with guards composed):
//! 1. a dependency failed (or was skipped because of a failure) → skipped,
//!    cascading — unless the step has a guard;
//! 2. `only_if_changed` and no dependency changed → skipped;
//! 3. guards: all must pass; the first that does not gives the reason.
//!
//! Errors: `StopAll` stops starting steps (running ones finish; the rest is
//! reported skipped); `Continue` lets everything independent run.

mod attempt;
mod rollout;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use osapi_client::Client;
use serde_json::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::events::{Event, HostEvent, LevelSummary, Observer};
use crate::guards::Verdict;
use crate::panics::CatchPanic;
use crate::plan::{self, ErrorStrategy, StepSpec};
use crate::report::Report;
use crate::report::RunError;
use crate::results::{HostResult, HostStatus, Results, StepResult, StepStatus};

/// Settings of a run.
#[derive(Clone)]
pub(crate) struct RunConfig {
    pub observers: Vec<Arc<dyn Observer>>,
    pub max_in_flight: usize,
    pub verbose: bool,
    /// How long a job step without a timeout waits for its hosts.
    pub job_deadline: Duration,
    /// Where finished steps are recorded.
    pub journal: Option<Arc<crate::journal::Writer>>,
    /// The journal of an earlier run, by step name.
    pub resume: Option<Arc<HashMap<String, crate::journal::Entry>>>,
    /// Check mode: the steps were prepared by [`crate::check::prepare`].
    pub check: bool,
}

/// The [`Observer::mark`]s of an emitter's observers (one, mostly).
pub(crate) enum Marks {
    One(u64),
    Many(Vec<u64>),
}

/// Sends events to every observer; an observer that panics is ignored.
#[derive(Clone)]
pub(crate) struct Emitter {
    observers: Arc<[Arc<dyn Observer>]>,
    verbose: bool,
}

impl Emitter {
    pub fn emit(&self, event: Event) {
        for o in self.observers.iter() {
            let _ = crate::panics::catch(|| o.on_event(&event));
        }
    }

    /// Has every observer write what it holds back (before user code runs).
    pub fn flush(&self) {
        for o in self.observers.iter() {
            let _ = crate::panics::catch(|| o.flush());
        }
    }

    /// Where every observer's held-back output reaches now.
    pub fn marks(&self) -> Marks {
        // An observer whose mark panicked writes everything before user code.
        let mark = |o: &Arc<dyn Observer>| crate::panics::catch(|| o.mark()).unwrap_or(u64::MAX);
        match &*self.observers {
            [] => Marks::One(0),
            [one] => Marks::One(mark(one)),
            many => Marks::Many(many.iter().map(mark).collect()),
        }
    }

    /// Has every observer write its output up to `marks` (before user code
    /// runs).
    pub fn flush_through(&self, marks: &Marks) {
        for (i, o) in self.observers.iter().enumerate() {
            let mark = match marks {
                Marks::One(m) => *m,
                Marks::Many(ms) => ms.get(i).copied().unwrap_or(u64::MAX),
            };
            let _ = crate::panics::catch(|| o.flush_through(mark));
        }
    }

    fn enabled(&self) -> bool {
        !self.observers.is_empty()
    }
}

struct Scheduler {
    steps: Arc<[Arc<StepSpec>]>,
    level: Vec<usize>,
    deps: plan::DependencyQueue,
    outcome: Vec<Option<Arc<StepResult>>>,
    /// Failed, or skipped because a dependency failed.
    failure_chain: Vec<bool>,
    level_started: Vec<bool>,
    level_left: Vec<usize>,
    level_changed: Vec<usize>,
    /// Each level's steps, in declaration order.
    level_steps: Vec<Vec<usize>>,
    ready: VecDeque<usize>,
    results: Results,
    emitter: Emitter,
    stop: Option<(String, String)>,
}

impl Scheduler {
    fn level_summary(&self, l: usize) -> (Vec<String>, bool) {
        let members = &self.level_steps[l];
        let names = members
            .iter()
            .map(|&i| self.steps[i].name.clone())
            .collect();
        (names, members.len() > 1)
    }

    fn touch_level(&mut self, i: usize) {
        let l = self.level[i];
        if !self.level_started[l] {
            self.level_started[l] = true;
            if self.emitter.enabled() {
                let (steps, parallel) = self.level_summary(l);
                self.emitter.emit(Event::LevelStarted {
                    level: l,
                    steps,
                    parallel,
                });
            }
        }
    }

    fn decide(&self, i: usize) -> Verdict {
        let spec = &self.steps[i];
        if let Some(reason) = &spec.forced_skip {
            return Verdict::Skip(reason.clone());
        }
        if let Some(of) = spec.gate_of {
            return Verdict::Skip(format!("runs as the gate of {}", self.steps[of].name));
        }
        if spec.guards.is_empty()
            && let Some(&d) = spec.deps.iter().find(|&&d| self.failure_chain[d])
        {
            return Verdict::DependencyFailed(format!("dependency failed: {}", self.steps[d].name));
        }
        if !spec.only_if_changed && spec.guards.is_empty() {
            return Verdict::Run;
        }
        let deps: Vec<Arc<StepResult>> = spec
            .deps
            .iter()
            .filter_map(|&d| self.outcome[d].clone())
            .collect();
        if spec.only_if_changed && !deps.iter().any(|d| d.changed) {
            return Verdict::Skip("no dependencies changed".into());
        }
        for g in &spec.guards {
            match g.check(&deps, &self.results, &*self.steps, spec.kind.target()) {
                Verdict::Run => {}
                other => return other,
            }
        }
        Verdict::Run
    }

    /// Records a finished step and releases its dependents.
    fn finish(&mut self, i: usize, result: StepResult) {
        let spec = &self.steps[i];
        let l = self.level[i];
        let failed = result.status == StepStatus::Failed;
        if failed {
            self.failure_chain[i] = true;
            if spec.on_error == ErrorStrategy::StopAll && self.stop.is_none() {
                self.stop = Some((spec.name.clone(), result.error.clone().unwrap_or_default()));
            }
        }
        // A failed step is counted as failed, not as a change.
        if result.status == StepStatus::Changed {
            self.level_changed[l] += 1;
        }
        let result = self.results.insert(result);
        self.outcome[i] = Some(result);
        self.level_left[l] -= 1;
        if self.level_left[l] == 0 && self.emitter.enabled() {
            self.emitter.emit(Event::LevelFinished {
                level: l,
                changed: self.level_changed[l],
                total: self.level_steps[l].len(),
                parallel: self.level_steps[l].len() > 1,
            });
        }
        let ready = &mut self.ready;
        self.deps.release(i, |j| ready.push_back(j));
    }

    fn skip(&mut self, i: usize, reason: String, cascade: bool) {
        self.touch_level(i);
        if self.emitter.enabled() {
            self.emitter.emit(Event::StepSkipped {
                step: self.steps[i].name.clone(),
                level: self.level[i],
                reason: reason.clone(),
            });
        }
        if cascade {
            self.failure_chain[i] = true;
        }
        let result = StepResult {
            name: self.steps[i].name.clone(),
            status: StepStatus::Skipped,
            changed: false,
            error: None,
            skip_reason: Some(reason),
            data: Value::Null,
            hosts: Vec::new(),
            job_id: None,
            duration: Duration::ZERO,
            attempts: 0,
            level: self.level[i],
            from_journal: false,
        };
        self.finish(i, result);
    }
}

/// Runs a plan in a task of its own, so that it is polled on a runtime
/// worker like the jobs it waits for (on a multi-threaded runtime, a step's
/// answer then wakes the engine on the same thread instead of the caller's
/// `block_on` thread). Dropping the returned future aborts the task: the
/// run and its steps stop at the runtime's next poll of it (at once on a
/// multi-threaded runtime; a current-thread runtime must be driven again).
/// Guards, observers and the journal run in that task, without the
/// caller's task-locals. A panic in the engine reaches the caller.
pub(crate) async fn spawn_run(
    client: Client,
    steps: Arc<[Arc<StepSpec>]>,
    config: RunConfig,
    cancel: CancellationToken,
) -> Result<Report, RunError> {
    let task =
        tokio_util::task::AbortOnDropHandle::new(tokio::spawn(run(client, steps, config, cancel)));
    match task.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Aborted only by dropping `task`, which cannot happen here; a
        // runtime shutting down cancels it.
        Err(_) => Err(RunError::Cancelled {
            report: Box::default(),
        }),
    }
}

async fn run(
    client: Client,
    steps: Arc<[Arc<StepSpec>]>,
    config: RunConfig,
    cancel: CancellationToken,
) -> Result<Report, RunError> {
    let started = Instant::now();
    if let Err(error) = plan::validate(&steps) {
        return Err(RunError::Plan {
            error,
            report: Box::default(),
        });
    }
    let n = steps.len();
    let level = plan::levels(&steps);
    let groups = plan::level_groups(&level);
    let emitter = Emitter {
        observers: config.observers.clone().into(),
        verbose: config.verbose,
    };
    if emitter.enabled() {
        emitter.emit(Event::PlanStarted {
            steps: n,
            levels: groups
                .iter()
                .enumerate()
                .map(|(index, g)| LevelSummary {
                    index,
                    steps: g.iter().map(|&i| steps[i].name.clone()).collect(),
                    parallel: g.len() > 1,
                })
                .collect(),
            check: config.check,
        });
    }
    let deps = plan::DependencyQueue::new(&steps);
    let mut sched = Scheduler {
        ready: deps.roots().collect(),
        deps,
        outcome: vec![None; n],
        failure_chain: vec![false; n],
        level_started: vec![false; groups.len()],
        level_left: groups.iter().map(Vec::len).collect(),
        level_changed: vec![0; groups.len()],
        level_steps: groups,
        level,
        results: Results::new(),
        emitter: emitter.clone(),
        stop: None,
        steps: steps.clone(),
    };

    let mut tasks: JoinSet<(usize, StepResult)> = JoinSet::new();
    let mut inline: FuturesUnordered<BoxFuture<'static, (usize, StepResult)>> =
        FuturesUnordered::new();
    let mut running = 0usize;
    loop {
        while running < config.max_in_flight && sched.stop.is_none() && !cancel.is_cancelled() {
            let Some(i) = sched.ready.pop_front() else {
                break;
            };
            match sched.decide(i) {
                Verdict::Run if let Some(entry) = from_journal(&config, &steps[i]) => {
                    sched.touch_level(i);
                    let result = StepResult {
                        level: sched.level[i],
                        from_journal: true,
                        ..entry.result.clone()
                    };
                    complete(&mut sched, &emitter, config.journal.as_deref(), i, result);
                }
                Verdict::Run => {
                    sched.touch_level(i);
                    let spec = steps[i].clone();
                    let lvl = sched.level[i];
                    if emitter.enabled() {
                        emitter.emit(Event::StepStarted {
                            step: spec.name.clone(),
                            level: lvl,
                            detail: spec.kind.detail(),
                        });
                    }
                    let custom = matches!(spec.kind, plan::StepKind::Func(_));
                    // What a custom step prints comes after the lines drawn
                    // so far: those up to here are written before its code
                    // runs (by the step's task, not here).
                    let drawn = (custom && emitter.enabled()).then(|| emitter.marks());
                    let ctx = attempt::StepRun {
                        client: client.clone(),
                        results: sched.results.clone(),
                        emitter: emitter.clone(),
                        cancel: cancel.clone(),
                        level: lvl,
                        job_deadline: config.job_deadline,
                        steps: steps.clone(),
                        resume: hosts_to_resume(&config, &spec),
                        drawn,
                    };
                    // Job and built-in steps wait on the controller: they
                    // are polled here, without a task hop of their own per
                    // step; custom code gets a task, so that slow code in
                    // one step does not hold up the others.
                    let work = async move {
                        let name = spec.name.clone();
                        let began = Instant::now();
                        let result = CatchPanic(Box::pin(ctx.run(spec))).await;
                        let result = result.unwrap_or_else(|panic| {
                            failed_result(
                                name,
                                lvl,
                                began.elapsed(),
                                format!("step panicked: {panic}"),
                            )
                        });
                        (i, result)
                    };
                    if custom {
                        tasks.spawn(work);
                    } else {
                        inline.push(work.boxed());
                    }
                    running += 1;
                }
                Verdict::Skip(reason) => sched.skip(i, reason, false),
                Verdict::DependencyFailed(reason) => sched.skip(i, reason, true),
                Verdict::Error(message) => {
                    sched.touch_level(i);
                    let result = failed_result(
                        steps[i].name.clone(),
                        sched.level[i],
                        Duration::ZERO,
                        message,
                    );
                    complete(&mut sched, &emitter, config.journal.as_deref(), i, result);
                }
            }
        }
        if running == 0 {
            break;
        }
        tokio::select! {
            Some((i, result)) = inline.next(), if !inline.is_empty() => {
                running -= 1;
                complete(&mut sched, &emitter, config.journal.as_deref(), i, result);
            }
            joined = tasks.join_next(), if !tasks.is_empty() => match joined {
                Some(Ok((i, result))) => {
                    running -= 1;
                    complete(&mut sched, &emitter, config.journal.as_deref(), i, result);
                }
                // Panics are caught inside the task; a join error means the
                // runtime is shutting down.
                Some(Err(_)) | None => break,
            },
            _ = cancel.cancelled(), if !cancel.is_cancelled() => {}
        }
        // Custom steps that are done already are taken together, so that
        // the steps they make ready start in one pass.
        while let Some(joined) = tasks.try_join_next() {
            let Ok((i, result)) = joined else {
                // The runtime is shutting down.
                break;
            };
            running -= 1;
            complete(&mut sched, &emitter, config.journal.as_deref(), i, result);
        }
    }

    // Everything that never started.
    let reason = match (&sched.stop, cancel.is_cancelled()) {
        (_, true) => "not run: the run was cancelled".to_string(),
        (Some((step, _)), false) => format!("not run: step {step:?} failed and stopped the plan"),
        (None, false) => "not run".to_string(),
    };
    for i in plan::topological_order(&steps) {
        if sched.outcome[i].is_none() {
            match steps[i].deps.iter().find(|&&d| sched.failure_chain[d]) {
                Some(&d) if steps[i].guards.is_empty() && !cancel.is_cancelled() => {
                    let why = format!("dependency failed: {}", steps[d].name);
                    sched.skip(i, why, true);
                }
                _ => sched.skip(i, reason.clone(), false),
            }
        }
    }

    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (sched.level[i], i));
    let report = Report {
        steps: order
            .into_iter()
            .filter_map(|i| sched.outcome[i].as_deref().cloned())
            .collect(),
        duration: started.elapsed(),
    };
    let success = sched.stop.is_none() && !cancel.is_cancelled();
    if emitter.enabled() {
        emitter.emit(Event::PlanFinished {
            summary: report.summary(),
            duration_ms: report.duration.as_millis() as u64,
            duration: osapi_api::format::go_duration(report.duration),
            success,
        });
    }
    if cancel.is_cancelled() {
        return Err(RunError::Cancelled {
            report: Box::new(report),
        });
    }
    if let Some((step, error)) = sched.stop {
        return Err(RunError::StepFailed {
            step,
            error,
            report: Box::new(report),
        });
    }
    Ok(report)
}

fn failed_result(name: String, level: usize, duration: Duration, error: String) -> StepResult {
    StepResult {
        name,
        status: StepStatus::Failed,
        changed: false,
        error: Some(error),
        skip_reason: None,
        data: Value::Null,
        hosts: Vec::new(),
        job_id: None,
        duration,
        attempts: 1,
        level,
        from_journal: false,
    }
}

pub(crate) fn host_event(h: &HostResult, verbose: bool) -> HostEvent {
    HostEvent {
        hostname: h.hostname.clone(),
        status: h.status,
        changed: h.changed,
        error: h.error.clone(),
        note: h
            .data
            .get("skipped")
            .and_then(Value::as_str)
            .map(str::to_string),
        data: (verbose && !h.data.is_null()).then(|| h.data.clone()),
    }
}

/// The journal entry a resumed run takes instead of running the step: the
/// step's last one, when it succeeded and the step still does the same.
fn from_journal<'a>(config: &'a RunConfig, spec: &StepSpec) -> Option<&'a crate::journal::Entry> {
    config
        .resume
        .as_ref()?
        .get(&spec.name)
        .filter(|e| e.succeeded() && e.fingerprint == crate::journal::fingerprint(spec))
}

/// For a `resume_hosts` step whose journal entry (same fingerprint) did
/// not succeed on every host: the hosts to run again and the results of
/// those that succeeded.
fn hosts_to_resume(config: &RunConfig, spec: &StepSpec) -> Option<(Vec<String>, Vec<HostResult>)> {
    if !spec.resume_hosts {
        return None;
    }
    let entry = config
        .resume
        .as_ref()?
        .get(&spec.name)
        .filter(|e| e.fingerprint == crate::journal::fingerprint(spec))?;
    let (kept, again): (Vec<&HostResult>, Vec<&HostResult>) = entry
        .result
        .hosts
        .iter()
        .partition(|h| matches!(h.status, HostStatus::Ok | HostStatus::Changed));
    if kept.is_empty() || again.is_empty() {
        // Nothing to keep (run it all again) or nothing left to run.
        return None;
    }
    Some((
        again.iter().map(|h| h.hostname.clone()).collect(),
        kept.into_iter().cloned().collect(),
    ))
}

/// A step is done: its event, its journal line, and its dependents.
fn complete(
    sched: &mut Scheduler,
    emitter: &Emitter,
    journal: Option<&crate::journal::Writer>,
    i: usize,
    result: StepResult,
) {
    emit_finished(emitter, &result);
    if let Some(journal) = journal {
        journal.record(&sched.steps[i], &result);
    }
    sched.finish(i, result);
}

fn emit_finished(emitter: &Emitter, r: &StepResult) {
    if !emitter.enabled() {
        return;
    }
    let verbose = emitter.verbose;
    emitter.emit(Event::StepFinished {
        step: r.name.clone(),
        level: r.level,
        status: r.status,
        changed: r.changed,
        duration_ms: r.duration.as_millis() as u64,
        attempts: r.attempts,
        job_id: r.job_id.map(|id| id.to_string()),
        error: r.error.clone(),
        // Per-host data is shown under each host line when several hosts answered.
        hosts: r
            .hosts
            .iter()
            .map(|h| host_event(h, verbose && r.hosts.len() > 1))
            .collect(),
        data: (verbose && !r.data.is_null()).then(|| r.data.clone()),
        from_journal: r.from_journal,
    });
}
