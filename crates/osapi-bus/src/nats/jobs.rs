//! Jobs on NATS: immutable records in `<ns>-job-queue` (`jobs.<id>`), and
//! each writer's progress in its own key of `<ns>-job-progress`
//! (`<id>.<slot>`), updated with compare-and-set so writers never lose each
//! other's events. A watch on the progress bucket feeds every controller's
//! waiters, whichever controller or agent wrote.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use async_trait::async_trait;
use futures::StreamExt;
use osapi_api::records::{AgentResponse, EventKind, JobEvent, JobRecord};
use osapi_api::target::sanitize_host;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::Conn;
use super::util::{backend, decode, encode, get_json, keys_with_prefix};
use crate::{BusError, BusResult, ChangeKind, JobChange, JobSnapshot, JobStore};

/// One writer's part of a job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Slot {
    #[serde(default)]
    events: Vec<JobEvent>,
    #[serde(default)]
    responses: Vec<AgentResponse>,
}

/// Slot of controller events.
const API_SLOT: &str = "_api";
/// Slot of the agent that took an `_any` job.
const ANY_SLOT: &str = "_any";
/// Compare-and-set attempts before giving up.
const CAS_ATTEMPTS: usize = 50;

/// Jobs in NATS key-value buckets.
pub struct NatsJobStore {
    records: kv::Store,
    progress: kv::Store,
    /// Slots this process wrote and their revision, so the next append to
    /// them is one compare-and-set instead of a read and a write.
    written: std::sync::Mutex<std::collections::HashMap<String, (u64, Slot)>>,
    changes: broadcast::Sender<JobChange>,
    /// Dropped with the store; stops the watch task.
    _alive: tokio::sync::watch::Sender<()>,
}

fn record_key(id: Uuid) -> String {
    format!("jobs.{id}")
}

fn slot_key(id: Uuid, slot: &str) -> String {
    format!("{id}.{}", sanitize_host(slot))
}

impl NatsJobStore {
    pub(crate) fn start(conn: Arc<Conn>, records: kv::Store, progress: kv::Store) -> Self {
        let changes = broadcast::channel(16_384).0;
        let (alive, stop) = tokio::sync::watch::channel(());
        tokio::spawn(watch_progress(
            conn,
            progress.clone(),
            changes.clone(),
            stop,
        ));
        NatsJobStore {
            records,
            progress,
            written: Default::default(),
            changes,
            _alive: alive,
        }
    }

