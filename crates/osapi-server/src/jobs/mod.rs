//! The job service: create jobs (validate, resolve expected hosts, queue),
//! read them (settling lost and expired hosts), long-poll them, list, count,
//! delete and retry.

mod index;
pub mod view;
mod waiters;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;

use osapi_api::job::{JobDetail, JobStatus, QueueStats};
use osapi_api::ops::{JobClass, Op, OpVisitor, Operation, Validate};
use osapi_api::records::{API_HOST, EventKind, JobEvent, JobRecord};
use osapi_api::signing::JobSigner;
use osapi_api::target::Target;
use osapi_bus::{Bus, JobSnapshot, Route, slot_of};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::directory::AgentDirectory;
use crate::error::{ApiError, ApiResult};
use crate::metrics::ControllerMetrics;
pub use index::{Counts, JobIndex};
pub use waiters::Waiters;

/// Longest deadline a job may ask for: as long as job records are kept.
pub const MAX_JOB_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Extra time a command job gets beyond the command's own timeout.
const COMMAND_GRACE: Duration = Duration::from_secs(60);

/// Creates, reads and waits for jobs.
pub struct JobService {
    bus: Bus,
    signer: Option<Arc<JobSigner>>,
    /// The current span's `traceparent` (see `ServerConfig::trace_parent`).
    trace_parent: Option<fn() -> Option<String>>,
    directory: Arc<AgentDirectory>,
    waiters: Arc<Waiters>,
    index: Arc<JobIndex>,
    default_timeout: Duration,
    metrics: Arc<ControllerMetrics>,
    /// Set when the controller stops: long-polls answer at once.
    stopping: tokio::sync::watch::Sender<bool>,
}

/// A job just created.
pub struct Created {
    /// The record as stored.
    pub record: Arc<JobRecord>,
    /// Store revision.
    pub revision: u64,
}

impl JobService {
    /// A service over `bus`.
    pub fn new(
        bus: Bus,
        directory: Arc<AgentDirectory>,
        waiters: Arc<Waiters>,
        index: Arc<JobIndex>,
        default_timeout: Duration,
        signer: Option<Arc<JobSigner>>,
        trace_parent: Option<fn() -> Option<String>>,
    ) -> Self {
        JobService {
            bus,
            signer,
            trace_parent,
            directory,
            metrics: index.metrics(),
            waiters,
            index,
            default_timeout,
            stopping: tokio::sync::watch::channel(false).0,
        }
    }

    /// Validates and queues a job. `operation` is the object clients send
    /// (`{"type": …, "data": …}`). The caller has checked the permission of
    /// the operation ([`parse_operation`], [`Operation::permission`]).
    pub async fn create(
        &self,
        mut operation: Value,
        target: &str,
        timeout: Option<Duration>,
        retry_of: Option<Uuid>,
    ) -> ApiResult<Created> {
        let op_type = validate_operation(&operation)?;
        if op_type == Operation::FileDeploy.as_str() {
            self.pin_object(&mut operation).await?;
        }
        let parsed_target =
            Target::parse(target).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let expected_hosts = self.directory.resolve(&parsed_target).await?;
        let created = OffsetDateTime::now_utc();
        let timeout = timeout
            .unwrap_or_else(|| self.default_deadline(&operation))
            .min(MAX_JOB_TIMEOUT);
        let class = JobClass::of(&op_type);
        let mut record = JobRecord {
            id: Uuid::new_v4(),
            created,
            operation,
            op_type,
            class,
            target: target.to_string(),
            expected_hosts,
            deadline: created + timeout,
            retry_of,
            signature: None,
            trace_parent: self.trace_parent.and_then(|current| current()),
        };
        if let Some(signer) = &self.signer {
            signer.sign(&mut record);
        }
        let record = Arc::new(record);
        let kind = crate::metrics::target_kind(&parsed_target);
        self.metrics.job_submitted(record.id, &record.op_type, kind);
        let revision = match self.bus.jobs.create(record.clone()).await {
            Ok(r) => r,
            Err(e) => {
                self.metrics.job_forgotten(record.id);
                return Err(e.into());
            }
        };
        self.metrics.job_created(&record.op_type, kind);
        let span = tracing::Span::current();
        span.record("job_id", tracing::field::display(record.id));
        span.record("operation", record.op_type.as_str());
        span.record("target", record.target.as_str());
        tracing::info!(job_id = %record.id, operation = %record.op_type, target = %record.target, hosts = record.expected_hosts.len(), "job created");
        // Listed at once, before the change feed brings it.
        self.index.upsert(&JobSnapshot {
            record: record.clone(),
            events: Vec::new(),
            responses: Vec::new(),
        });
        match parsed_target {
            Target::Any => {
                self.bus
                    .queue
                    .publish_record(record.clone(), Route::Any)
                    .await?
            }
            _ => {
                // One notification per host, sent together.
                let sends = record.expected_hosts.iter().map(|host| {
                    self.bus
                        .queue
                        .publish_record(record.clone(), Route::Host(host.clone()))
                });
                for sent in futures::future::join_all(sends).await {
                    sent?;
                }
            }
        }
        Ok(Created { record, revision })
    }

