//! In-memory job records, events and responses, bounded by count and by
//! bytes: beyond either limit the oldest finished jobs are dropped (running
//! jobs never are).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use osapi_api::records::{AgentResponse, JobEvent, JobRecord};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::feed::ChangeFeed;
use crate::lock;
use crate::size::{event_size, record_size, response_size};
use crate::traits::{finished, only_progress, settled};
use crate::{BusError, BusResult, ChangeKind, ChangeListener, JobChange, JobSnapshot, JobStore};

struct Entry {
    record: Arc<JobRecord>,
    events: Vec<Arc<JobEvent>>,
    /// The slot of each event (same order as `events`).
    slots: Vec<Arc<str>>,
    responses: Vec<Arc<AgentResponse>>,
    /// Approximate bytes held for this job.
    bytes: usize,
    /// Every host the job waits for has settled: the job may be evicted.
    finished: bool,
}

impl Entry {
    fn snapshot(&self) -> JobSnapshot {
        JobSnapshot {
            record: self.record.clone(),
            events: self.events.clone(),
            responses: self.responses.clone(),
        }
    }

    fn settles(&self) -> bool {
        let slots = &self.slots;
        finished(&self.record, |slot| {
            settled(
                self.events
                    .iter()
                    .zip(slots)
                    .filter(|(_, s)| &***s == slot)
                    .map(|(e, _)| &**e),
            )
        })
    }
}

#[derive(Default)]
struct Inner {
    jobs: HashMap<Uuid, Entry>,
    order: VecDeque<Uuid>,
    revision: u64,
    bytes: usize,
}

impl Inner {
    /// Drops the oldest finished jobs while a limit is exceeded, sparing
    /// `keep` (the job just written). Returns the ids dropped.
    fn evict(&mut self, max_jobs: usize, max_bytes: usize, keep: Uuid) -> Vec<Uuid> {
        let mut dropped = Vec::new();
        if self.jobs.len() <= max_jobs && self.bytes <= max_bytes {
            return dropped;
        }
        let Inner {
            jobs, order, bytes, ..
        } = self;
        let mut i = 0;
        while (jobs.len() > max_jobs || *bytes > max_bytes) && i < order.len() {
            let id = order[i];
            match jobs.get(&id) {
                // Deleted earlier: a hole in the order.
                None => {
                    order.remove(i);
                }
                Some(e) if e.finished && id != keep => {
                    *bytes -= e.bytes;
                    jobs.remove(&id);
                    order.remove(i);
                    dropped.push(id);
                }
                Some(_) => i += 1,
            }
        }
        dropped
    }
}

/// Jobs held in memory; beyond `max_jobs` jobs or `max_bytes` bytes the
/// oldest finished ones are dropped.
pub struct MemoryJobStore {
    inner: Mutex<Inner>,
    changes: ChangeFeed,
    max_jobs: usize,
    max_bytes: usize,
}

impl MemoryJobStore {
    /// An empty store keeping at most `max_jobs` jobs (and no byte limit).
    pub fn new(max_jobs: usize) -> Self {
        Self::with_limits(max_jobs, usize::MAX)
    }

    /// An empty store keeping at most `max_jobs` jobs and about `max_bytes`
    /// bytes of records, events and responses (running jobs are kept even
    /// beyond the limits).
    pub fn with_limits(max_jobs: usize, max_bytes: usize) -> Self {
        MemoryJobStore {
            inner: Mutex::new(Inner::default()),
            changes: ChangeFeed::new(16_384),
            max_jobs: max_jobs.max(1),
            max_bytes,
        }
    }

    /// Number of jobs held.
    pub fn len(&self) -> usize {
        lock(&self.inner).jobs.len()
    }

    /// True when no job is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Approximate bytes held by the jobs.
    pub fn bytes(&self) -> usize {
        lock(&self.inner).bytes
    }

    fn notify(&self, job_id: Uuid, kind: ChangeKind) {
        self.changes.send(JobChange { job_id, kind });
    }

