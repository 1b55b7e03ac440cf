//! Running one step: attempts with retries and back-off, per-attempt
//! timeouts, cancellation; job steps (create, long-poll, per-host outcomes)
//! and function steps (built-in REST calls and custom tasks).

use std::time::{Duration, Instant};

use osapi_api::agent::AgentState;
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
use crate::plan::{Builtin, CommandRule, CommandRules, HostTolerance, StepKind, StepSpec};
use crate::results::{HostResult, HostStatus, Results, StepResult, StepStatus};
use crate::types::{CommandResult, FileChangedResult, FileUploadResult};

/// What a command may take beyond its own timeout before the library stops
/// waiting for it.
const COMMAND_GRACE: Duration = Duration::from_secs(30);

/// Pauses between checks for expected hosts that have not answered yet.
const MISSING_HOSTS_POLL: Duration = Duration::from_millis(250);

/// What one attempt produced. Failed attempts keep their data and hosts.
pub(super) struct Outcome {
    pub ok: bool,
    pub error: Option<String>,
    pub changed: bool,
    pub data: Value,
    pub hosts: Vec<HostResult>,
    pub job_id: Option<Uuid>,
}

impl Outcome {
    pub(super) fn fail(error: impl Into<String>) -> Self {
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
    /// How long a job step without a timeout waits ([`crate::OrchestratorBuilder::job_deadline`]).
    pub job_deadline: Duration,
    /// The plan's steps (a rolling step runs its gate step).
    pub steps: std::sync::Arc<[std::sync::Arc<StepSpec>]>,
    /// On a resumed run of a `resume_hosts` step: the hosts to run again,
    /// and the journal's results of the others.
    pub resume: Option<(Vec<String>, Vec<HostResult>)>,
    /// A custom step's: where the observers' output reached when it
    /// started (written before its code first runs).
    pub drawn: Option<super::Marks>,
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
        let mut outcome = outcome;
        if let Some((_, kept)) = &self.resume {
            // The hosts that succeeded before keep their recorded results.
            outcome.changed |= kept.iter().any(|h| h.changed);
            outcome.hosts.extend(kept.iter().cloned());
            outcome.hosts.sort_by(|a, b| a.hostname.cmp(&b.hostname));
        }
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
            from_journal: false,
        }
    }

    pub(super) async fn attempt(&self, spec: &StepSpec, attempt: u32) -> Outcome {
        let work = async {
            match &spec.kind {
                StepKind::Job { op, target, data }
                    if spec.rollout.is_some() || self.resume.is_some() =>
                {
                    let wait = job_wait(*op, data, spec.timeout, self.job_deadline);
                    super::rollout::run(self, spec, (*op, target, data), wait).await
                }
                StepKind::Job { op, target, data } => {
                    let wait = job_wait(*op, data, spec.timeout, self.job_deadline);
                    let progress = Progress::new(&self.emitter, &spec.name);
                    job(
                        &self.client,
                        *op,
                        target,
                        data,
                        (spec.timeout, wait),
                        spec.tolerance,
                        &spec.command_rules,
                        &self.cancel,
                        &progress,
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
                    // What the step prints comes after the lines drawn so
                    // far.
                    match (&self.drawn, attempt) {
                        (Some(marks), 1) => self.emitter.flush_through(marks),
                        _ => self.emitter.flush(),
                    }
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
                    Ok(Ok(())) => tracing::debug!(job_id = %id, "cancelled a job nobody waits for"),
                    Ok(Err(e)) => tracing::warn!(job_id = %id, error = %e, "cannot cancel a job nobody waits for"),
                    Err(_) => tracing::warn!(job_id = %id, "cancelling a job timed out"),
                }
            });
        }
    }
}

/// How long to wait for a job: its step timeout and 5 s, else the run's
/// job deadline; a command at least its own timeout and a grace period.
pub(super) fn job_wait(
    op: Operation,
    data: &Value,
    timeout: Option<Duration>,
    deadline: Duration,
) -> Duration {
    if let Some(t) = timeout {
        return t + Duration::from_secs(5);
    }
    if op.is_command() {
        let own = data
            .get("timeout")
            .and_then(Value::as_u64)
            .map_or(Duration::from_secs(30), Duration::from_secs);
        return deadline.max(own + COMMAND_GRACE);
    }
    deadline
}