    /// Records in a deploy's data which version of its object it deploys
    /// (`object_sha256`), so that every host deploys the same content and
    /// agents that hold it read nothing. A version the client named must be
    /// the object's current one (never one deleted or replaced since). A
    /// missing object, when the client named no version, is left for the
    /// agents to report, as before.
    async fn pin_object(&self, operation: &mut Value) -> ApiResult<()> {
        let Some(data) = operation.get_mut("data").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        let Some(name) = data.get("object_name").and_then(Value::as_str) else {
            return Ok(());
        };
        let asked = data.get("object_sha256").and_then(Value::as_str);
        let current = self
            .bus
            .objects
            .info(name)
            .await?
            .map(|info| info.sha256)
            .filter(|sha| !sha.is_empty());
        match (current, asked) {
            (Some(current), Some(asked)) if asked != current => Err(ApiError::conflict(format!(
                "object {name:?} is now the version with sha256 {current}, not {asked}"
            ))),
            (None, Some(asked)) => Err(ApiError::conflict(format!(
                "object {name:?} is not in the file store (with a digest), so it is not the \
                 version with sha256 {asked}"
            ))),
            (Some(current), _) => {
                data.insert("object_sha256".into(), Value::String(current));
                Ok(())
            }
            (None, None) => Ok(()),
        }
    }

