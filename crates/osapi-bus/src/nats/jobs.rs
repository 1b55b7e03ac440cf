//! Jobs on NATS: immutable records in `<ns>-job-queue` (`jobs.<id>`), and
//! each writer's progress in its own key of `<ns>-job-progress`
//! (`<id>.<slot>`), updated with compare-and-set so writers never lose each
//! other's events. On controllers (the first subscriber), a watch on each
//! bucket feeds the change feed, whichever controller or agent wrote:
//! records announce new and deleted jobs, progress feeds the waiters and a
//! byte-bounded cache that saves reads of recent jobs.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use async_trait::async_trait;
use futures::StreamExt;
use osapi_api::records::{AgentResponse, EventKind, JobEvent, JobRecord, ResponseStatus};
use osapi_api::target::sanitize_key;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::util::{Lazy, backend, decode, encode, get_json, keys_with_prefix, scan_map};
use crate::feed::ChangeFeed;
use crate::size::{event_size, response_size};
use crate::traits::{only_progress, settled};
use crate::{
    ANY_SLOT, API_SLOT, BusError, BusResult, ChangeKind, ChangeListener, JobChange, JobSnapshot,
    JobStore,
};

/// One writer's part of a job.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Slot {
    #[serde(default)]
    events: Vec<JobEvent>,
    #[serde(default)]
    responses: Vec<AgentResponse>,
}

/// A slot as the cache keeps it: shared pieces, the revision it was read or
/// written at, and its approximate size.
#[derive(Clone)]
struct CachedSlot {
    events: Vec<Arc<JobEvent>>,
    responses: Vec<Arc<AgentResponse>>,
    revision: u64,
    bytes: usize,
}

impl CachedSlot {
    fn new(slot: Slot, revision: u64) -> Self {
        let bytes = slot.events.iter().map(event_size).sum::<usize>()
            + slot.responses.iter().map(response_size).sum::<usize>();
        CachedSlot {
            events: slot.events.into_iter().map(Arc::new).collect(),
            responses: slot.responses.into_iter().map(Arc::new).collect(),
            revision,
            bytes,
        }
    }
}

/// A slot without response data: what listing and counting need, read
/// without holding every output in memory.
#[derive(Deserialize)]
struct LightSlot {
    #[serde(default)]
    events: Vec<JobEvent>,
    #[serde(default)]
    responses: Vec<LightResponse>,
}

/// An agent response without its data.
#[derive(Deserialize)]
struct LightResponse {
    job_id: Uuid,
    hostname: String,
    status: ResponseStatus,
    #[serde(default)]
    changed: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    timestamp: time::OffsetDateTime,
}

impl From<LightResponse> for AgentResponse {
    fn from(r: LightResponse) -> Self {
        AgentResponse {
            job_id: r.job_id,
            hostname: r.hostname,
            status: r.status,
            data: None,
            changed: r.changed,
            error: r.error,
            timestamp: r.timestamp,
            data_parts: None,
        }
    }
}

/// What this process knows of a job record, and since when.
#[derive(Clone)]
enum Seen {
    /// The record, read or written here (records never change).
    Record(Arc<JobRecord>),
    /// Deleted: a read that started before the deletion must not bring the
    /// record back (job ids are never reused).
    Deleted,
}

/// Job records read or written here, and jobs deleted, bounded in count
/// and age.
#[derive(Default)]
struct RecordCache {
    seen: std::collections::HashMap<Uuid, (Seen, std::time::Instant)>,
}

/// What the record cache says about a job.
enum Cached {
    Record(Arc<JobRecord>),
    Deleted,
    Unknown,
}

impl RecordCache {
    fn put(&mut self, id: Uuid, seen: Seen) {
        if self.seen.len() >= RECORD_CACHE {
            self.seen
                .retain(|_, (_, at)| at.elapsed() < RECORD_CACHE_AGE / 2);
        }
        self.seen.insert(id, (seen, std::time::Instant::now()));
    }