    fn notify_evicted(&self, dropped: Vec<Uuid>) {
        for id in dropped {
            self.notify(id, ChangeKind::Deleted);
        }
    }
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn create(&self, record: Arc<JobRecord>) -> BusResult<u64> {
        let id = record.id;
        let (revision, dropped) = {
            let mut inner = lock(&self.inner);
            inner.revision += 1;
            let revision = inner.revision;
            let bytes = record_size(&record);
            let mut entry = Entry {
                record,
                events: Vec::new(),
                slots: Vec::new(),
                responses: Vec::new(),
                bytes,
                finished: false,
            };
            entry.finished = entry.settles();
            inner.bytes += bytes;
            inner.jobs.insert(id, entry);
            inner.order.push_back(id);
            let dropped = inner.evict(self.max_jobs, self.max_bytes, id);
            // Deleted ids leave holes in `order`; compact when they dominate.
            if inner.order.len() > 2 * inner.jobs.len() + 64 {
                let Inner { jobs, order, .. } = &mut *inner;
                order.retain(|id| jobs.contains_key(id));
            }
            (revision, dropped)
        };
        self.notify_evicted(dropped);
        self.notify(id, ChangeKind::Created);
        Ok(revision)
    }

    async fn get(&self, id: Uuid) -> BusResult<Option<JobSnapshot>> {
        Ok(lock(&self.inner).jobs.get(&id).map(Entry::snapshot))
    }

    async fn record(&self, id: Uuid) -> BusResult<Option<Arc<JobRecord>>> {
        Ok(lock(&self.inner).jobs.get(&id).map(|e| e.record.clone()))
    }

    async fn list(&self) -> BusResult<Vec<JobSnapshot>> {
        let inner = lock(&self.inner);
        Ok(inner
            .order
            .iter()
            .rev()
            .filter_map(|id| inner.jobs.get(id).map(Entry::snapshot))
            .collect())
    }

    async fn delete(&self, id: Uuid) -> BusResult<bool> {
        let removed = {
            let mut inner = lock(&self.inner);
            match inner.jobs.remove(&id) {
                Some(e) => {
                    inner.bytes -= e.bytes;
                    true
                }
                None => false,
            }
        };
        if removed {
            self.notify(id, ChangeKind::Deleted);
        }
        Ok(removed)
    }

    async fn append(
        &self,
        job_id: Uuid,
        slot: &str,
        events: Vec<JobEvent>,
        response: Option<AgentResponse>,
    ) -> BusResult<bool> {
        let kinds: Vec<ChangeKind> = response
            .as_ref()
            .map(|_| ChangeKind::Response)
            .into_iter()
            .chain(events.iter().map(|e| ChangeKind::Event(e.event)))
            .collect();
        let dropped = {
            let mut inner = lock(&self.inner);
            let entry = inner
                .jobs
                .get_mut(&job_id)
                .ok_or_else(|| BusError::NotFound(format!("job {job_id}")))?;
            let in_slot = entry
                .events
                .iter()
                .zip(&entry.slots)
                .filter(|(_, s)| &***s == slot)
                .map(|(e, _)| &**e);
            if only_progress(&events, response.as_ref()) && settled(in_slot) {
                return Ok(false);
            }
            let added = response.as_ref().map_or(0, response_size)
                + events.iter().map(event_size).sum::<usize>();
            let terminal = events.iter().any(|e| e.event.is_terminal());
            // The response goes first: whoever sees the terminal event finds it.
            entry.responses.extend(response.map(Arc::new));
            let slot: Arc<str> = slot.into();
            for e in events {
                entry.events.push(Arc::new(e));
                entry.slots.push(slot.clone());
            }
            entry.bytes += added;
            if terminal && !entry.finished {
                entry.finished = entry.settles();
            }
            inner.bytes += added;
            inner.evict(self.max_jobs, self.max_bytes, job_id)
        };
        self.notify_evicted(dropped);
        for kind in kinds {
            self.notify(job_id, kind);
        }
        Ok(true)
    }

    async fn slot_settled(&self, job_id: Uuid, slot: &str) -> BusResult<bool> {
        let inner = lock(&self.inner);
        Ok(inner.jobs.get(&job_id).is_some_and(|e| {
            settled(
                e.events
                    .iter()
                    .zip(&e.slots)
                    .filter(|(_, s)| &***s == slot)
                    .map(|(ev, _)| &**ev),
            )
        }))
    }

    fn subscribe(&self) -> broadcast::Receiver<JobChange> {
        self.changes.subscribe()
    }

