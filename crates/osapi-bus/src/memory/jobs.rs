//! In-memory job records, events and responses, with FIFO retention.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use osapi_api::records::{AgentResponse, JobEvent, JobRecord};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::lock;
use crate::traits::{only_progress, settled};
use crate::{BusError, BusResult, ChangeKind, JobChange, JobSnapshot, JobStore};

struct Entry {
    record: Arc<JobRecord>,
    events: Vec<Arc<JobEvent>>,
    /// The slot of each event (same order as `events`).
    slots: Vec<Arc<str>>,
    responses: Vec<Arc<AgentResponse>>,
}

impl Entry {
    fn snapshot(&self) -> JobSnapshot {
        JobSnapshot {
            record: self.record.clone(),
            events: self.events.clone(),
            responses: self.responses.clone(),
        }
    }
}

#[derive(Default)]
struct Inner {
    jobs: HashMap<Uuid, Entry>,
    order: VecDeque<Uuid>,
    revision: u64,
}

/// Jobs held in memory; beyond `max_jobs` the oldest are dropped.
pub struct MemoryJobStore {
    inner: Mutex<Inner>,
    changes: broadcast::Sender<JobChange>,
    max_jobs: usize,
}

impl MemoryJobStore {
    /// An empty store keeping at most `max_jobs` jobs.
    pub fn new(max_jobs: usize) -> Self {
        MemoryJobStore {
            inner: Mutex::new(Inner::default()),
            changes: broadcast::channel(16_384).0,
            max_jobs: max_jobs.max(1),
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

    fn notify(&self, job_id: Uuid, kind: ChangeKind) {
        // No receiver is fine: nobody is waiting.
        let _ = self.changes.send(JobChange { job_id, kind });
    }
}

#[async_trait]
impl JobStore for MemoryJobStore {
    async fn create(&self, record: Arc<JobRecord>) -> BusResult<u64> {
        let id = record.id;
        let revision = {
            let mut inner = lock(&self.inner);
            inner.revision += 1;
            let revision = inner.revision;
            inner.jobs.insert(
                id,
                Entry {
                    record,
                    events: Vec::new(),
                    slots: Vec::new(),
                    responses: Vec::new(),
                },
            );
            inner.order.push_back(id);
            while inner.jobs.len() > self.max_jobs {
                match inner.order.pop_front() {
                    Some(old) => {
                        inner.jobs.remove(&old);
                    }
                    None => break,
                }
            }
            // Deleted ids leave holes in `order`; compact when they dominate.
            if inner.order.len() > 2 * inner.jobs.len() + 64 {
                let Inner { jobs, order, .. } = &mut *inner;
                order.retain(|id| jobs.contains_key(id));
            }
            revision
        };
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
        let removed = lock(&self.inner).jobs.remove(&id).is_some();
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
        {
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
            // The response goes first: whoever sees the terminal event finds it.
            entry.responses.extend(response.map(Arc::new));
            let slot: Arc<str> = slot.into();
            for e in events {
                entry.events.push(Arc::new(e));
                entry.slots.push(slot.clone());
            }
        }
        for kind in kinds {
            self.notify(job_id, kind);
        }
        Ok(true)
    }

    fn subscribe(&self) -> broadcast::Receiver<JobChange> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use osapi_api::ops::JobClass;
    use osapi_api::records::EventKind;
    use time::OffsetDateTime;

    fn record() -> JobRecord {
        JobRecord {
            id: Uuid::new_v4(),
            created: OffsetDateTime::now_utc(),
            operation: serde_json::json!({"type": "node.hostname.get"}),
            op_type: "node.hostname.get".into(),
            class: JobClass::Query,
            target: "_any".into(),
            expected_hosts: vec![],
            deadline: OffsetDateTime::now_utc(),
            retry_of: None,
        }
    }

    #[tokio::test]
    async fn retention_drops_oldest() {
        let store = MemoryJobStore::new(2);
        let a = record();
        let b = record();
        let c = record();
        let (ida, idc) = (a.id, c.id);
        store.create(Arc::new(a)).await.unwrap();
        store.create(Arc::new(b)).await.unwrap();
        store.create(Arc::new(c)).await.unwrap();
        assert!(store.get(ida).await.unwrap().is_none());
        let list = store.list().await.unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].record.id, idc, "newest first");
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