    /// Keeps a record read or written here, unless it was deleted since.
    fn remember(&mut self, record: Arc<JobRecord>) {
        if !matches!(self.seen.get(&record.id), Some((Seen::Deleted, _))) {
            self.put(record.id, Seen::Record(record));
        }
    }

    /// Notes that a job's record is gone.
    fn deleted(&mut self, id: Uuid) {
        self.put(id, Seen::Deleted);
    }

    /// Drops a job's record (it is about to be deleted here); a tombstone
    /// stays (a second deletion must not open the door to a late read).
    fn forget(&mut self, id: Uuid) {
        if matches!(self.seen.get(&id), Some((Seen::Record(_), _))) {
            self.seen.remove(&id);
        }
    }

    /// Drops every record held, keeping tombstones: deletions made while
    /// the records watch was down left none.
    fn forget_records(&mut self) {
        self.seen
            .retain(|_, (seen, _)| matches!(seen, Seen::Deleted));
    }

    fn get(&self, id: Uuid, retention: Duration) -> Cached {
        match self.seen.get(&id) {
            Some((_, at)) if at.elapsed() >= RECORD_CACHE_AGE => Cached::Unknown,
            Some((Seen::Deleted, _)) => Cached::Deleted,
            // Not past the bucket's max-age either: NATS dropped it by then.
            Some((Seen::Record(r), _))
                if retention.is_zero()
                    || r.created + retention > time::OffsetDateTime::now_utc() =>
            {
                Cached::Record(r.clone())
            }
            Some(_) | None => Cached::Unknown,
        }
    }
}

/// Records kept in memory, and for how long.
const RECORD_CACHE: usize = 50_000;
const RECORD_CACHE_AGE: Duration = Duration::from_secs(300);
/// Slots kept in memory, by count and by bytes.
const SLOT_CACHE: usize = 50_000;
const SLOT_CACHE_BYTES: usize = 64 << 20;
/// Jobs created this long after the watch (re)started are read from the
/// cache (covers clock differences between controllers).
const CACHE_MARGIN: Duration = Duration::from_secs(1);

/// Slots seen by the watch since it last (re)started, and slots written
/// here, bounded by count and by bytes.
#[derive(Default)]
struct ProgressCache {
    /// Jobs created after this (plus a margin) had every write seen here;
    /// `None` while the watch is down.
    since: Option<time::OffsetDateTime>,
    slots: std::collections::HashMap<String, CachedSlot>,
    order: std::collections::VecDeque<String>,
    bytes: usize,
}

impl ProgressCache {
    fn restart(&mut self) {
        self.since = Some(time::OffsetDateTime::now_utc());
        self.clear();
    }

    fn stop(&mut self) {
        self.since = None;
        self.clear();
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.order.clear();
        self.bytes = 0;
    }

