//! The store traits every backend implements, and the [`Bus`] that bundles them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use osapi_api::agent::TimelineEvent;
use osapi_api::audit::AuditEntry;
use osapi_api::health::{ConsumerDetail, KvBucketInfo, ObjectStoreInfo, StreamInfo};
use osapi_api::ops::JobClass;
use osapi_api::records::{
    AgentRegistration, AgentResponse, EventKind, Facts, FileState, JobEvent, JobRecord, ObjectInfo,
};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::{BusResult, CancelFeed};

/// Everything a controller or agent needs, on one backend.
#[derive(Clone)]
pub struct Bus {
    /// Job records, events and responses.
    pub jobs: Arc<dyn JobStore>,
    /// Job notifications.
    pub queue: Arc<dyn JobQueue>,
    /// Agent registrations.
    pub registry: Arc<dyn Registry>,
    /// Agent facts.
    pub facts: Arc<dyn FactStore>,
    /// Drain flags and timelines.
    pub state: Arc<dyn AgentStateStore>,
    /// Uploaded files.
    pub objects: Arc<dyn ObjectStore>,
    /// Deployed-file records.
    pub file_state: Arc<dyn FileStateStore>,
    /// Audit log.
    pub audit: Arc<dyn AuditStore>,
    /// Health and statistics of the backend.
    pub status: Arc<dyn BusStatus>,
}

/// A job with everything recorded about it so far.
#[derive(Debug, Clone)]
pub struct JobSnapshot {
    /// The immutable definition.
    pub record: Arc<JobRecord>,
    /// Events in the order they were written.
    pub events: Vec<Arc<JobEvent>>,
    /// Agent responses in the order they were written.
    pub responses: Vec<Arc<AgentResponse>>,
}

/// Job records, their events and responses.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Stores a new job record; returns its revision.
    async fn create(&self, record: Arc<JobRecord>) -> BusResult<u64>;
    /// A job and everything recorded about it.
    async fn get(&self, id: Uuid) -> BusResult<Option<JobSnapshot>>;
    /// Only the job record (what an agent needs to run it).
    async fn record(&self, id: Uuid) -> BusResult<Option<Arc<JobRecord>>>;
    /// Every stored job, newest first.
    async fn list(&self) -> BusResult<Vec<JobSnapshot>>;
    /// Deletes a job and what belongs to it; false if it did not exist.
    async fn delete(&self, id: Uuid) -> BusResult<bool>;
    /// Appends events, and optionally an agent's response, to one slot of a
    /// job. A slot is where one writer records its part: the agent's hostname,
    /// [`ANY_SLOT`] for the agent that took an `_any` job, [`API_SLOT`] for
    /// the controller (see [`slot_of`]).
    /// Backends may store slots separately so writers do not contend.
    ///
    /// Returns `false` and writes nothing when only non-terminal events are
    /// given and the slot already holds a terminal event: a host the
    /// controller declared lost, or whose deadline passed, must not start
    /// work nobody waits for.
    async fn append(
        &self,
        job_id: Uuid,
        slot: &str,
        events: Vec<JobEvent>,
        response: Option<AgentResponse>,
    ) -> BusResult<bool>;
    /// True when `slot` of the job holds a terminal event (someone else, the
    /// controller cancelling, say, settled it): what a writer checks while
    /// it works. Reads only that slot.
    async fn slot_settled(&self, job_id: Uuid, slot: &str) -> BusResult<bool>;
    /// Jobs as they change. Receivers that lag must treat every job as changed.
    fn subscribe(&self) -> broadcast::Receiver<JobChange>;
    /// Calls `listener` with every change from now on, in the task that
    /// made or saw it, before any receiver of [`JobStore::subscribe`] hears
    /// of it: for cheap reactions (waking a waiting request) that must not
    /// wait for a task hop. It must not block, panic, or call back into the
    /// store.
    fn on_change(&self, listener: ChangeListener);
    /// How long a job is kept at most (records expire after it without any
    /// change being announced); `None` when jobs leave only by deletion or
    /// announced eviction.
    fn retention(&self) -> Option<Duration> {
        None
    }
}