/// The hosts a broadcast should reach, when the controller does not say
/// (upstream's does not): every agent it lists for `_all`, those with the
/// label for a label target, leaving out drained ones. `None` for other
/// targets or when the list cannot be read.
pub(super) async fn expected_hosts(client: &Client, target: &Target) -> Option<Vec<String>> {
    if !target.is_broadcast() {
        return None;
    }
    let list = client.agents().await.ok()?;
    Some(
        list.agents
            .into_iter()
            .filter(|a| !matches!(a.state, Some(AgentState::Draining | AgentState::Cordoned)))
            .filter(|a| target.selects(&a.hostname, &a.labels))
            .map(|a| a.hostname)
            .collect(),
    )
}

/// Waits for the job to end; with `expected` hosts (computed here, not by
/// the controller), also until each of them answered or the wait is over.
async fn wait_for_answers(
    client: &Client,
    id: Uuid,
    op: Operation,
    wait: Duration,
    expected: Option<&[String]>,
) -> Result<JobDetail, ClientError> {
    let end = tokio::time::Instant::now() + wait;
    let mut detail = client.wait_job(id, wait).await?;
    let Some(expected) = expected else {
        return Ok(detail);
    };
    loop {
        let answered = host_results(&detail, op, id);
        let missing = expected
            .iter()
            .any(|h| !answered.iter().any(|a| &a.hostname == h));
        let now = tokio::time::Instant::now();
        if !missing || now >= end {
            return Ok(detail);
        }
        tokio::time::sleep(MISSING_HOSTS_POLL.min(end - now)).await;
        detail = client.job(id).await?;
    }
}

/// How often a running job step asks which hosts have answered (only
/// when someone watches the events).
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Reports each host of a job step once, as it answers.
pub(super) struct Progress<'a> {
    emitter: &'a Emitter,
    step: &'a str,
    announced: std::sync::Mutex<std::collections::HashSet<String>>,
    /// One of many jobs of a rolling step: its hosts count towards the
    /// step's, so no `job_created` (which starts a new count).
    part: bool,
}

impl<'a> Progress<'a> {
    pub(super) fn new(emitter: &'a Emitter, step: &'a str) -> Self {
        Progress {
            emitter,
            step,
            announced: Default::default(),
            part: false,
        }
    }

    /// Progress of one job among a rolling step's.
    pub(super) fn part(emitter: &'a Emitter, step: &'a str) -> Self {
        Progress {
            part: true,
            ..Progress::new(emitter, step)
        }
    }

    fn watched(&self) -> bool {
        self.emitter.enabled()
    }

    /// Emits `job_created` with the number of hosts the job waits for.
    fn job_created(&self, id: Uuid, expected_hosts: Option<usize>) {
        if self.watched() && !self.part {
            self.emitter.emit(Event::JobCreated {
                step: self.step.to_string(),
                job_id: id.to_string(),
                expected_hosts,
            });
        }
    }

