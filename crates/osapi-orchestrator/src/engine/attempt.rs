//! Running one step: attempts with retries and back-off, per-attempt
//! timeouts, cancellation; job steps (create, long-poll, per-host outcomes)
//! and function steps (built-in REST calls and custom tasks).

use std::time::{Duration, Instant};

use osapi_api::job::{CreateJobRequest, JobDetail, JobStatus};
use osapi_api::ops::Operation;
use osapi_api::target::Target;
use osapi_client::{Client, ClientError};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Emitter;
use crate::events::Event;
use crate::plan::TaskContext;
use crate::plan::{Builtin, HostTolerance, StepKind, StepSpec};
use crate::results::{HostResult, HostStatus, Results, StepResult, StepStatus};
use crate::types::{FileChangedResult, FileUploadResult};

/// How long a job step waits when it has no timeout of its own: the
/// controller ends every job at its deadline, so this is only a backstop.
const NO_TIMEOUT_WAIT: Duration = Duration::from_secs(24 * 3600);

/// What one attempt produced. Failed attempts keep their data and hosts.
struct Outcome {
    ok: bool,
    error: Option<String>,
    changed: bool,
    data: Value,
    hosts: Vec<HostResult>,
    job_id: Option<Uuid>,
}

impl Outcome {
    fn fail(error: impl Into<String>) -> Self {
        Outcome {
            ok: false,
            error: Some(error.into()),
            changed: false,
            data: Value::Null,
            hosts: Vec::new(),
            job_id: None,
        }
    }

    fn done(changed: bool, data: Value) -> Self {
        Outcome {
            ok: true,
            error: None,
            changed,
            data,
            hosts: Vec::new(),
            job_id: None,
        }
    }
}

/// Everything a running step needs.
pub(crate) struct StepRun {
    pub client: Client,
    pub results: Results,
    pub emitter: Emitter,
    pub cancel: CancellationToken,
    pub level: usize,
}

impl StepRun {
    pub async fn run(self, spec: std::sync::Arc<StepSpec>) -> StepResult {
        let began = Instant::now();
        let attempts = spec.retry.attempts();
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let outcome = self.attempt(&spec, attempt).await;
            if outcome.ok || attempt >= attempts || self.cancel.is_cancelled() {
                break outcome;
            }
            let delay = spec.retry.delay(attempt);
            self.emitter.emit(Event::StepRetrying {
                step: spec.name.clone(),
                attempt,
                error: outcome.error.clone().unwrap_or_default(),
                delay_ms: delay.as_millis() as u64,
            });
            if !delay.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = self.cancel.cancelled() => break outcome,
                }
            }
        };
        let status = match (outcome.ok, outcome.changed) {
            (false, _) => StepStatus::Failed,
            (true, true) => StepStatus::Changed,
            (true, false) => StepStatus::Unchanged,
        };
        StepResult {
            name: spec.name.clone(),
            status,
            changed: outcome.changed,
            error: outcome.error,
            skip_reason: None,
            data: outcome.data,
            hosts: outcome.hosts,
            job_id: outcome.job_id,
            duration: began.elapsed(),
            attempts: attempt,
            level: self.level,
        }
    }

    async fn attempt(&self, spec: &StepSpec, attempt: u32) -> Outcome {
        let work = async {
            match &spec.kind {
                StepKind::Job { op, target, data } => {
                    job(
                        &self.client,
                        *op,
                        target,
                        data,
                        spec.timeout,
                        spec.tolerance,
                        &self.cancel,
                    )
                    .await
                }
                StepKind::Builtin(b) => builtin(&self.client, b).await,
                StepKind::Func(f) => {
                    let ctx = TaskContext {
                        client: self.client.clone(),
                        step: spec.name.clone(),
                        attempt,
                        cancel: self.cancel.clone(),
                    };
                    // What the step prints comes after the lines drawn so far.
                    self.emitter.flush();
                    match f(ctx, self.results.clone()).await {
                        Ok(out) => Outcome::done(out.changed, out.data),
                        Err(e) => Outcome::fail(e.0),
                    }
                }
            }
        };
        let limited = async {
            match spec.timeout {
                Some(limit) => match tokio::time::timeout(limit, work).await {
                    Ok(o) => o,
                    Err(_) => Outcome::fail(format!(
                        "timed out after {}",
                        osapi_api::format::go_duration(limit)
                    )),
                },
                None => work.await,
            }
        };
        // A job step handles cancellation itself (it cancels its job on the
        // controller before it returns); other steps are stopped here.
        let job_step = matches!(spec.kind, StepKind::Job { .. });
        tokio::select! {
            o = limited => o,
            _ = self.cancel.cancelled(), if !job_step => Outcome::fail("cancelled"),
        }
    }
}

