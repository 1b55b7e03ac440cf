//! Running one job: read the record, announce it, resolve fact references,
//! call the provider within the job's deadline, write the response.

use std::time::Instant;

use osapi_api::ops::{JobClass, Operation};
use osapi_api::records::{AgentResponse, EventKind, JobEvent, JobRecord, ResponseStatus};
use osapi_bus::{Delivery, Route};
use serde_json::json;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::factref;
use crate::freshness::Ticket;
use crate::metrics;
use crate::providers;
use crate::runtime::Shared;

/// Runs a delivered job and records the outcome, in a span that puts the
/// job's id, operation, target and host on every log line about it. Never
/// panics on bad job data: every problem becomes a failed response.
pub(crate) async fn run(shared: &Shared, delivery: Delivery, ticket: Ticket) {
    let id = delivery.job_id;
    let stored = match delivery.record {
        Some(r) => Ok(Some(r)),
        None => shared.bus.jobs.record(id).await,
    };
    let record = match stored {
        Ok(Some(r)) => r,
        Ok(None) => {
            tracing::info!(job_id = %id, "job no longer exists; skipping");
            return;
        }
        Err(e) => {
            tracing::warn!(job_id = %id, error = %e, "cannot read job");
            return;
        }
    };
    // Nothing in the record is acted on before it is admitted (its trace
    // parent included: the field is not signed).
    let admitted = shared.admission.admit(&record, delivery.stream_sequence);
    let span = tracing::info_span!(
        "job",
        job_id = %id,
        host = %shared.hostname,
        operation = record.op_type.as_str(),
        target = record.target.as_str(),
    );
    // Before the span is first entered: its parent is fixed from then on.
    if let (Ok(()), Some(adopt), Some(parent)) = (
        &admitted,
        shared.config.trace_adopt,
        record.trace_parent.as_deref(),
    ) {
        adopt(&span, parent);
    }
    let arrival = Arrival {
        redelivered: delivery.redelivered,
        sequence: delivery.stream_sequence,
        ticket,
    };
    run_in(shared, id, delivery.route, admitted, arrival, record)
        .instrument(span)
        .await;
}

/// How a job's message came: delivered before or not, its place in the
/// bus's stream, and what the agent knew of its queue then.
struct Arrival {
    redelivered: bool,
    sequence: Option<u64>,
    ticket: Ticket,
}

