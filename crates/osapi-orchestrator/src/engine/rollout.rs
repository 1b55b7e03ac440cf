//! Running a rolling step: its hosts (the agents its target matches, by
//! hostname; on a resumed run of a `resume_hosts` step, those that did not
//! succeed before) go in batches; a batch is one job targeted at exactly
//! its hosts (`web-01,web-02`), and after each batch the failure budget and
//! the gate decide whether the next one starts. Hosts never reached are
//! reported `skipped` with the reason.
//!
//! Each host gets a job of its own instead when `max_parallel_hosts` limits
//! how many run at once, and for the rest of the run once the controller
//! refused a host list (upstream's takes only one host, `_all` or a label).

use std::time::Duration;

use futures::StreamExt;
use osapi_api::ops::Operation;
use osapi_api::target::Target;
use serde_json::Value;

use super::attempt::{Outcome, Progress, StepRun, expected_hosts, job};
use crate::events::Event;
use crate::plan::{FailBudget, Gate, HostTolerance, RolloutSpec, StepSpec};
use crate::results::{HostResult, HostStatus};

/// Runs `spec` (a job step with a rollout) through its hosts.
pub(super) async fn run(
    ctx: &StepRun,
    spec: &StepSpec,
    (op, target, data): (Operation, &str, &Value),
    wait: Duration,
) -> Outcome {
    let at_once = RolloutSpec::default();
    let rollout = spec.rollout.as_ref().unwrap_or(&at_once);
    let hosts = match (&ctx.resume, Target::parse(target)) {
        (Some((again, _)), _) => again.clone(),
        (None, Ok(t)) => match expected_hosts(&ctx.client, &t).await {
            Some(mut hosts) => {
                hosts.sort();
                hosts
            }
            None => return Outcome::fail(format!("cannot list the agents of {target}")),
        },
        (None, Err(e)) => return Outcome::fail(e.to_string()),
    };
    if hosts.is_empty() {
        return Outcome::fail(format!("no agent matches {target}"));
    }
    let total = hosts.len();
    let sizes = match &rollout.batches {
        Some(b) => b.plan(total),
        None => vec![total],
    };
    let batches = sizes.len();
    let budget = rollout.max_failed.unwrap_or(match spec.tolerance {
        HostTolerance::None => FailBudget::Count(0),
        HostTolerance::Count(n) => FailBudget::Count(n),
        HostTolerance::Percent(p) => FailBudget::Percent(p),
    });
    let watched = ctx.emitter.enabled();

    let lists_refused = std::sync::atomic::AtomicBool::new(false);
    let mut done: Vec<HostResult> = Vec::with_capacity(total);
    let mut next = 0;
    let mut stopped: Option<String> = None;
    for (b, size) in sizes.iter().enumerate() {
        let batch = &hosts[next..next + size];
        next += size;
        if watched {
            ctx.emitter.emit(Event::BatchStarted {
                step: spec.name.clone(),
                batch: b + 1,
                batches,
                hosts: batch.to_vec(),
                total_hosts: total,
            });
        }
        let results = run_batch(ctx, spec, rollout, (op, data), batch, wait, &lists_refused).await;
        let failed_here = results.iter().filter(|h| h.failed()).count();
        done.extend(results);
        let failed = done.iter().filter(|h| h.failed()).count();
        let mut gate_verdict = None;
        let why = if ctx.cancel.is_cancelled() {
            Some("the run was cancelled".to_string())
        } else if !budget.allows(failed, total) {
            Some(format!("{failed} of {total} hosts failed"))
        } else {
            match check_gate(ctx, rollout, &done[done.len() - size..]).await {
                None => None,
                Some(Ok(())) => {
                    gate_verdict = Some("passed".to_string());
                    None
                }
                Some(Err(reason)) => {
                    gate_verdict = Some(reason.clone());
                    Some(format!("gate failed: {reason}"))
                }
            }
        };
        let stop_here =
            why.map(|w| format!("rollout stopped after batch {} of {batches}: {w}", b + 1));
        if watched {
            ctx.emitter.emit(Event::BatchFinished {
                step: spec.name.clone(),
                batch: b + 1,
                batches,
                failed: failed_here,
                gate: gate_verdict,
                stopped: stop_here.clone(),
            });
        }
        if stop_here.is_some() {
            stopped = stop_here;
            break;
        }
        if b + 1 < batches && !rollout.pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(rollout.pause) => {}
                _ = ctx.cancel.cancelled() => {}
            }
        }
    }
    // Hosts the rollout never reached.
    if let Some(reason) = &stopped {
        for host in &hosts[next..] {
            done.push(HostResult {
                hostname: host.clone(),
                status: HostStatus::Skipped,
                changed: false,
                error: Some(reason.clone()),
                data: Value::Null,
                job_id: None,
            });
        }
    }
    let changed = done.iter().any(|h| h.changed);
    let failed: Vec<&HostResult> = done.iter().filter(|h| h.failed()).collect();
    let error = match (&stopped, failed.is_empty()) {
        (Some(reason), _) => Some(reason.clone()),
        (None, true) => None,
        (None, false) => {
            let detail: Vec<String> = failed
                .iter()
                .map(|h| format!("{}: {}", h.hostname, h.error.as_deref().unwrap_or("failed")))
                .collect();
            Some(format!(
                "{} of {total} hosts failed: {}",
                failed.len(),
                detail.join("; ")
            ))
        }
    };
    // Within the budget and every host reached: the step succeeded.
    let ok = stopped.is_none();
    Outcome {
        ok,
        error: if ok { None } else { error },
        changed,
        data: Value::Null,
        hosts: done,
        job_id: None,
    }
}