/// A job the step still waits for; dropped before it ends (the run was
/// cancelled, the step timed out), it cancels the job on the controller
/// (`DELETE /job/{id}`), so the hosts stop working on it too.
struct InFlight {
    client: Client,
    id: Option<uuid::Uuid>,
}

/// Longest the background cancellation of a job may take.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let client = self.client.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                match tokio::time::timeout(CANCEL_WAIT, client.delete_job(id)).await {
                    Ok(Ok(())) => tracing::debug!(job = %id, "cancelled a job nobody waits for"),
                    Ok(Err(e)) => tracing::warn!(job = %id, error = %e, "cannot cancel a job nobody waits for"),
                    Err(_) => tracing::warn!(job = %id, "cancelling a job timed out"),
                }
            });
        }
    }
}

async fn job(
    client: &Client,
    op: Operation,
    target: &str,
    data: &Value,
    timeout: Option<Duration>,
    tolerance: HostTolerance,
    cancel: &CancellationToken,
) -> Outcome {
    let mut req = CreateJobRequest::new(op.as_str(), data.clone(), target);
    if let Some(t) = timeout {
        req.timeout = Some(format!("{}ms", t.as_millis().max(1)));
    }
    let created = match client.create_job(&req).await {
        Ok(c) => c,
        Err(e) => return Outcome::fail(format!("create job: {e}")),
    };
    let id = created.job_id;
    // From here, a step that stops waiting (cancelled run, step timeout)
    // cancels the job on the controller, so the hosts stop too.
    let mut in_flight = InFlight {
        client: client.clone(),
        id: Some(id),
    };
    let wait = timeout
        .map(|t| t + Duration::from_secs(5))
        .unwrap_or(NO_TIMEOUT_WAIT);
    let detail = tokio::select! {
        d = client.wait_job(id, wait) => d,
        _ = cancel.cancelled() => {
            // Cancelled here and now, so the hosts stop before the run ends.
            in_flight.id = None;
            let cancelled = tokio::time::timeout(CANCEL_WAIT, client.delete_job(id)).await;
            let note = match cancelled {
                Ok(Ok(())) => "the job was cancelled on the controller".to_string(),
                Ok(Err(e)) => format!("cancelling the job failed: {e}"),
                Err(_) => "cancelling the job timed out".to_string(),
            };
            return Outcome { job_id: Some(id), ..Outcome::fail(format!("cancelled while waiting for job {id}; {note}")) };
        }
    };
    in_flight.id = None;
    let detail = match detail {
        Ok(d) => d,
        Err(e) => {
            return Outcome {
                job_id: Some(id),
                ..Outcome::fail(format!("job {id}: {e}"))
            };
        }
    };
    let broadcast = Target::parse(target).is_ok_and(|t| t.is_broadcast());
    let hosts = host_results(&detail, op, id);
    let failed: Vec<&HostResult> = hosts.iter().filter(|h| h.failed()).collect();
    let total = detail
        .expected_hosts
        .as_ref()
        .map(Vec::len)
        .unwrap_or(hosts.len())
        .max(hosts.len());
    let changed = hosts.iter().any(|h| h.changed);
    let data = match hosts.as_slice() {
        [one] if !broadcast || total == 1 => one.data.clone(),
        _ => Value::Null,
    };
    let status = detail.status();
    let error = if !status.is_terminal() && status != JobStatus::Unknown {
        Some(format!("job {id} still {status} when the wait ended"))
    } else if failed.is_empty() {
        None
    } else if !broadcast && failed.len() == hosts.len() {
        failed[0]
            .error
            .clone()
            .or_else(|| Some("job failed".into()))
    } else {
        let detail: Vec<String> = failed
            .iter()
            .map(|h| format!("{}: {}", h.hostname, h.error.as_deref().unwrap_or("failed")))
            .collect();
        Some(format!(
            "{} of {} hosts failed: {}",
            failed.len(),
            total,
            detail.join("; ")
        ))
    };
    let ok = match &error {
        None => true,
        Some(_) if !status.is_terminal() => false,
        Some(_) => tolerance.allows(failed.len(), total),
    };
    Outcome {
        ok,
        error: if ok { None } else { error },
        changed,
        data,
        hosts,
        job_id: Some(id),
    }
}