/// Slot of the controller's events about a job.
pub const API_SLOT: &str = osapi_api::records::API_HOST;
/// Slot of the agent that took an `_any` job (and of the controller's
/// verdicts on such a job).
pub const ANY_SLOT: &str = osapi_api::target::Target::ANY;

/// The slot `host` records its part of `record` in: [`ANY_SLOT`] for an
/// `_any` job (whichever agent took it), the hostname otherwise.
pub fn slot_of<'a>(record: &JobRecord, host: &'a str) -> &'a str {
    if record.is_any() { ANY_SLOT } else { host }
}

/// True when an append carries only progress (no response, no terminal
/// event): what a settled slot refuses (see [`JobStore::append`]).
pub(crate) fn only_progress(events: &[JobEvent], response: Option<&AgentResponse>) -> bool {
    response.is_none() && events.iter().all(|e| !e.event.is_terminal())
}

/// True when a slot's events hold a terminal one: the host's part is settled.
pub(crate) fn settled<'a>(events: impl IntoIterator<Item = &'a JobEvent>) -> bool {
    events.into_iter().any(|e| e.event.is_terminal())
}

/// True when every part of `record` is settled, `slot_settled` telling
/// whether one slot is: the `_any` slot of an `_any` job, each expected
/// host's slot otherwise. A finished job changes no more (but for the
/// controller's bookkeeping) and may be dropped by retention.
pub(crate) fn finished(record: &JobRecord, slot_settled: impl Fn(&str) -> bool) -> bool {
    if record.is_any() {
        slot_settled(ANY_SLOT)
    } else {
        record.expected_hosts.iter().all(|h| slot_settled(h))
    }
}

/// Called with each change to a job (see [`JobStore::on_change`]).
pub type ChangeListener = std::sync::Arc<dyn Fn(&JobChange) + Send + Sync>;

/// A change to a stored job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobChange {
    /// The job.
    pub job_id: Uuid,
    /// What changed.
    pub kind: ChangeKind,
}

/// What changed about a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The job was created.
    Created,
    /// An event was appended.
    Event(EventKind),
    /// An agent response was stored.
    Response,
    /// The job was deleted.
    Deleted,
    /// Changes may have been missed (the feed reconnected): look at every job again.
    Resync,
}

impl JobChange {
    /// True for changes that can end a host's part in the job (or the job).
    pub fn may_settle(&self) -> bool {
        match self.kind {
            ChangeKind::Event(k) => k.is_terminal(),
            ChangeKind::Deleted | ChangeKind::Resync => true,
            ChangeKind::Created | ChangeKind::Response => false,
        }
    }
}

/// Where a job notification goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    /// The shared work queue: exactly one agent takes it.
    Any,
    /// One host's own queue.
    Host(String),
}

/// A job handed to an agent.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The job to run.
    pub job_id: Uuid,
    /// The queue it came from.
    pub route: Route,
    /// The job record, when the notification carried it (saves a read).
    pub record: Option<Arc<JobRecord>>,
    /// The bus delivered this message before (its acknowledgement did not
    /// arrive, or a taker handed it back).
    pub redelivered: bool,
    /// Where the message sits in the bus's stream, when it has one: a
    /// redelivered message has the sequence of the first delivery, so an
    /// agent that took that one knows this for a copy (a replay published
    /// again has a sequence of its own).
    pub stream_sequence: Option<u64>,
    /// How many more messages the queue held when this one was delivered,
    /// when the bus says: 0 means the queue is caught up.
    pub pending: Option<u64>,
}

/// The two queues an agent takes jobs from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueueKind {
    /// The shared `_any` work queue.
    Any,
    /// The agent's own queue.
    Host,
}