/// The hosts in `batch` from `outcome`; a host it does not name failed
/// with the outcome's error.
fn batch_hosts(outcome: Outcome, batch: &[String]) -> Vec<HostResult> {
    let mut results: Vec<HostResult> = batch
        .iter()
        .map(
            |host| match outcome.hosts.iter().find(|h| &h.hostname == host) {
                Some(h) => h.clone(),
                // The job failed before the host answered (not created,
                // cancelled, the wait ended).
                None => HostResult {
                    hostname: host.clone(),
                    status: HostStatus::Failed,
                    changed: false,
                    error: outcome.error.clone().or_else(|| Some("no answer".into())),
                    data: Value::Null,
                    job_id: outcome.job_id,
                },
            },
        )
        .collect();
    results.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    results
}

/// Runs a batch: one job for all its hosts, or (with `max_parallel`, or
/// once the controller refused a host list) one job per host, at most
/// `max_parallel` at once. The batch's hosts' results, in hostname order.
async fn run_batch(
    ctx: &StepRun,
    spec: &StepSpec,
    rollout: &RolloutSpec,
    (op, data): (Operation, &Value),
    batch: &[String],
    wait: Duration,
    lists_refused: &std::sync::atomic::AtomicBool,
) -> Vec<HostResult> {
    use std::sync::atomic::Ordering;
    // One job for `target`, its hosts counted as the step's.
    let run = |target: String| async move {
        let progress = Progress::part(&ctx.emitter, &spec.name);
        job(
            &ctx.client,
            op,
            &target,
            data,
            (spec.timeout, wait),
            HostTolerance::None,
            &spec.command_rules,
            &ctx.cancel,
            &progress,
        )
        .await
    };
    let one_job = rollout.max_parallel.is_none() && !lists_refused.load(Ordering::Relaxed);
    if one_job {
        let outcome = run(batch.join(",")).await;
        if outcome.job_id.is_some() || batch.len() == 1 {
            return batch_hosts(outcome, batch);
        }
        // Not created: a controller that takes no host list. One job per
        // host from here on.
        lists_refused.store(true, Ordering::Relaxed);
    }
    let limit = rollout.max_parallel.unwrap_or(batch.len()).max(1);
    let mut results: Vec<HostResult> = futures::stream::iter(batch.iter().cloned())
        .map(|host: String| async move {
            let outcome = run(host.clone()).await;
            batch_hosts(outcome, std::slice::from_ref(&host))
        })
        .buffer_unordered(limit)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .flatten()
        .collect();
    results.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    results
}

/// The gate's verdict on a batch: `None` without a gate.
async fn check_gate(
    ctx: &StepRun,
    rollout: &RolloutSpec,
    batch: &[HostResult],
) -> Option<Result<(), String>> {
    match rollout.gate.as_ref()? {
        Gate::With(check) => Some(
            crate::panics::catch(|| check(batch))
                .map_err(|panic| format!("the gate panicked: {panic}"))
                .and_then(|verdict| verdict),
        ),
        Gate::Step(i) => {
            let Some(gate) = ctx.steps.get(*i).cloned() else {
                return Some(Err("the gate step is not in this plan".into()));
            };
            let outcome = Box::pin(ctx.attempt(&gate, 1)).await;
            Some(if outcome.ok {
                Ok(())
            } else {
                Err(format!(
                    "{}: {}",
                    gate.name,
                    outcome.error.unwrap_or_else(|| "failed".into())
                ))
            })
        }
    }
}
