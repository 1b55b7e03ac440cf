//! In-memory drain flags and agent timelines.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use osapi_api::agent::TimelineEvent;
use osapi_api::target::sanitize_key;
use tokio::sync::broadcast;

use crate::lock;
use crate::{AgentStateStore, BusResult};

/// Timeline entries kept per agent.
const MAX_TIMELINE: usize = 1000;

/// Drain flags and timelines held in memory.
pub struct MemoryStateStore {
    drained: Mutex<BTreeSet<String>>,
    timelines: Mutex<HashMap<String, Vec<TimelineEvent>>>,
    changes: broadcast::Sender<String>,
}

impl Default for MemoryStateStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStateStore {
    /// No flags, no timelines.
    pub fn new() -> Self {
        MemoryStateStore {
            drained: Mutex::new(BTreeSet::new()),
            timelines: Mutex::new(HashMap::new()),
            changes: broadcast::channel(256).0,
        }
    }
}

#[async_trait]
impl AgentStateStore for MemoryStateStore {
    async fn set_drain(&self, hostname: &str) -> BusResult<()> {
        lock(&self.drained).insert(sanitize_key(hostname));
        let _ = self.changes.send(hostname.to_string());
        Ok(())
    }

    async fn clear_drain(&self, hostname: &str) -> BusResult<()> {
        lock(&self.drained).remove(&sanitize_key(hostname));
        let _ = self.changes.send(hostname.to_string());
        Ok(())
    }

    async fn is_drained(&self, hostname: &str) -> BusResult<bool> {
        Ok(lock(&self.drained).contains(&sanitize_key(hostname)))
    }

    async fn drained(&self) -> BusResult<BTreeSet<String>> {
        Ok(lock(&self.drained).clone())
    }

    async fn append_timeline(&self, event: TimelineEvent) -> BusResult<()> {
        let mut timelines = lock(&self.timelines);
        let list = timelines.entry(sanitize_key(&event.hostname)).or_default();
        list.push(event);
        if list.len() > MAX_TIMELINE {
            let excess = list.len() - MAX_TIMELINE;
            list.drain(..excess);
        }
        Ok(())
    }

    async fn timeline(&self, hostname: &str) -> BusResult<Vec<TimelineEvent>> {
        let mut list = lock(&self.timelines)
            .get(&sanitize_key(hostname))
            .cloned()
            .unwrap_or_default();
        list.sort_by_key(|e| e.timestamp);
        Ok(list)
    }

    fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }
}