    /// Keeps `slot` unless a newer revision of it is held already.
    fn put(&mut self, key: String, slot: CachedSlot) {
        let bytes = slot.bytes;
        match self.slots.get_mut(&key) {
            Some(held) if held.revision >= slot.revision => return,
            Some(held) => {
                self.bytes = self.bytes - held.bytes + bytes;
                *held = slot;
            }
            None => {
                self.bytes += bytes;
                self.slots.insert(key.clone(), slot);
                self.order.push_back(key);
            }
        }
        while self.order.len() > SLOT_CACHE || self.bytes > SLOT_CACHE_BYTES {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            let Some(evicted) = self.slots.remove(&old) else {
                continue;
            };
            self.bytes -= evicted.bytes;
            // Jobs created before now are read from NATS from now on: the
            // evicted slot's own times come from an agent's clock, which
            // cannot be trusted to order it against the job's creation.
            if let Some(since) = self.since.as_mut() {
                *since = (*since).max(time::OffsetDateTime::now_utc());
            }
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(old) = self.slots.remove(key) {
            self.bytes -= old.bytes;
        }
    }

    /// Replaces a held slot by the same revision completed (its parts read).
    fn replace(&mut self, key: &str, slot: &CachedSlot) {
        if let Some(held) = self.slots.get_mut(key)
            && held.revision == slot.revision
        {
            let bytes = slot
                .responses
                .iter()
                .map(|r| response_size(r))
                .sum::<usize>()
                + slot.events.iter().map(|e| event_size(e)).sum::<usize>();
            self.bytes = self.bytes - held.bytes + bytes;
            *held = CachedSlot {
                bytes,
                ..slot.clone()
            };
        }
    }

    /// True when every write to a job created at `created` went through the watch.
    fn covers(&self, created: time::OffsetDateTime) -> bool {
        self.since
            .is_some_and(|since| created > since + CACHE_MARGIN)
    }
}

/// Largest part of a response's data.
const MAX_PART: usize = 512 * 1024;

/// Key of part `n` of the response data of slot `key`.
fn part_key(key: &str, n: u32) -> String {
    format!("{key}.part.{n}")
}

/// True for slot keys (`<id>.<slot>`), not response parts.
fn is_slot_key(key: &str) -> bool {
    key.split('.').count() == 2
}

/// Compare-and-set attempts before giving up.
const CAS_ATTEMPTS: usize = 50;

/// Jobs in NATS key-value buckets.
pub struct NatsJobStore {
    records: Arc<Lazy<kv::Store>>,
    progress: kv::Store,
    /// Slots this process wrote and their revision, so the next append to
    /// them is one compare-and-set instead of a read and a write.
    written: std::sync::Mutex<std::collections::HashMap<String, (u64, Slot)>>,
    changes: Arc<ChangeFeed>,
    /// Starts the watch on the first subscriber (agents never subscribe, so
    /// they do not receive every job's progress).
    watcher: std::sync::Mutex<Option<tokio::sync::watch::Receiver<()>>>,
    /// What the watch has seen, so reads of recent jobs need no round trip.
    cache: Arc<std::sync::Mutex<ProgressCache>>,
    /// Job records read or written here, and jobs deleted (a deletion is
    /// noted here before it is announced).
    records_seen: Arc<std::sync::Mutex<RecordCache>>,
    /// How long records live (the bucket's max-age; zero: forever).
    retention: Duration,
    /// Response data larger than this is stored in parts of this size
    /// (half the server's largest message).
    part_size: usize,
    /// Dropped with the store; stops the watch task.
    _alive: tokio::sync::watch::Sender<()>,
}

fn record_key(id: Uuid) -> String {
    format!("jobs.{id}")
}

fn slot_key(id: Uuid, slot: &str) -> String {
    format!("{id}.{}", sanitize_key(slot))
}

impl NatsJobStore {
    pub(crate) fn start(
        records: Arc<Lazy<kv::Store>>,
        progress: kv::Store,
        retention: Duration,
        max_payload: usize,
    ) -> Self {
        let changes = Arc::new(ChangeFeed::new(16_384));
        let (alive, stop) = tokio::sync::watch::channel(());
        NatsJobStore {
            records,
            progress,
            written: Default::default(),
            changes,
            watcher: std::sync::Mutex::new(Some(stop)),
            cache: Arc::default(),
            records_seen: Default::default(),
            retention,
            part_size: (max_payload / 2).clamp(4096, MAX_PART),
            _alive: alive,
        }
    }

    fn remember_record(&self, record: Arc<JobRecord>) {
        crate::lock(&self.records_seen).remember(record);
    }