/// Job notifications.
#[async_trait]
pub trait JobQueue: Send + Sync {
    /// Queues a job for one route. A job for several hosts is published once per host.
    async fn publish(&self, job_id: Uuid, class: JobClass, route: Route) -> BusResult<()>;
    /// Like [`JobQueue::publish`]; backends may carry the record in the
    /// notification so the agent need not read it.
    async fn publish_record(&self, record: Arc<JobRecord>, route: Route) -> BusResult<()> {
        self.publish(record.id, record.class, route).await
    }
    /// A consumer of one of an agent's two queues.
    async fn consumer(&self, hostname: &str, kind: QueueKind) -> BusResult<Box<dyn JobConsumer>>;
    /// Asks agent `hostname` to stop running job `job_id` now. Best effort
    /// and not stored: an agent that is not running it ignores it (the
    /// controller also settles the job, which agents check while they work).
    async fn cancel(&self, job_id: Uuid, hostname: &str) -> BusResult<()>;
    /// Cancellation requests for agent `hostname`.
    async fn cancellations(&self, hostname: &str) -> BusResult<CancelFeed>;
    /// How many times this bus connected so far: a number that changes
    /// when the connection is made again, after which requests sent while
    /// it was down (cancellations) are lost. A bus without a connection
    /// always says 0.
    fn connects(&self) -> u64 {
        0
    }
}

/// One queue, seen by one agent.
#[async_trait]
pub trait JobConsumer: Send {
    /// The next job, waiting at most `wait`; `Ok(None)` when none came. A job
    /// returned here is taken: no other agent gets it and it is not redelivered.
    async fn next(&mut self, wait: Duration) -> BusResult<Option<Delivery>>;
    /// Drops what the client fetched for this queue and has not returned
    /// yet (the bus delivers such a message again later, as redelivered);
    /// the next call asks the bus afresh. Nothing to do for buses that
    /// fetch nothing ahead.
    fn restart(&mut self) {}
}

/// A change in the set of live agents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryEvent {
    /// An agent registered for the first time, or a new instance replaced an old one.
    Joined {
        /// Agent hostname.
        hostname: String,
        /// New instance id.
        instance_id: Uuid,
    },
    /// An agent deregistered or its heartbeat expired.
    Left {
        /// Agent hostname.
        hostname: String,
    },
}

/// Agent registrations, kept alive by heartbeats.
#[async_trait]
pub trait Registry: Send + Sync {
    /// Writes (or refreshes) a registration. Returns the instance id of
    /// another agent process whose registration under the same hostname
    /// this write replaced, when the registry can tell: in memory always; on
    /// NATS once this process has written the key before (each heartbeat is
    /// a compare-and-set on the revision it wrote last, so telling costs
    /// nothing while nobody else writes). Two processes that keep replacing
    /// each other share a hostname: two hosts named alike, or an old agent
    /// still running.
    async fn put(&self, registration: AgentRegistration) -> BusResult<Option<Uuid>>;
    /// A live agent's registration.
    async fn get(&self, hostname: &str) -> BusResult<Option<AgentRegistration>>;
    /// Every live agent, by hostname.
    async fn list(&self) -> BusResult<Vec<AgentRegistration>>;
    /// Removes `hostname`'s registration if it is still the one agent
    /// process `instance_id` wrote (clean shutdown): an agent that stops
    /// never removes the registration of a newer process under its name.
    async fn remove(&self, hostname: &str, instance_id: Uuid) -> BusResult<()>;
    /// Agents joining and leaving.
    fn subscribe(&self) -> broadcast::Receiver<RegistryEvent>;
    /// How long a registration lives without a heartbeat.
    fn ttl(&self) -> Duration;
}

/// Agent facts.
#[async_trait]
pub trait FactStore: Send + Sync {
    /// Writes an agent's facts.
    async fn put(&self, hostname: &str, facts: Facts) -> BusResult<()>;
    /// An agent's facts.
    async fn get(&self, hostname: &str) -> BusResult<Option<Facts>>;
    /// Every agent's facts.
    async fn list(&self) -> BusResult<Vec<(String, Facts)>>;
}

/// Drain flags and agent timelines.
#[async_trait]
pub trait AgentStateStore: Send + Sync {
    /// Sets the drain flag of an agent.
    async fn set_drain(&self, hostname: &str) -> BusResult<()>;
    /// Clears the drain flag of an agent.
    async fn clear_drain(&self, hostname: &str) -> BusResult<()>;
    /// True when the agent's drain flag is set.
    async fn is_drained(&self, hostname: &str) -> BusResult<bool>;
    /// Hostnames (sanitised keys) with the drain flag set.
    async fn drained(&self) -> BusResult<BTreeSet<String>>;
    /// Appends a timeline event.
    async fn append_timeline(&self, event: TimelineEvent) -> BusResult<()>;
    /// An agent's timeline, oldest first.
    async fn timeline(&self, hostname: &str) -> BusResult<Vec<TimelineEvent>>;
    /// Hostnames whose drain flag changed.
    fn subscribe(&self) -> broadcast::Receiver<String>;
}

