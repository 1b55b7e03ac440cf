//! In-memory audit log with a size cap.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use osapi_api::audit::AuditEntry;
use uuid::Uuid;

use crate::lock;
use crate::traits::merge_newest;
use crate::{AuditStore, BusResult};

/// Audit entries held in memory in two logs of `max` entries each: allowed
/// requests, and denied ones (401/403), so that a flood of denied requests
/// only ever pushes out older denied entries.
pub struct MemoryAuditStore {
    allowed: Mutex<VecDeque<AuditEntry>>,
    denied: Mutex<VecDeque<AuditEntry>>,
    max: usize,
}

impl MemoryAuditStore {
    /// Empty logs keeping at most `max` entries each.
    pub fn new(max: usize) -> Self {
        MemoryAuditStore {
            allowed: Mutex::new(VecDeque::new()),
            denied: Mutex::new(VecDeque::new()),
            max: max.max(1),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        lock(&self.allowed).len() + lock(&self.denied).len()
    }

    /// True when the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest `n` entries of both logs, newest first.
    fn newest(&self, n: usize) -> Vec<AuditEntry> {
        let allowed = lock(&self.allowed);
        let denied = lock(&self.denied);
        merge_newest(
            allowed.iter().rev().take(n).cloned(),
            denied.iter().rev().take(n).cloned(),
            n,
        )
    }
}

#[async_trait]
impl AuditStore for MemoryAuditStore {
    async fn put(&self, entry: AuditEntry) -> BusResult<()> {
        let log = if entry.denied() {
            &self.denied
        } else {
            &self.allowed
        };
        let mut entries = lock(log);
        entries.push_back(entry);
        while entries.len() > self.max {
            entries.pop_front();
        }
        Ok(())
    }

    async fn list(&self, offset: usize, limit: usize) -> BusResult<(usize, Vec<AuditEntry>)> {
        let page = self
            .newest(offset.saturating_add(limit))
            .into_iter()
            .skip(offset)
            .collect();
        Ok((self.len(), page))
    }

    async fn get(&self, id: Uuid) -> BusResult<Option<AuditEntry>> {
        let find =
            |log: &Mutex<VecDeque<AuditEntry>>| lock(log).iter().find(|e| e.id == id).cloned();
        Ok(find(&self.allowed).or_else(|| find(&self.denied)))
    }

    async fn export(&self) -> BusResult<Vec<AuditEntry>> {
        Ok(self.newest(usize::MAX))
    }
}