    async fn slots(&self, record: &JobRecord) -> BusResult<Vec<CachedSlot>> {
        let mut keys = vec![slot_key(record.id, API_SLOT)];
        if record.is_any() {
            keys.push(slot_key(record.id, ANY_SLOT));
        } else {
            keys.extend(record.expected_hosts.iter().map(|h| slot_key(record.id, h)));
        }
        let cached = {
            let cache = crate::lock(&self.cache);
            cache.covers(record.created).then(|| {
                keys.iter()
                    .filter_map(|k| cache.slots.get(k).map(|s| (k.clone(), s.clone())))
                    .collect::<Vec<_>>()
            })
        };
        let slots = match cached {
            Some(slots) => slots,
            None => {
                let read = futures::future::try_join_all(keys.into_iter().map(|key| async move {
                    let slot = match get_json::<Slot>(&self.progress, &key).await {
                        Ok(slot) => slot,
                        // An undecodable slot is left out, as a missing one.
                        Err(BusError::Corrupt(_)) => None,
                        Err(e) => return Err(e),
                    };
                    Ok(slot.map(|s| (key, CachedSlot::new(s, 0))))
                }))
                .await?;
                read.into_iter().flatten().collect()
            }
        };
        let mut resolved = Vec::with_capacity(slots.len());
        for (key, slot) in slots {
            resolved.push(self.whole(&key, slot).await?);
        }
        Ok(resolved)
    }

    /// `slot` with the data of responses stored in parts read back.
    async fn whole(&self, key: &str, mut slot: CachedSlot) -> BusResult<CachedSlot> {
        if !slot
            .responses
            .iter()
            .any(|r| r.data.is_none() && r.data_parts.is_some())
        {
            return Ok(slot);
        }
        for r in &mut slot.responses {
            let (None, Some(parts)) = (&r.data, r.data_parts) else {
                continue;
            };
            let mut bytes = Vec::new();
            for n in 0..parts {
                let part = self
                    .progress
                    .get(part_key(key, n))
                    .await
                    .map_err(|e| backend("read the parts of a response", e))?
                    .ok_or_else(|| BusError::Corrupt(format!("part {n} of {key} is missing")))?;
                bytes.extend_from_slice(&part);
            }
            let data = decode::<serde_json::Value>(key, &bytes)?;
            let mut whole = (**r).clone();
            whole.data = Some(data);
            whole.data_parts = None;
            *r = Arc::new(whole);
        }
        // Kept whole for the next reader.
        crate::lock(&self.cache).replace(key, &slot);
        Ok(slot)
    }

    async fn snapshot(&self, record: Arc<JobRecord>) -> BusResult<JobSnapshot> {
        let slots = self.slots(&record).await?;
        Ok(assemble(
            record,
            slots.into_iter().map(|s| (s.events, s.responses)),
        ))
    }
}

/// A snapshot from a job's slots, read separately: events and responses are
/// ordered across slots by time (stable).
fn assemble(
    record: Arc<JobRecord>,
    slots: impl IntoIterator<Item = (Vec<Arc<JobEvent>>, Vec<Arc<AgentResponse>>)>,
) -> JobSnapshot {
    let mut events = Vec::new();
    let mut responses = Vec::new();
    for (e, r) in slots {
        events.extend(e);
        responses.extend(r);
    }
    events.sort_by_key(|e| e.timestamp);
    responses.sort_by_key(|r| r.timestamp);
    JobSnapshot {
        record,
        events,
        responses,
    }
}

#[async_trait]
impl JobStore for NatsJobStore {
    async fn create(&self, record: Arc<JobRecord>) -> BusResult<u64> {
        let revision = self
            .records
            .get()
            .await?
            .create(record_key(record.id), encode(&*record)?)
            .await
            .map_err(|e| backend(&format!("create job {}", record.id), e))?;
        self.remember_record(record);
        Ok(revision)
    }

    async fn get(&self, id: Uuid) -> BusResult<Option<JobSnapshot>> {
        let Some(record) = self.record(id).await? else {
            return Ok(None);
        };
        self.snapshot(record).await.map(Some)
    }

    async fn record(&self, id: Uuid) -> BusResult<Option<Arc<JobRecord>>> {
        match crate::lock(&self.records_seen).get(id, self.retention) {
            Cached::Record(r) => return Ok(Some(r)),
            Cached::Deleted => return Ok(None),
            Cached::Unknown => {}
        }
        let record = get_json::<JobRecord>(self.records.get().await?, &record_key(id))
            .await?
            .map(Arc::new);
        if let Some(r) = &record {
            self.remember_record(r.clone());
        }
        Ok(record)
    }