/// Uploaded files.
#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// Stores (or replaces) an object.
    async fn put(&self, name: &str, content_type: &str, data: Bytes) -> BusResult<ObjectInfo>;
    /// An object's metadata and content.
    async fn get(&self, name: &str) -> BusResult<Option<(ObjectInfo, Bytes)>>;
    /// An object's content as of the version with the given SHA-256
    /// (lowercase hex), when the store still has it or remembers it: without
    /// a read when it does. Otherwise the object as it is now (`info.sha256`
    /// then tells another version), or `None` when it is gone. By default,
    /// the object as it is now.
    async fn get_version(
        &self,
        name: &str,
        _sha256: &str,
    ) -> BusResult<Option<(ObjectInfo, Bytes)>> {
        self.get(name).await
    }
    /// An object's metadata.
    async fn info(&self, name: &str) -> BusResult<Option<ObjectInfo>>;
    /// Every object's metadata, by name.
    async fn list(&self) -> BusResult<Vec<ObjectInfo>>;
    /// Deletes an object; false if it did not exist.
    async fn delete(&self, name: &str) -> BusResult<bool>;
}

/// Records of deployed files, per agent and path.
#[async_trait]
pub trait FileStateStore: Send + Sync {
    /// Records a deployment.
    async fn put(&self, hostname: &str, state: FileState) -> BusResult<()>;
    /// The record for a path on an agent.
    async fn get(&self, hostname: &str, path: &str) -> BusResult<Option<FileState>>;
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Records an entry.
    async fn put(&self, entry: AuditEntry) -> BusResult<()>;
    /// Total count and one page, newest first.
    async fn list(&self, offset: usize, limit: usize) -> BusResult<(usize, Vec<AuditEntry>)>;
    /// One entry.
    async fn get(&self, id: Uuid) -> BusResult<Option<AuditEntry>>;
    /// Every entry, newest first.
    async fn export(&self) -> BusResult<Vec<AuditEntry>>;
}

/// Merges newest-first sequences into the newest `n`, newest first (by
/// when each request ended).
pub(crate) fn merge_newest(logs: Vec<Vec<AuditEntry>>, n: usize) -> Vec<AuditEntry> {
    let mut logs: Vec<std::iter::Peekable<std::vec::IntoIter<AuditEntry>>> =
        logs.into_iter().map(|l| l.into_iter().peekable()).collect();
    let mut out = Vec::new();
    while out.len() < n {
        let newest = logs
            .iter_mut()
            .enumerate()
            .filter_map(|(i, l)| l.peek().map(|e| (i, e.ended())))
            .max_by_key(|(_, ended)| *ended);
        let Some((i, _)) = newest else { break };
        out.extend(logs[i].next());
    }
    out
}

/// Statistics of a backend, for `GET /health/status`.
#[derive(Debug, Clone, Default)]
pub struct BusStats {
    /// Streams.
    pub streams: Vec<StreamInfo>,
    /// Buckets.
    pub kv_buckets: Vec<KvBucketInfo>,
    /// Object stores.
    pub object_stores: Vec<ObjectStoreInfo>,
    /// Consumers.
    pub consumers: Vec<ConsumerDetail>,
}

/// Result of one readiness check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentCheck {
    /// Component name (`nats`, `kv`, `memory` …).
    pub component: String,
    /// `Err` with the reason when not healthy.
    pub result: Result<(), String>,
}

/// Health and statistics of a backend.
#[async_trait]
pub trait BusStatus: Send + Sync {
    /// `memory` or `nats`.
    fn backend(&self) -> &'static str;
    /// Where the backend lives.
    fn url(&self) -> String;
    /// Backend server version.
    fn server_version(&self) -> String;
    /// Readiness checks, one per component.
    async fn check(&self) -> Vec<ComponentCheck>;
    /// Statistics.
    async fn stats(&self) -> BusStats;
    /// Times the connection to the backend was re-established (0 for a
    /// backend without a connection).
    fn reconnects(&self) -> u64 {
        0
    }
}
