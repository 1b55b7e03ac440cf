//! The controller's index of every job the bus holds: creation order,
//! operation, computed status and, for jobs still running, the hosts that
//! owe an answer and the deadline. It is loaded from the bus once and kept
//! current from the bus's change feed (any controller's or agent's write),
//! so a page of `GET /job` reads only the jobs it returns, `GET /job/status`
//! reads counters, and finding jobs to settle (deadline passed, host lost)
//! looks only at running jobs.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use osapi_api::job::JobStatus;
use osapi_bus::{Bus, ChangeKind, JobSnapshot};
use time::OffsetDateTime;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::watch;
use uuid::Uuid;

use super::view::{self, ANY_HOST, Pending};
use crate::directory::Fleet;
use crate::error::{ApiError, ApiResult};
use crate::metrics::ControllerMetrics;

/// Changes handled in one batch (each job read once per batch).
const BATCH: usize = 1024;
/// How often (at most) jobs past the bus's retention are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Longest a request waits for the first load of the index.
const LOAD_WAIT: Duration = Duration::from_secs(30);

/// What the index keeps of one job.
struct Indexed {
    created: OffsetDateTime,
    op: Arc<str>,
    status: JobStatus,
    deadline: OffsetDateTime,
    /// Hosts owing an answer (empty once the job is terminal).
    pending: Vec<Pending>,
    /// Events and responses seen: a job only ever gains them, so a snapshot
    /// with fewer is older than what is held and is ignored.
    progress: usize,
}

#[derive(Default)]
struct Index {
    /// Newest first.
    order: BTreeSet<(Reverse<OffsetDateTime>, Uuid)>,
    jobs: HashMap<Uuid, Indexed>,
    by_status: BTreeMap<JobStatus, usize>,
    by_op: BTreeMap<Arc<str>, usize>,
    /// Jobs not yet terminal.
    open: HashSet<Uuid>,
    /// Operation names, shared by every job of an operation.
    names: HashSet<Arc<str>>,
}

impl Index {
    fn remove(&mut self, id: Uuid) {
        let Some(old) = self.jobs.remove(&id) else {
            return;
        };
        self.order.remove(&(Reverse(old.created), id));
        self.open.remove(&id);
        decrement(&mut self.by_status, &old.status);
        decrement(&mut self.by_op, &old.op);
    }

    /// Records what `snapshot` says; returns the job's status unless the
    /// snapshot was older than what is held.
    fn upsert(&mut self, snapshot: &JobSnapshot) -> Option<JobStatus> {
        let record = &snapshot.record;
        let id = record.id;
        let progress = snapshot.events.len() + snapshot.responses.len();
        if self
            .jobs
            .get(&id)
            .is_some_and(|held| held.progress > progress)
        {
            return None;
        }
        let status = view::status(snapshot);
        let pending = if status.is_terminal() {
            Vec::new()
        } else {
            view::pending(snapshot)
        };
        if let Some(held) = self.jobs.get_mut(&id) {
            if held.status != status {
                decrement(&mut self.by_status, &held.status);
                *self.by_status.entry(status).or_default() += 1;
                held.status = status;
            }
            held.pending = pending;
            held.progress = progress;
        } else {
            let op = match self.names.get(record.op_type.as_str()) {
                Some(name) => name.clone(),
                None => {
                    let name: Arc<str> = record.op_type.as_str().into();
                    self.names.insert(name.clone());
                    name
                }
            };
            *self.by_status.entry(status).or_default() += 1;
            *self.by_op.entry(op.clone()).or_default() += 1;
            self.order.insert((Reverse(record.created), id));
            self.jobs.insert(
                id,
                Indexed {
                    created: record.created,
                    op,
                    status,
                    deadline: record.deadline,
                    pending,
                    progress,
                },
            );
        }
        if status.is_terminal() {
            self.open.remove(&id);
        } else {
            self.open.insert(id);
        }
        Some(status)
    }
}

fn decrement<K: Ord>(counts: &mut BTreeMap<K, usize>, key: &K) {
    if let Some(n) = counts.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(key);
        }
    }
}

/// Counts of the jobs held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Jobs held.
    pub total: usize,
    /// Jobs per computed status.
    pub by_status: BTreeMap<JobStatus, usize>,
    /// Jobs per operation type.
    pub by_operation: BTreeMap<String, usize>,
}

/// The index, shared by the job service and its feed task.
pub struct JobIndex {
    inner: Mutex<Index>,
    loaded: watch::Sender<bool>,
    metrics: Arc<ControllerMetrics>,
}

impl JobIndex {
    /// Loads the index from `bus` in the background and keeps it current;
    /// requests wait for the first load.
    pub fn start(bus: &Bus, metrics: Arc<ControllerMetrics>) -> Arc<JobIndex> {
        let index = Arc::new(JobIndex {
            inner: Mutex::new(Index::default()),
            loaded: watch::channel(false).0,
            metrics,
        });
        let feed = bus.jobs.subscribe();
        tokio::spawn(follow(bus.clone(), Arc::downgrade(&index), feed));
        index
    }

    /// The metrics the index reports to.
    pub fn metrics(&self) -> Arc<ControllerMetrics> {
        self.metrics.clone()
    }