    async fn list(&self) -> BusResult<Vec<JobSnapshot>> {
        // Two passes through the buckets' streams; response data is skipped.
        let records = self.records.get().await?;
        let (records, slots) = tokio::try_join!(
            scan_map(records, |key, value| {
                key.starts_with("jobs.")
                    .then(|| serde_json::from_slice::<JobRecord>(&value).ok())
                    .flatten()
            }),
            scan_map(&self.progress, |key, value| {
                if !is_slot_key(&key) {
                    return None;
                }
                let id = key
                    .split('.')
                    .next()
                    .and_then(|s| Uuid::parse_str(s).ok())?;
                let slot: LightSlot = serde_json::from_slice(&value).ok()?;
                Some((id, slot))
            })
        )?;
        let mut by_job: std::collections::HashMap<Uuid, Vec<LightSlot>> =
            std::collections::HashMap::new();
        for (id, slot) in slots {
            by_job.entry(id).or_default().push(slot);
        }
        let mut snapshots: Vec<JobSnapshot> = records
            .into_iter()
            .map(|record| {
                let slots = by_job.remove(&record.id).unwrap_or_default();
                assemble(
                    Arc::new(record),
                    slots.into_iter().map(|s| {
                        (
                            s.events.into_iter().map(Arc::new).collect(),
                            s.responses
                                .into_iter()
                                .map(|r| Arc::new(AgentResponse::from(r)))
                                .collect(),
                        )
                    }),
                )
            })
            .collect();
        snapshots.sort_by_key(|s| std::cmp::Reverse(s.record.created));
        Ok(snapshots)
    }

    async fn delete(&self, id: Uuid) -> BusResult<bool> {
        let key = record_key(id);
        crate::lock(&self.records_seen).forget(id);
        // Read from NATS, not through the cache (which would keep it).
        let exists = get_json::<JobRecord>(self.records.get().await?, &key)
            .await?
            .is_some();
        if !exists {
            return Ok(false);
        }
        // Progress first: a reader never finds slots without a record to
        // explain them... and then the record.
        for slot in keys_with_prefix(&self.progress, &format!("{id}.")).await? {
            self.progress
                .purge(&slot)
                .await
                .map_err(|e| backend(&format!("delete progress of job {id}"), e))?;
            crate::lock(&self.cache).remove(&slot);
        }
        self.records
            .get()
            .await?
            .purge(&key)
            .await
            .map_err(|e| backend(&format!("delete job {id}"), e))?;
        crate::lock(&self.records_seen).deleted(id);
        Ok(true)
    }

    fn retention(&self) -> Option<Duration> {
        (!self.retention.is_zero()).then_some(self.retention)
    }