    async fn slots(&self, record: &JobRecord) -> BusResult<Vec<Slot>> {
        let mut names: Vec<String> = vec![API_SLOT.to_string()];
        if record.is_any() {
            names.push(ANY_SLOT.to_string());
        } else {
            names.extend(record.expected_hosts.iter().cloned());
        }
        let keys: Vec<String> = names.iter().map(|n| slot_key(record.id, n)).collect();
        let reads = keys.iter().map(|k| get_json::<Slot>(&self.progress, k));
        let slots = futures::future::join_all(reads).await;
        let mut out = Vec::with_capacity(slots.len());
        for s in slots {
            match s {
                Ok(Some(slot)) => out.push(slot),
                Ok(None) | Err(BusError::Corrupt(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn snapshot(&self, record: JobRecord, revision: u64) -> BusResult<JobSnapshot> {
        let slots = self.slots(&record).await?;
        let mut events: Vec<JobEvent> = Vec::new();
        let mut responses: Vec<AgentResponse> = Vec::new();
        for slot in slots {
            events.extend(slot.events);
            responses.extend(slot.responses);
        }
        // Slots are read separately: order across them by time (stable).
        events.sort_by_key(|e| e.timestamp);
        responses.sort_by_key(|r| r.timestamp);
        Ok(JobSnapshot {
            record: Arc::new(record),
            revision,
            events: events.into_iter().map(Arc::new).collect(),
            responses: responses.into_iter().map(Arc::new).collect(),
        })
    }
}

#[async_trait]
impl JobStore for NatsJobStore {
    async fn create(&self, record: JobRecord) -> BusResult<u64> {
        let key = record_key(record.id);
        let revision = self
            .records
            .create(&key, encode(&record)?)
            .await
            .map_err(|e| backend(&format!("create job {}", record.id), e))?;
        Ok(revision)
    }

    async fn get(&self, id: Uuid) -> BusResult<Option<JobSnapshot>> {
        let entry = self
            .records
            .entry(record_key(id))
            .await
            .map_err(|e| backend(&format!("get job {id}"), e))?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Ok(None);
        };
        let record: JobRecord = decode(&format!("job {id}"), &entry.value)?;
        self.snapshot(record, entry.revision).await.map(Some)
    }

    async fn record(&self, id: Uuid) -> BusResult<Option<Arc<JobRecord>>> {
        Ok(get_json::<JobRecord>(&self.records, &record_key(id))
            .await?
            .map(Arc::new))
    }

    async fn list(&self) -> BusResult<Vec<JobSnapshot>> {
        let keys = keys_with_prefix(&self.records, "jobs.").await?;
        let records: Vec<JobRecord> = super::util::get_many(&self.records, keys).await?;
        let mut snapshots: Vec<JobSnapshot> = futures::stream::iter(records)
            .map(|r| self.snapshot(r, 0))
            .buffer_unordered(16)
            .filter_map(|s| async move { s.ok() })
            .collect()
            .await;
        snapshots.sort_by(|a, b| b.record.created.cmp(&a.record.created));
        Ok(snapshots)
    }

    async fn delete(&self, id: Uuid) -> BusResult<bool> {
        let key = record_key(id);
        let exists = self.record(id).await?.is_some();
        if exists {
            self.records
                .delete(&key)
                .await
                .map_err(|e| backend(&format!("delete job {id}"), e))?;
        }
        Ok(exists)
    }

    async fn append(
        &self,
        job_id: Uuid,
        slot: &str,
        events: Vec<JobEvent>,
        response: Option<AgentResponse>,
    ) -> BusResult<bool> {
        let key = slot_key(job_id, slot);
        let only_progress = response.is_none() && events.iter().all(|e| !e.event.is_terminal());
        let finishes = !only_progress;
        let merge = |mut current: Slot| {
            current.responses.extend(response.clone());
            current.events.extend(events.iter().cloned());
            current
        };
        let remember = |rev: u64, slot: Slot| {
            let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
            if finishes {
                // The writer is done with this slot.
                written.remove(&key);
            } else {
                if written.len() > 10_000 {
                    written.clear();
                }
                written.insert(key.clone(), (rev, slot));
            }
        };
        // Fast path: the slot as we last wrote it, or a brand-new slot.
        let cached = self.written.lock().unwrap_or_else(|p| p.into_inner()).get(&key).cloned();
        match cached {
            Some((rev, current)) => {
                let next = merge(current);
                if let Ok(rev) = self.progress.update(&key, encode(&next)?, rev).await {
                    remember(rev, next);
                    return Ok(true);
                }
            }
            None => {
                let next = merge(Slot::default());
                match self.progress.create(&key, encode(&next)?).await {
                    Ok(rev) => {
                        remember(rev, next);
                        return Ok(true);
                    }
                    Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
                    Err(e) => return Err(backend(&format!("record progress of job {job_id}"), e)),
                }
            }
        }
        // Someone else wrote the slot (e.g. the controller declared the host lost).
        for _ in 0..CAS_ATTEMPTS {
            let entry = self
                .progress
                .entry(key.clone())
                .await
                .map_err(|e| backend(&format!("read progress of job {job_id}"), e))?;
            let (current, revision) = match entry.filter(|e| e.operation == kv::Operation::Put) {
                Some(e) => (decode::<Slot>(&key, &e.value).unwrap_or_default(), Some(e.revision)),
                None => (Slot::default(), None),
            };
            if only_progress && current.events.iter().any(|e| e.event.is_terminal()) {
                self.written.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
                return Ok(false);
            }
            let next = merge(current);
            let value = encode(&next)?;
            let written = match revision {
                Some(rev) => self.progress.update(&key, value, rev).await.map_err(|e| {
                    (e.kind() == kv::UpdateErrorKind::WrongLastRevision, e.to_string())
                }),
                None => self.progress.create(&key, value).await.map_err(|e| {
                    (e.kind() == kv::CreateErrorKind::AlreadyExists, e.to_string())
                }),
            };
            match written {
                Ok(rev) => {
                    remember(rev, next);
                    return Ok(true);
                }
                Err((true, _)) => continue,
                Err((false, e)) => return Err(backend(&format!("record progress of job {job_id}"), e)),
            }
        }
        Err(BusError::Backend(format!(
            "record progress of job {job_id}: too many concurrent writers to slot {slot}"
        )))
    }

    fn subscribe(&self) -> broadcast::Receiver<JobChange> {
        self.changes.subscribe()
    }
}

/// Forwards progress updates as changes; re-watches after errors and then
/// asks every waiter to look again (updates may have been missed).
async fn watch_progress(
    _conn: Arc<Conn>,
    progress: kv::Store,
    changes: broadcast::Sender<JobChange>,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let watch = tokio::select! {
            _ = stop.changed() => return,
            w = progress.watch_all() => w,
        };
        match watch {
            Ok(mut watch) => {
                backoff = Duration::from_millis(100);
                let _ = changes.send(JobChange {
                    job_id: Uuid::nil(),
                    kind: ChangeKind::Resync,
                });
                loop {
                    let entry = tokio::select! {
                        _ = stop.changed() => return,
                        e = watch.next() => e,
                    };
                    let Some(Ok(entry)) = entry else { break };
                    let Some(id) = entry
                        .key
                        .split('.')
                        .next()
                        .and_then(|s| Uuid::parse_str(s).ok())
                    else {
                        continue;
                    };
                    let kind = if entry.operation != kv::Operation::Put {
                        ChangeKind::Deleted
                    } else {
                        match serde_json::from_slice::<Slot>(&entry.value) {
                            Ok(slot) => {
                                // Report the most significant event of the slot.
                                slot.events
                                    .iter()
                                    .rev()
                                    .find(|e| e.event.is_terminal())
                                    .or(slot.events.last())
                                    .map(|e| ChangeKind::Event(e.event))
                                    .unwrap_or(ChangeKind::Response)
                            }
                            Err(_) => ChangeKind::Event(EventKind::Failed),
                        }
                    };
                    let _ = changes.send(JobChange { job_id: id, kind });
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch job progress; retrying"),
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