    /// Emits `host_done` for the hosts not reported yet.
    fn announce(&self, hosts: &[HostResult]) {
        if !self.watched() {
            return;
        }
        for h in hosts {
            let new = crate::lock(&self.announced).insert(h.hostname.clone());
            if new {
                self.emitter.emit(Event::HostDone {
                    step: self.step.to_string(),
                    host: super::host_event(h, self.emitter.verbose),
                });
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn job(
    client: &Client,
    op: Operation,
    target: &str,
    data: &Value,
    (timeout, wait): (Option<Duration>, Duration),
    tolerance: HostTolerance,
    rules: &CommandRules,
    cancel: &CancellationToken,
    progress: &Progress<'_>,
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
    let parsed = Target::parse(target).ok();
    // The controller says whom a broadcast waits for (ours does); else the
    // library works it out, as upstream's own engine did.
    let computed = match (&parsed, created.expected_hosts.is_empty()) {
        (Some(t), true) => expected_hosts(client, t).await,
        _ => None,
    };
    let expected_count = if !created.expected_hosts.is_empty() {
        Some(created.expected_hosts.len())
    } else if let Some(hosts) = &computed {
        Some(hosts.len())
    } else {
        parsed.as_ref().filter(|t| !t.is_broadcast()).map(|_| 1)
    };
    progress.job_created(id, expected_count);
    let waiting = wait_for_answers(client, id, op, wait, computed.as_deref());
    tokio::pin!(waiting);
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    let detail = loop {
        tokio::select! {
            d = &mut waiting => break d,
            _ = tick.tick(), if progress.watched() => {
                if let Ok(d) = client.job(id).await {
                    progress.announce(&host_results(&d, op, id));
                }
            }
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
    let broadcast = parsed.as_ref().is_some_and(Target::is_broadcast);
    let mut hosts = host_results(&detail, op, id);
    if !rules.is_empty() {
        for h in &mut hosts {
            apply_rules(h, rules);
        }
    }
    // Expected hosts that never answered are lost.
    if let Some(expected) = &computed {
        for h in expected {
            if !hosts.iter().any(|a| &a.hostname == h) {
                hosts.push(HostResult {
                    hostname: h.clone(),
                    status: HostStatus::Lost,
                    changed: false,
                    error: Some(format!(
                        "no answer within {}",
                        osapi_api::format::go_duration(wait)
                    )),
                    data: Value::Null,
                    job_id: Some(id),
                });
            }
        }
        hosts.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    }
    progress.announce(&hosts);
    let expected_total = computed
        .as_ref()
        .or(detail.expected_hosts.as_ref())
        .map(Vec::len);
    let total = expected_total.unwrap_or(hosts.len()).max(hosts.len());
    let changed = hosts.iter().any(|h| h.changed);
    // Upstream runs an `_any` job on every agent: one success is the
    // step's answer (the first to complete), every host's is kept.
    if parsed == Some(Target::Any) && hosts.len() > 1 {
        return any_outcome(&detail, hosts, changed, id);
    }
    let failed: Vec<&HostResult> = hosts.iter().filter(|h| h.failed()).collect();
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

/// The outcome of an `_any` job several agents answered: the first host to
/// complete successfully gives the step its result; it fails only when no
/// host succeeded.
fn any_outcome(detail: &JobDetail, hosts: Vec<HostResult>, changed: bool, id: Uuid) -> Outcome {
    let first_done = detail
        .timeline
        .iter()
        .flatten()
        .filter(|e| e.event == "completed")
        .find_map(|e| {
            hosts
                .iter()
                .find(|h| h.hostname == e.hostname && !h.failed())
        });
    let winner = first_done.or_else(|| hosts.iter().find(|h| !h.failed()));
    match winner {
        Some(w) => Outcome {
            ok: true,
            error: None,
            changed,
            data: w.data.clone(),
            hosts: hosts.clone(),
            job_id: Some(id),
        },
        None => {
            let detail: Vec<String> = hosts
                .iter()
                .map(|h| format!("{}: {}", h.hostname, h.error.as_deref().unwrap_or("failed")))
                .collect();
            Outcome {
                ok: false,
                error: Some(format!(
                    "no host of {} succeeded: {}",
                    hosts.len(),
                    detail.join("; ")
                )),
                changed,
                data: Value::Null,
                hosts,
                job_id: Some(id),
            }
        }
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

/// A command step's `changed_when` / `failed_when`, applied to one host
/// that answered with a result (hosts without one, lost ones, and those a
/// condition skipped stay as they are). The result's `changed` follows.
fn apply_rules(h: &mut HostResult, rules: &CommandRules) {
    if h.status == HostStatus::Lost || h.data.is_null() {
        return;
    }
    let Ok(result) = serde_json::from_value::<CommandResult>(h.data.clone()) else {
        return;
    };
    if result.skipped.is_some() {
        return;
    }
    let decide = |rule: &CommandRule, what: &str| {
        crate::panics::catch(|| rule(&result)).map_err(|panic| format!("{what} panicked: {panic}"))
    };
    let mut error = None;
    if let Some(rule) = &rules.changed_when {
        match decide(rule, "changed_when") {
            Ok(changed) => h.changed = changed,
            Err(e) => error = Some(e),
        }
    }
    let failed = match (&rules.failed_when, error.is_some()) {
        (_, true) => true,
        (Some(rule), false) => match decide(rule, "failed_when") {
            Ok(true) => {
                error = Some(format!(
                    "failed_when matched (exit code {})",
                    result.exit_code
                ));
                true
            }
            Ok(false) => false,
            Err(e) => {
                error = Some(e);
                true
            }
        },
        (None, false) => {
            error = h.error.take();
            h.status == HostStatus::Failed
        }
    };
    h.status = if failed {
        HostStatus::Failed
    } else if h.changed {
        HostStatus::Changed
    } else {
        HostStatus::Ok
    };
    h.error = if failed { error } else { None };
    if let Some(fields) = h.data.as_object_mut() {
        fields.insert("changed".into(), Value::Bool(h.changed));
    }
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