async fn run_in(
    shared: &Shared,
    id: uuid::Uuid,
    route: Route,
    admitted: Result<(), (metrics::Refusal, String)>,
    arrival: Arrival,
    record: std::sync::Arc<JobRecord>,
) {
    let op = record.op_type.parse::<Operation>().ok();
    let label = metrics::operation_label(op);
    let began = Instant::now();
    let slot = slot_of(shared, &route);
    if let Err((why, reason)) = admitted {
        if why == metrics::Refusal::Replay {
            if arrival.redelivered && shared.admission.same_message(&id, arrival.sequence) {
                // The very message this agent took, delivered again (its
                // acknowledgement was lost): the job ran or runs here once.
                tracing::info!(job_id = %id, "dropping a second delivery of a job already taken");
                shared.metrics.job_outcome(label, "duplicate");
                return;
            }
            if shared.is_running(&id) {
                // A replay of a job running here: refused and counted, but
                // its answer is the running job's to give.
                tracing::warn!(job_id = %id, %reason, "refusing a job (it runs here already)");
                shared.metrics.job_refused(label, why);
                return;
            }
        }
        tracing::warn!(job_id = %id, %reason, "refusing a job");
        shared.metrics.job_refused(label, why);
        fail_unstarted(shared, id, slot, reason).await;
        return;
    }
    let category = record
        .op_type
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string();
    let route = match &route {
        Route::Any => "_any".to_string(),
        Route::Host(h) => h.clone(),
    };
    let ack = JobEvent::now(id, EventKind::Acknowledged, &shared.hostname)
        .with_instance(shared.instance_id)
        .with_data(json!({"route": route, "category": category, "operation": record.op_type}));

    let started = JobEvent::now(id, EventKind::Started, &shared.hostname)
        .with_instance(shared.instance_id)
        .with_data(json!({"agent_version": shared.config.version, "pid": std::process::id()}));
    // Events not yet written: a job that ends quickly is recorded with a
    // single write (taken, started, ended); a longer one announces itself
    // after `ANNOUNCE_AFTER`.
    let mut leading = vec![ack, started];
    // Set when the job was interrupted rather than ended: its outcome label.
    let mut interrupted: Option<&'static str> = None;
    let outcome = if OffsetDateTime::now_utc() >= record.deadline {
        leading.truncate(1);
        Err("job deadline passed before the agent could start it".to_string())
    } else {
        // Skipped when the controller already settled our part (cancelled,
        // lost, or expired while queued): running it now would do work
        // nobody waits for. A cancellation that came first says so here.
        let Some(cancelled) = shared.track(id) else {
            tracing::info!(job_id = %id, "job cancelled before it started; skipping");
            shared.metrics.job_outcome(label, "skipped");
            return;
        };
        // Otherwise the slot is read, unless nothing could have settled it
        // unseen (see `freshness`). A query changes nothing on the host, so
        // it is not worth a round trip: if settled, its answer is refused
        // when written.
        let query = op.is_some_and(|op| op.class() == JobClass::Query);
        let read = !query
            && !shared.freshness.may_skip_read(
                arrival.ticket,
                arrival.redelivered,
                record.deadline,
                shared.bus.queue.connects(),
            );
        if read {
            match shared.bus.jobs.slot_settled(id, slot).await {
                Ok(true) => {
                    shared.untrack(id);
                    tracing::info!(job_id = %id, "job already settled for this host; skipping");
                    shared.metrics.job_outcome(label, "skipped");
                    return;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(job_id = %id, error = %e, "cannot read job progress"),
            }
        }
        let announced = std::sync::atomic::AtomicBool::new(false);
        let announce = async {
            tokio::time::sleep(ANNOUNCE_AFTER).await;
            match shared
                .bus
                .jobs
                .append(id, slot, leading.clone(), None)
                .await
            {
                Ok(true) => announced.store(true, std::sync::atomic::Ordering::Relaxed),
                // Settled meanwhile (a cancellation that found no one running).
                Ok(false) => {
                    announced.store(true, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
                Err(e) => tracing::warn!(job_id = %id, error = %e, "failed to record job progress"),
            }
            std::future::pending::<()>().await
        };
        let running = shared.metrics.job_running();
        let outcome = tokio::select! {
            // A job stopped before it began (the agent's grace period over)
            // never starts its operation.
            biased;
            // Dropping the operation kills a command's process group.
            () = stopped(shared, id, slot, &cancelled) => {
                if shared.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    interrupted = Some("stopped");
                    Err("the agent stopped before the job finished (shutdown grace period over)".to_string())
                } else {
                    interrupted = Some("cancelled");
                    Err("job cancelled".to_string())
                }
            }
            out = execute(shared, &record, op) => out,
            () = announce => {
                interrupted = Some("cancelled");
                Err("job cancelled".to_string())
            }
        };
        drop(running);
        shared.untrack(id);
        if announced.load(std::sync::atomic::Ordering::Relaxed) {
            leading.clear();
        }
        outcome
    };
    let elapsed = began.elapsed();
    let duration_ms = elapsed.as_millis() as u64;
    let result = match &outcome {
        Ok(_) => "completed",
        Err(_) => interrupted.unwrap_or("failed"),
    };
    shared
        .metrics
        .job_done(label, result, elapsed.as_secs_f64());
    tracing::info!(job_id = %id, outcome = result, duration_ms, "job finished");

    let (response, event) = match outcome {
        Ok(out) => (
            AgentResponse {
                job_id: id,
                hostname: shared.hostname.clone(),
                status: ResponseStatus::Completed,
                data: Some(out.data),
                changed: out.changed,
                error: None,
                timestamp: OffsetDateTime::now_utc(),
                data_parts: None,
            },
            JobEvent::now(id, EventKind::Completed, &shared.hostname)
                .with_instance(shared.instance_id)
                .with_data(json!({"duration_ms": duration_ms})),
        ),
        Err(error) => (
            AgentResponse {
                job_id: id,
                hostname: shared.hostname.clone(),
                status: ResponseStatus::Failed,
                data: None,
                changed: false,
                error: Some(error.clone()),
                timestamp: OffsetDateTime::now_utc(),
                data_parts: None,
            },
            JobEvent::now(id, EventKind::Failed, &shared.hostname)
                .with_instance(shared.instance_id)
                .with_error(error)
                .with_data(json!({"duration_ms": duration_ms})),
        ),
    };
    leading.push(event);
    write(shared, id, slot, leading, Some(response)).await;
}

/// Where this agent writes its answer to a job from `route`: the `_any`
/// slot, or its own hostname's.
fn slot_of<'a>(shared: &'a Shared, route: &Route) -> &'a str {
    match route {
        Route::Any => "_any",
        Route::Host(_) => shared.hostname.as_str(),
    }
}