    async fn append(
        &self,
        job_id: Uuid,
        slot: &str,
        events: Vec<JobEvent>,
        response: Option<AgentResponse>,
    ) -> BusResult<bool> {
        let key = slot_key(job_id, slot);
        let only_progress = only_progress(&events, response.as_ref());
        // Data too large for one message goes first, in parts beside the
        // slot: whoever sees the response finds them.
        let response = match response {
            Some(mut r) => {
                if let Some(data) = &r.data {
                    let bytes = encode(data)?;
                    if bytes.len() > self.part_size {
                        let mut count = 0u32;
                        for (n, chunk) in bytes.chunks(self.part_size).enumerate() {
                            let n = u32::try_from(n)
                                .map_err(|_| BusError::Backend("response data too large".into()))?;
                            self.progress
                                .put(part_key(&key, n), bytes.slice_ref(chunk))
                                .await
                                .map_err(|e| {
                                    backend(&format!("store the output of job {job_id}"), e)
                                })?;
                            count = n + 1;
                        }
                        r.data = None;
                        r.data_parts = Some(count);
                    }
                }
                Some(r)
            }
            None => None,
        };
        let finishes = !only_progress;
        let merge = |mut current: Slot| {
            current.responses.extend(response.clone());
            current.events.extend(events.iter().cloned());
            current
        };
        let remember = |rev: u64, slot: Slot| {
            // Our own write is the slot's newest value: reads right after it
            // (a controller settling a job, then showing it) must see it.
            // Only controllers (whose watch runs) read from the cache.
            let mut cache = crate::lock(&self.cache);
            if cache.since.is_some() {
                cache.put(key.clone(), CachedSlot::new(slot.clone(), rev));
            }
            drop(cache);
            let mut written = crate::lock(&self.written);
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
        let cached = crate::lock(&self.written).get(&key).cloned();
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
                Some(e) => (
                    decode::<Slot>(&key, &e.value).unwrap_or_default(),
                    Some(e.revision),
                ),
                None => (Slot::default(), None),
            };
            if only_progress && settled(&current.events) {
                crate::lock(&self.written).remove(&key);
                return Ok(false);
            }
            let next = merge(current);
            let value = encode(&next)?;
            let written = match revision {
                Some(rev) => self.progress.update(&key, value, rev).await.map_err(|e| {
                    (
                        e.kind() == kv::UpdateErrorKind::WrongLastRevision,
                        e.to_string(),
                    )
                }),
                None => self.progress.create(&key, value).await.map_err(|e| {
                    (
                        e.kind() == kv::CreateErrorKind::AlreadyExists,
                        e.to_string(),
                    )
                }),
            };
            match written {
                Ok(rev) => {
                    remember(rev, next);
                    return Ok(true);
                }
                Err((true, _)) => continue,
                Err((false, e)) => {
                    return Err(backend(&format!("record progress of job {job_id}"), e));
                }
            }
        }
        Err(BusError::Backend(format!(
            "record progress of job {job_id}: too many concurrent writers to slot {slot}"
        )))
    }

    async fn slot_settled(&self, job_id: Uuid, slot: &str) -> BusResult<bool> {
        let slot: Option<Slot> = get_json(&self.progress, &slot_key(job_id, slot)).await?;
        Ok(slot.is_some_and(|s| settled(&s.events)))
    }

    fn subscribe(&self) -> broadcast::Receiver<JobChange> {
        let rx = self.changes.subscribe();
        self.watch();
        rx
    }

    fn on_change(&self, listener: ChangeListener) {
        self.changes.listen(listener);
        self.watch();
    }
}

impl NatsJobStore {
    /// Starts watching the buckets, once (on the first subscriber or listener).
    fn watch(&self) {
        if let Some(stop) = crate::lock(&self.watcher).take() {
            tokio::spawn(watch_records(
                self.records.clone(),
                self.changes.clone(),
                self.records_seen.clone(),
                stop.clone(),
            ));
            tokio::spawn(watch_progress(
                self.progress.clone(),
                self.changes.clone(),
                self.cache.clone(),
                stop,
            ));
        }
    }
}