/// Per-host outcomes from a job, whichever way the server shaped it.
pub(crate) fn host_results(detail: &JobDetail, op: Operation, id: Uuid) -> Vec<HostResult> {
    let states = detail.agent_states.clone().unwrap_or_default();
    let lost = |h: &str| {
        states
            .get(h)
            .is_some_and(|s| matches!(s.status.as_str(), "lost" | "expired"))
    };
    let mut hosts: Vec<HostResult> = match &detail.responses {
        Some(responses) => responses
            .values()
            .map(|r| {
                host(
                    &r.hostname,
                    r.status == "completed",
                    r.data.clone(),
                    r.changed,
                    r.error.clone(),
                    lost(&r.hostname),
                    op,
                    id,
                )
            })
            .collect(),
        None => {
            let status = detail.status();
            if !status.is_terminal() {
                Vec::new()
            } else {
                let hostname = detail
                    .hostname
                    .clone()
                    .or_else(|| {
                        detail
                            .expected_hosts
                            .as_ref()
                            .and_then(|e| e.first().cloned())
                    })
                    .or_else(|| states.keys().next().cloned())
                    .unwrap_or_else(|| "unknown".to_string());
                let ok = status == JobStatus::Completed;
                let is_lost = lost(&hostname);
                vec![host(
                    &hostname,
                    ok,
                    detail.result.clone(),
                    detail.changed,
                    detail.error.clone(),
                    is_lost,
                    op,
                    id,
                )]
            }
        }
    };
    hosts.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    hosts
}

#[allow(clippy::too_many_arguments)]
fn host(
    hostname: &str,
    completed: bool,
    data: Option<Value>,
    changed: Option<bool>,
    error: Option<String>,
    lost: bool,
    op: Operation,
    id: Uuid,
) -> HostResult {
    let data = data.unwrap_or(Value::Null);
    let changed = changed
        .or_else(|| data.get("changed").and_then(Value::as_bool))
        .unwrap_or(false);
    let exit_code = data.get("exit_code").and_then(Value::as_i64).unwrap_or(0);
    let (status, error) = if lost {
        (
            HostStatus::Lost,
            error.or_else(|| Some("agent lost".into())),
        )
    } else if !completed {
        (HostStatus::Failed, error.or_else(|| Some("failed".into())))
    } else if op.is_command() && exit_code != 0 {
        (
            HostStatus::Failed,
            Some(format!("command exited with code {exit_code}")),
        )
    } else if changed {
        (HostStatus::Changed, None)
    } else {
        (HostStatus::Ok, None)
    };
    HostResult {
        hostname: hostname.to_string(),
        status,
        changed,
        error,
        data,
        job_id: Some(id),
    }
}

async fn builtin(client: &Client, b: &Builtin) -> Outcome {
    match b {
        Builtin::Health => match client.health().await {
            Ok(h) => Outcome::done(false, json!(h)),
            Err(e) => Outcome::fail(format!("health check: {e}")),
        },
        Builtin::AgentList => match client.agents().await {
            Ok(list) => Outcome::done(false, json!(list)),
            Err(e) => Outcome::fail(format!("list agents: {e}")),
        },
        Builtin::AgentGet { hostname } => match client.agent(hostname).await {
            Ok(agent) => Outcome::done(false, json!(agent)),
            Err(e) => Outcome::fail(format!("get agent {hostname}: {e}")),
        },
        Builtin::Changed { name, data } => match client.file_changed(name, data).await {
            Ok((changed, sha256)) => Outcome::done(
                changed,
                json!(FileChangedResult {
                    name: name.clone(),
                    changed,
                    sha256
                }),
            ),
            Err(e) => Outcome::fail(format!("check file {name}: {e}")),
        },
        Builtin::Upload {
            name,
            content_type,
            data,
            force,
        } => upload(client, name, *content_type, data, *force).await,
    }
}

async fn upload(
    client: &Client,
    name: &str,
    content_type: osapi_api::ops::ContentType,
    data: &bytes::Bytes,
    force: bool,
) -> Outcome {
    let local = hex::encode(Sha256::digest(data));
    if !force {
        match client.file(name).await {
            Ok(info) if info.sha256 == local => {
                return Outcome::done(
                    false,
                    json!(FileUploadResult {
                        name: name.to_string(),
                        sha256: local,
                        size: info.size,
                        changed: false,
                        content_type: content_type.as_str().to_string(),
                    }),
                );
            }
            Ok(info) => {
                return Outcome::fail(format!(
                    "upload file {name}: the store holds different content (sha256 {}…); call .force() on the step to replace it",
                    &info.sha256.get(..12).unwrap_or(&info.sha256)
                ));
            }
            Err(ClientError::NotFound { .. }) => {}
            Err(e) => return Outcome::fail(format!("upload file {name}: {e}")),
        }
    }
    match client
        .upload_file(name, content_type, data.clone(), force)
        .await
    {
        Ok(r) => Outcome::done(r.changed, json!(r)),
        Err(e) => Outcome::fail(format!("upload file {name}: {e}")),
    }
}