/// Reports a job this agent took but will not run: failed, with
/// `reason`, and nothing started.
async fn fail_unstarted(shared: &Shared, id: uuid::Uuid, slot: &str, reason: String) {
    let event = JobEvent::now(id, EventKind::Failed, &shared.hostname)
        .with_instance(shared.instance_id)
        .with_error(reason.clone());
    let response = AgentResponse {
        job_id: id,
        hostname: shared.hostname.clone(),
        status: ResponseStatus::Failed,
        data: None,
        changed: false,
        error: Some(reason),
        timestamp: OffsetDateTime::now_utc(),
        data_parts: None,
    };
    write(shared, id, slot, vec![event], Some(response)).await;
}

/// Hands back a job taken from this agent's own queue that was still
/// waiting for a free slot when the agent began to stop: it is reported
/// failed at once (nothing of it ran), rather than left for its deadline
/// to read "did not answer". Taking it acknowledged it on the bus, so it
/// cannot go back to the queue.
pub(crate) async fn hand_back(shared: &Shared, delivery: Delivery) {
    let id = delivery.job_id;
    let slot = slot_of(shared, &delivery.route);
    let label = metrics::operation_label(
        delivery
            .record
            .as_ref()
            .and_then(|r| r.op_type.parse::<Operation>().ok()),
    );
    if shared.admission.taken(&id) || shared.is_running(&id) {
        // A copy of a job this agent took: its answer is that job's.
        tracing::info!(job_id = %id, "agent stopping: dropping a copy of a job already taken");
        return;
    }
    tracing::warn!(job_id = %id, "agent stopping: handing back a job that never started");
    shared.metrics.job_outcome(label, "stopped");
    fail_unstarted(
        shared,
        id,
        slot,
        "the agent stopped before it could start the job (nothing ran); submit it again"
            .to_string(),
    )
    .await;
}

/// How long a job runs before its start is recorded; quicker jobs are
/// recorded once, when they end.
const ANNOUNCE_AFTER: std::time::Duration = std::time::Duration::from_millis(250);

/// How often a running job checks its slot for a cancellation it may have
/// missed (the signal is not stored).
const CANCEL_CHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves when the job is cancelled: the signal arrives, or the job's slot
/// turns out settled by someone else (the controller cancelling it).
async fn stopped(shared: &Shared, id: uuid::Uuid, slot: &str, cancelled: &CancellationToken) {
    loop {
        tokio::select! {
            () = cancelled.cancelled() => return,
            () = tokio::time::sleep(CANCEL_CHECK) => {
                if shared.bus.jobs.slot_settled(id, slot).await.unwrap_or(false) {
                    return;
                }
            }
        }
    }
}

async fn write(
    shared: &Shared,
    id: uuid::Uuid,
    slot: &str,
    events: Vec<JobEvent>,
    response: Option<AgentResponse>,
) {
    if let Err(e) = shared
        .bus
        .jobs
        .append(id, slot, events, response)
        .await
        .map(|_| ())
    {
        tracing::warn!(job_id = %id, error = %e, "failed to record job progress");
    }
}

async fn execute(
    shared: &Shared,
    record: &JobRecord,
    op: Option<Operation>,
) -> Result<providers::ProviderOutput, String> {
    let op = op.ok_or_else(|| unsupported(&record.op_type))?;
    let mut data = record.data();
    let facts = shared.facts();
    factref::resolve(&mut data, facts.as_deref(), &shared.hostname)?;
    let ctx = shared.provider_context();
    let remaining = (record.deadline - OffsetDateTime::now_utc())
        .try_into()
        .unwrap_or_default();
    match tokio::time::timeout(remaining, providers::execute(op, data, &ctx)).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(_) => Err("job deadline exceeded while the operation was running".to_string()),
    }
}

/// Upstream's wording for operations the agent does not implement.
fn unsupported(op_type: &str) -> String {
    const CATEGORIES: [&str; 4] = ["node", "network", "command", "file"];
    let mut parts = op_type.splitn(2, '.');
    let category = parts.next().unwrap_or_default();
    let rest = parts.next().unwrap_or_default();
    if CATEGORIES.contains(&category) {
        let op = rest.split('.').next().unwrap_or_default();
        format!("unsupported {category} operation: {op}")
    } else {
        format!("unsupported job category: {category}")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn unsupported_wording() {
        assert_eq!(
            super::unsupported("foo.bar.get"),
            "unsupported job category: foo"
        );
        assert_eq!(
            super::unsupported("node.reboot.execute"),
            "unsupported node operation: reboot"
        );
    }
}