/// Forwards progress updates as changes; re-watches after errors and then
/// asks every waiter to look again (updates may have been missed).
async fn watch_progress(
    progress: kv::Store,
    changes: Arc<ChangeFeed>,
    cache: Arc<std::sync::Mutex<ProgressCache>>,
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
                // From now on the watch sees every write: jobs created a while
                // after this instant can be read from the cache.
                crate::lock(&cache).restart();
                changes.send(JobChange {
                    job_id: Uuid::nil(),
                    kind: ChangeKind::Resync,
                });
                loop {
                    let entry = tokio::select! {
                        _ = stop.changed() => return,
                        e = watch.next() => e,
                    };
                    let Some(Ok(entry)) = entry else { break };
                    if !is_slot_key(&entry.key) {
                        continue;
                    }
                    let Some(id) = entry
                        .key
                        .split('.')
                        .next()
                        .and_then(|s| Uuid::parse_str(s).ok())
                    else {
                        continue;
                    };
                    let kind = if entry.operation != kv::Operation::Put {
                        crate::lock(&cache).remove(&entry.key);
                        ChangeKind::Deleted
                    } else {
                        match serde_json::from_slice::<Slot>(&entry.value) {
                            Ok(slot) => {
                                // Report the most significant event of the slot.
                                let kind = slot
                                    .events
                                    .iter()
                                    .rev()
                                    .find(|e| e.event.is_terminal())
                                    .or(slot.events.last())
                                    .map(|e| ChangeKind::Event(e.event))
                                    .unwrap_or(ChangeKind::Response);
                                // Cache first, then announce: a woken waiter reads the new value.
                                crate::lock(&cache)
                                    .put(entry.key.clone(), CachedSlot::new(slot, entry.revision));
                                kind
                            }
                            Err(_) => ChangeKind::Event(EventKind::Failed),
                        }
                    };
                    changes.send(JobChange { job_id: id, kind });
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch job progress; retrying"),
        }
        // Writes may be missed until the watch is back: read from NATS meanwhile.
        crate::lock(&cache).stop();
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Announces jobs created and deleted through any controller (the records
/// bucket); re-watches after errors and then asks for a resync.
async fn watch_records(
    records: Arc<Lazy<kv::Store>>,
    changes: Arc<ChangeFeed>,
    records_seen: Arc<std::sync::Mutex<RecordCache>>,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let watch = tokio::select! {
            _ = stop.changed() => return,
            w = async {
                match records.get().await {
                    Ok(r) => r.watch("jobs.>").await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            } => w,
        };
        match watch {
            Ok(mut watch) => {
                backoff = Duration::from_millis(100);
                // Deletions while the watch was down left no tombstone.
                crate::lock(&records_seen).forget_records();
                changes.send(JobChange {
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
                        .strip_prefix("jobs.")
                        .and_then(|s| Uuid::parse_str(s).ok())
                    else {
                        continue;
                    };
                    let kind = if entry.operation == kv::Operation::Put {
                        ChangeKind::Created
                    } else {
                        // Forget it first: whoever reads it on this news must
                        // find it gone.
                        crate::lock(&records_seen).deleted(id);
                        ChangeKind::Deleted
                    };
                    changes.send(JobChange { job_id: id, kind });
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch job records; retrying"),
        }
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Arc<JobRecord> {
        Arc::new(crate::test_support::record())
    }

    #[test]
    fn a_read_that_raced_a_deletion_does_not_bring_the_record_back() {
        let mut cache = RecordCache::default();
        let r = record();
        cache.remember(r.clone());
        assert!(matches!(cache.get(r.id, Duration::ZERO), Cached::Record(_)));
        cache.deleted(r.id);
        // A reader that fetched the record before the purge finishes late.
        cache.remember(r.clone());
        assert!(matches!(cache.get(r.id, Duration::ZERO), Cached::Deleted));
        // A second deletion (a retried DELETE) keeps the tombstone.
        cache.forget(r.id);
        cache.remember(r.clone());
        assert!(matches!(cache.get(r.id, Duration::ZERO), Cached::Deleted));
    }

    #[test]
    fn a_restarted_watch_drops_records_and_keeps_tombstones() {
        let mut cache = RecordCache::default();
        let (kept, gone) = (record(), record());
        cache.remember(kept.clone());
        cache.deleted(gone.id);
        cache.forget_records();
        assert!(matches!(
            cache.get(kept.id, Duration::ZERO),
            Cached::Unknown
        ));
        assert!(matches!(
            cache.get(gone.id, Duration::ZERO),
            Cached::Deleted
        ));
    }

    #[test]
    fn records_past_the_bucket_retention_are_not_served() {
        let mut cache = RecordCache::default();
        let mut old = (*record()).clone();
        old.created -= Duration::from_secs(60);
        let old = Arc::new(old);
        cache.remember(old.clone());
        assert!(matches!(
            cache.get(old.id, Duration::from_secs(30)),
            Cached::Unknown
        ));
        assert!(matches!(
            cache.get(old.id, Duration::ZERO),
            Cached::Record(_)
        ));
    }
}