    /// Waits until the first load is done.
    async fn ready(&self) -> ApiResult<()> {
        let mut loaded = self.loaded.subscribe();
        match tokio::time::timeout(LOAD_WAIT, loaded.wait_for(|l| *l)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the job index is still loading from the bus; try again",
            )),
        }
    }

    /// Records what a snapshot says about its job.
    pub fn upsert(&self, snapshot: &JobSnapshot) {
        let status = crate::lock(&self.inner).upsert(snapshot);
        if let Some(status) = status {
            self.metrics
                .job_progress(snapshot.record.id, status, !snapshot.responses.is_empty());
        }
    }

    /// Forgets a job.
    pub fn remove(&self, id: Uuid) {
        crate::lock(&self.inner).remove(id);
        self.metrics.job_forgotten(id);
    }

    /// Forgets jobs created before `oldest` (the bus let them expire without
    /// a word).
    fn prune(&self, oldest: OffsetDateTime) {
        let mut index = crate::lock(&self.inner);
        let expired: Vec<Uuid> = index
            .order
            .range((Reverse(oldest), Uuid::nil())..)
            .map(|(_, id)| *id)
            .collect();
        for id in expired {
            index.remove(id);
            self.metrics.job_forgotten(id);
        }
    }

    fn replace(&self, snapshots: &[JobSnapshot]) {
        let mut index = Index::default();
        for s in snapshots {
            if let Some(status) = index.upsert(s) {
                self.metrics
                    .job_progress(s.record.id, status, !s.responses.is_empty());
            }
        }
        self.metrics
            .forget_missing(|id| index.jobs.contains_key(id));
        *crate::lock(&self.inner) = index;
        self.loaded.send_replace(true);
    }

    /// The number of jobs with `status` (all jobs when `None`) and the ids of
    /// one page of them, newest first.
    pub async fn page(
        &self,
        status: Option<JobStatus>,
        offset: usize,
        limit: usize,
    ) -> ApiResult<(usize, Vec<Uuid>)> {
        self.ready().await?;
        let index = crate::lock(&self.inner);
        let total = match status {
            Some(s) => index.by_status.get(&s).copied().unwrap_or(0),
            None => index.jobs.len(),
        };
        let ids = index
            .order
            .iter()
            .map(|(_, id)| *id)
            .filter(|id| status.is_none_or(|s| index.jobs.get(id).is_some_and(|j| j.status == s)))
            .skip(offset)
            .take(limit)
            .collect();
        Ok((total, ids))
    }

    /// Counts per status and operation.
    pub async fn counts(&self) -> ApiResult<Counts> {
        self.ready().await?;
        let index = crate::lock(&self.inner);
        Ok(Counts {
            total: index.jobs.len(),
            by_status: index.by_status.clone(),
            by_operation: index
                .by_op
                .iter()
                .map(|(op, n)| (op.to_string(), *n))
                .collect(),
        })
    }

    /// Running jobs past their deadline (none before the first load).
    pub fn overdue(&self, now: OffsetDateTime) -> Vec<Uuid> {
        self.open_where(|j| now >= j.deadline)
    }

    /// Running jobs for which `settle` holds.
    fn open_where(&self, settle: impl Fn(&Indexed) -> bool) -> Vec<Uuid> {
        let index = crate::lock(&self.inner);
        index
            .open
            .iter()
            .filter(|id| index.jobs.get(id).is_some_and(&settle))
            .copied()
            .collect()
    }

    /// Running jobs that can no longer finish on their own: their deadline
    /// passed, or a host they wait for left the fleet or restarted.
    pub async fn due(&self, now: OffsetDateTime, fleet: &Fleet) -> ApiResult<Vec<Uuid>> {
        self.ready().await?;
        let gone = |p: &Pending| {
            if p.hostname == ANY_HOST {
                return false;
            }
            match fleet.get(&p.hostname) {
                None => true,
                Some(a) => p.instance.is_some_and(|i| i != a.registration.instance_id),
            }
        };
        Ok(self.open_where(|j| now >= j.deadline || j.pending.iter().any(gone)))
    }
}

/// Loads the index, then applies the change feed: each changed job is read
/// again (once per batch); a resync or a lagging feed reloads everything.
async fn follow(
    bus: Bus,
    index: std::sync::Weak<JobIndex>,
    mut feed: tokio::sync::broadcast::Receiver<osapi_bus::JobChange>,
) {
    let mut reload = true;
    let mut backoff = Duration::from_millis(100);
    let retention = bus.jobs.retention();
    let mut prune = tokio::time::interval(retention.map_or(PRUNE_EVERY, |r| {
        (r / 4).clamp(Duration::from_secs(1), PRUNE_EVERY)
    }));
    loop {
        if reload {
            match bus.jobs.list().await {
                Ok(all) => {
                    let Some(index) = index.upgrade() else { return };
                    index.replace(&all);
                    reload = false;
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot load the job index; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        }
        let mut changed: HashSet<Uuid> = HashSet::new();
        let first = tokio::select! {
            r = feed.recv() => r,
            _ = prune.tick() => {
                if let (Some(keep), Some(index)) = (retention, index.upgrade()) {
                    index.prune(OffsetDateTime::now_utc() - keep);
                }
                continue;
            }
        };
        let mut next = match first {
            Ok(c) => Ok(c),
            Err(RecvError::Lagged(_)) => {
                reload = true;
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        loop {
            match next {
                Ok(c) if c.kind == ChangeKind::Resync => reload = true,
                Ok(c) => {
                    changed.insert(c.job_id);
                }
                Err(TryRecvError::Lagged(_)) => reload = true,
                Err(TryRecvError::Closed) => return,
                Err(TryRecvError::Empty) => break,
            }
            if reload || changed.len() >= BATCH {
                break;
            }
            next = feed.try_recv();
        }
        if reload {
            continue;
        }
        let Some(index) = index.upgrade() else { return };
        for id in changed {
            match bus.jobs.get(id).await {
                Ok(Some(snapshot)) => index.upsert(&snapshot),
                Ok(None) => index.remove(id),
                Err(e) => {
                    tracing::warn!(error = %e, job_id = %id, "cannot refresh the job index");
                    reload = true;
                }
            }
        }
    }
}