    fn default_deadline(&self, operation: &Value) -> Duration {
        let command_timeout = operation
            .get("data")
            .and_then(|d| d.get("timeout"))
            .and_then(Value::as_u64)
            .map(Duration::from_secs);
        let is_command = operation
            .get("type")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<Operation>().ok())
            .is_some_and(Operation::is_command);
        if is_command {
            self.default_timeout
                .max(command_timeout.unwrap_or(Duration::from_secs(30)) + COMMAND_GRACE)
        } else {
            self.default_timeout
        }
    }

    async fn snapshot(&self, id: Uuid) -> ApiResult<JobSnapshot> {
        self.bus
            .jobs
            .get(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("job not found: {id}")))
    }

    /// Records hosts that can no longer answer: the deadline passed, or the
    /// agent that owes the answer is gone (heartbeat expired or restarted).
    /// Returns the snapshot to show.
    async fn settle(&self, snapshot: JobSnapshot) -> ApiResult<JobSnapshot> {
        let pending = view::pending(&snapshot);
        if pending.is_empty() {
            return Ok(snapshot);
        }
        let id = snapshot.record.id;
        let now = OffsetDateTime::now_utc();
        let mut wrote = false;
        if now >= snapshot.record.deadline {
            let timeout = Duration::try_from(snapshot.record.deadline - snapshot.record.created)
                .unwrap_or_default();
            for p in pending {
                let who = if p.hostname == view::ANY_HOST {
                    "no agent took the job".to_string()
                } else {
                    format!("{} did not answer", p.hostname)
                };
                let error = format!(
                    "job deadline exceeded after {}: {who}",
                    osapi_api::format::go_duration(timeout)
                );
                // Recorded where the host writes: a settled slot refuses late work.
                let slot = slot_of(&snapshot.record, &p.hostname).to_string();
                let event = JobEvent::now(id, EventKind::Expired, p.hostname).with_error(error);
                self.bus.jobs.append(id, &slot, vec![event], None).await?;
                wrote = true;
            }
        } else {
            let fleet = self.directory.fleet().await?;
            for p in pending.into_iter().filter(|p| p.hostname != view::ANY_HOST) {
                let cached = fleet.get(&p.hostname).map(|a| a.registration.instance_id);
                if cached.is_some() && (p.instance.is_none() || cached == p.instance) {
                    continue;
                }
                // The cache says gone or replaced: confirm before recording it.
                let live = self.bus.registry.get(&p.hostname).await?;
                let verdict = match (live, p.instance) {
                    (None, _) => Some(format!(
                        "agent {} lost: no heartbeat within {}",
                        p.hostname,
                        osapi_api::format::go_duration(self.bus.registry.ttl())
                    )),
                    (Some(reg), Some(instance)) if reg.instance_id != instance => Some(format!(
                        "agent {} lost: it restarted while running the job",
                        p.hostname
                    )),
                    _ => None,
                };
                if let Some(error) = verdict {
                    let slot = slot_of(&snapshot.record, &p.hostname).to_string();
                    tracing::warn!(job_id = %id, host = %p.hostname, %error, "host lost");
                    let event = JobEvent::now(id, EventKind::Lost, p.hostname).with_error(error);
                    self.bus.jobs.append(id, &slot, vec![event], None).await?;
                    self.metrics.host_lost();
                    wrote = true;
                }
            }
        }
        if wrote {
            // Our writes are read back (the store serves its own writes at
            // once), and the index learns the settled status right away.
            let settled = self.snapshot(id).await?;
            self.index.upsert(&settled);
            Ok(settled)
        } else {
            Ok(snapshot)
        }
    }

    /// Settles running jobs whose deadline passed, read or not: they end
    /// (and are counted) at their deadline. Best effort, like
    /// the settling on reads; run every second by the controller.
    pub async fn settle_overdue(&self) {
        self.settle_all(self.index.overdue(OffsetDateTime::now_utc()))
            .await;
    }

    /// Settles every running job whose deadline passed or whose host left,
    /// so that lists and counts never show them as still running. Best
    /// effort: a job that cannot be settled now is logged and tried again on
    /// the next list, without failing this one.
    async fn settle_due(&self) -> ApiResult<()> {
        let fleet = self.directory.fleet().await?;
        let due = self.index.due(OffsetDateTime::now_utc(), &fleet).await?;
        self.settle_all(due).await;
        Ok(())
    }

    /// Settles each of `ids` (read afresh; a job gone from the bus leaves
    /// the index), 16 at a time. A job that cannot be settled now is logged
    /// and tried again later.
    async fn settle_all(&self, ids: Vec<Uuid>) {
        let settled: Vec<(Uuid, ApiResult<()>)> = futures::stream::iter(ids)
            .map(|id| async move {
                let done = match self.bus.jobs.get(id).await {
                    Ok(Some(snapshot)) => self.settle(snapshot).await.map(|_| ()),
                    Ok(None) => {
                        self.index.remove(id);
                        Ok(())
                    }
                    Err(e) => Err(e.into()),
                };
                (id, done)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for (id, done) in settled {
            if let Err(e) = done {
                tracing::warn!(job_id = %id, error = %e, "cannot settle a job yet");
            }
        }
    }

    /// The job as `GET /job/{id}` shows it.
    pub async fn detail(&self, id: Uuid) -> ApiResult<JobDetail> {
        let snapshot = self.settle(self.snapshot(id).await?).await?;
        Ok(view::build(&snapshot, true))
    }

    /// Answers every long-poll at once, and every later one without
    /// waiting: the controller is stopping.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether [`JobService::stop`] was called.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Waits until the job is terminal or `wait` has passed (or the
    /// controller stops), then returns it.
    pub async fn wait(&self, id: Uuid, wait: Duration) -> ApiResult<JobDetail> {
        let end = tokio::time::Instant::now() + wait;
        let mut waiter = self.waiters.watch(id);
        let mut stopping = self.stopping.subscribe();
        loop {
            waiter.job.borrow_and_update();
            waiter.all.borrow_and_update();
            let snapshot = self.settle(self.snapshot(id).await?).await?;
            let detail = view::build(&snapshot, true);
            if detail.status.is_some_and(JobStatus::is_terminal) {
                return Ok(detail);
            }
            let now = tokio::time::Instant::now();
            if now >= end || *stopping.borrow_and_update() {
                return Ok(detail);
            }
            let to_deadline: Duration = (snapshot.record.deadline - OffsetDateTime::now_utc())
                .try_into()
                .unwrap_or_default();
            let wake_at = end.min(now + to_deadline + Duration::from_millis(5));
            tokio::select! {
                r = waiter.job.changed() => if r.is_err() { return Ok(detail) },
                r = waiter.all.changed() => if r.is_err() { return Ok(detail) },
                _ = stopping.changed() => return Ok(detail),
                _ = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    /// Jobs newest first, optionally filtered by status, paged. Reads only
    /// the jobs of the page (the index knows every job's status).
    pub async fn list(
        &self,
        status: Option<JobStatus>,
        offset: usize,
        limit: usize,
    ) -> ApiResult<(usize, Vec<JobDetail>)> {
        self.settle_due().await?;
        let limit = if limit == 0 { usize::MAX } else { limit };
        let (total, ids) = self.index.page(status, offset, limit).await?;
        let snapshots: Vec<ApiResult<Option<JobSnapshot>>> = futures::stream::iter(ids)
            .map(|id| async move { Ok(self.bus.jobs.get(id).await?) })
            .buffered(16)
            .collect()
            .await;
        let mut items = Vec::with_capacity(snapshots.len());
        for s in snapshots {
            // Gone since the index saw it (deleted, or dropped by retention).
            if let Some(s) = s? {
                items.push(view::build(&s, false));
            }
        }
        Ok((total, items))
    }

    /// Counts per status and operation, from the index's counters.
    pub async fn stats(&self) -> ApiResult<QueueStats> {
        self.settle_due().await?;
        let counts = self.index.counts().await?;
        let mut stats = QueueStats {
            total_jobs: counts.total,
            operation_counts: counts.by_operation,
            ..Default::default()
        };
        for key in [
            JobStatus::Submitted,
            JobStatus::Processing,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::PartialFailure,
        ] {
            stats.status_counts.insert(key.as_str().to_string(), 0);
        }
        for (status, n) in counts.by_status {
            *stats
                .status_counts
                .entry(status.as_str().to_string())
                .or_default() += n;
        }
        Ok(stats)
    }

    /// Deletes a finished job. A job still running is cancelled instead:
    /// every host that has not answered is settled as `cancelled` (so an
    /// agent that has not started it never will), agents running it are told
    /// to stop (their commands' process groups are killed), and the job stays
    /// to show that it ended `failed` with `job cancelled`. Returns whether
    /// it was cancelled.
    pub async fn delete(&self, id: Uuid) -> ApiResult<bool> {
        let snapshot = self.snapshot(id).await?;
        let pending = view::pending(&snapshot);
        if pending.is_empty() {
            if !self.bus.jobs.delete(id).await? {
                return Err(ApiError::not_found(format!("job not found: {id}")));
            }
            self.index.remove(id);
            return Ok(false);
        }
        // The hosts are told first, whatever happens next: an agent running
        // the job stops it, and one that has it queued remembers not to
        // start it (agents trust these requests instead of reading each
        // job's state before they start it, unless they may have missed
        // one). Sent before the writes below on the same connection, so
        // an agent that reads the state sees it settled only after the
        // request reached its server.
        let hosts: Vec<&str> = pending
            .iter()
            .filter(|p| p.hostname != view::ANY_HOST)
            .map(|p| p.hostname.as_str())
            .collect();
        for host in hosts {
            if let Err(e) = self.bus.queue.cancel(id, host).await {
                tracing::warn!(job_id = %id, host, error = %e, "cannot tell an agent to stop");
            }
        }
        for p in &pending {
            let slot = slot_of(&snapshot.record, &p.hostname).to_string();
            let event = JobEvent::now(id, EventKind::Cancelled, p.hostname.clone())
                .with_error("job cancelled");
            self.bus.jobs.append(id, &slot, vec![event], None).await?;
        }
        let settled = self.snapshot(id).await?;
        self.index.upsert(&settled);
        Ok(true)
    }

    /// A job's immutable record.
    pub async fn record(&self, id: Uuid) -> ApiResult<Arc<JobRecord>> {
        self.bus
            .jobs
            .record(id)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("job not found: {id}")))
    }

    /// Creates a new job from an old one's operation. The caller has checked
    /// the permission of that operation.
    pub async fn retry(&self, original: &JobRecord, target: Option<String>) -> ApiResult<Created> {
        let id = original.id;
        let target_given = target.clone().unwrap_or_default();
        let target = target.unwrap_or_else(|| Target::ANY.to_string());
        // A retried deploy deploys its object as it is now.
        let mut operation = original.operation.clone();
        if let Some(data) = operation.get_mut("data").and_then(Value::as_object_mut) {
            data.remove("object_sha256");
        }
        let created = self.create(operation, &target, None, Some(id)).await?;
        let retried = JobEvent::now(id, EventKind::Retried, API_HOST).with_data(json!({
            "new_job_id": created.record.id.to_string(),
            "target_hostname": target_given,
        }));
        self.bus
            .jobs
            .append(id, API_HOST, vec![retried], None)
            .await?;
        Ok(created)
    }
}

/// The operation an operation object (`{"type": …, "data": …}`) names; its
/// data is not checked (see [`validate_operation`]).
pub fn parse_operation(operation: &Value) -> ApiResult<Operation> {
    let obj = operation
        .as_object()
        .ok_or_else(|| ApiError::bad_request("operation must be a JSON object"))?;
    let op_type = obj
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::bad_request("invalid operation format: missing type field"))?;
    op_type.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "unsupported operation {op_type:?} (supported: {})",
            Operation::ALL.map(Operation::as_str).join(", ")
        ))
    })
}

/// Checks the operation object and its data. Returns the operation type as
/// given.
pub fn validate_operation(operation: &Value) -> ApiResult<String> {
    let op = parse_operation(operation)?;
    let op_type = operation
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let data = match operation.get("data") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(d @ Value::Object(_)) => d.clone(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "operation.data must be a JSON object",
            ));
        }
    };
    /// Decodes `data` as the operation's parameters and checks their rules.
    struct Check<'a>(&'a Value);
    impl OpVisitor for Check<'_> {
        type Out = ApiResult<()>;
        fn visit<O: Op>(self) -> ApiResult<()> {
            let params = O::Params::deserialize(self.0).map_err(|e| {
                ApiError::bad_request(format!("invalid data for {}: {e}", O::OPERATION))
            })?;
            params.validate().map_err(ApiError::bad_request)
        }
    }
    op.visit(Check(&data))?;
    Ok(op_type.to_string())
}