    fn on_change(&self, listener: ChangeListener) {
        self.changes.listen(listener);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::record;
    use osapi_api::records::EventKind;
    use time::OffsetDateTime;

    /// Settles an `_any` job as an agent would, with `bytes` of output.
    async fn finish(store: &MemoryJobStore, id: Uuid, bytes: usize) {
        let response = AgentResponse {
            job_id: id,
            hostname: "web-01".into(),
            status: osapi_api::records::ResponseStatus::Completed,
            data: Some(serde_json::json!({"stdout": "x".repeat(bytes)})),
            changed: false,
            error: None,
            timestamp: OffsetDateTime::now_utc(),
            data_parts: None,
        };
        let done = JobEvent::now(id, EventKind::Completed, "web-01");
        assert!(
            store
                .append(id, crate::ANY_SLOT, vec![done], Some(response))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn retention_drops_oldest_finished() {
        let store = MemoryJobStore::new(2);
        let (a, b, c) = (record(), record(), record());
        let (ida, idb, idc) = (a.id, b.id, c.id);
        let mut rx = store.subscribe();
        store.create(Arc::new(a)).await.unwrap();
        store.create(Arc::new(b)).await.unwrap();
        finish(&store, idb, 10).await;
        store.create(Arc::new(c)).await.unwrap();
        assert!(
            store.get(ida).await.unwrap().is_some(),
            "a running job is never dropped"
        );
        assert!(
            store.get(idb).await.unwrap().is_none(),
            "the oldest finished job goes first"
        );
        let list = store.list().await.unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].record.id, idc, "newest first");
        let mut deleted = Vec::new();
        while let Ok(change) = rx.try_recv() {
            if change.kind == ChangeKind::Deleted {
                deleted.push(change.job_id);
            }
        }
        assert_eq!(deleted, vec![idb], "eviction is announced");
    }

    #[tokio::test]
    async fn byte_budget_drops_oldest_finished_jobs() {
        let store = MemoryJobStore::with_limits(1000, 10 << 20);
        let mut ids = Vec::new();
        for _ in 0..6 {
            let r = record();
            ids.push(r.id);
            store.create(Arc::new(r)).await.unwrap();
            finish(&store, *ids.last().unwrap(), 4 << 20).await;
        }
        assert!(store.bytes() <= 10 << 20, "{} bytes held", store.bytes());
        let newest = store.get(ids[5]).await.unwrap().expect("newest kept");
        let out = newest.responses[0].data.as_ref().unwrap()["stdout"]
            .as_str()
            .unwrap()
            .len();
        assert_eq!(out, 4 << 20, "the newest job keeps its whole output");
        assert!(store.get(ids[0]).await.unwrap().is_none());
        assert_eq!(store.len(), 2);
        // Running jobs stay even past the budget.
        let running = record();
        let rid = running.id;
        store.create(Arc::new(running)).await.unwrap();
        let started = JobEvent::now(rid, EventKind::Started, "web-01");
        store
            .append(rid, crate::ANY_SLOT, vec![started], None)
            .await
            .unwrap();
        for _ in 0..3 {
            let r = record();
            let id = r.id;
            store.create(Arc::new(r)).await.unwrap();
            finish(&store, id, 4 << 20).await;
        }
        assert!(store.get(rid).await.unwrap().is_some());
        assert!(store.delete(rid).await.unwrap());
    }

    #[tokio::test]
    async fn events_notify_subscribers() {
        let store = MemoryJobStore::new(10);
        let r = record();
        let id = r.id;
        store.create(Arc::new(r)).await.unwrap();
        let mut rx = store.subscribe();
        store
            .append(
                id,
                "web-01",
                vec![JobEvent::now(id, EventKind::Started, "web-01")],
                None,
            )
            .await
            .unwrap();
        let change = rx.recv().await.unwrap();
        assert_eq!(change.job_id, id);
        assert_eq!(change.kind, ChangeKind::Event(EventKind::Started));
        assert!(!change.may_settle());
        assert_eq!(store.get(id).await.unwrap().unwrap().events.len(), 1);
        let settled = JobEvent::now(id, EventKind::Lost, "web-01");
        assert!(
            store
                .append(id, "web-01", vec![settled], None)
                .await
                .unwrap()
        );
        let late = JobEvent::now(id, EventKind::Acknowledged, "web-01");
        assert!(
            !store.append(id, "web-01", vec![late], None).await.unwrap(),
            "a settled slot refuses new work"
        );
        let missing = JobEvent::now(Uuid::new_v4(), EventKind::Started, "x");
        assert!(matches!(
            store.append(missing.job_id, "x", vec![missing], None).await,
            Err(BusError::NotFound(_))
        ));
    }
}
