//! In-memory audit log with a size cap.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use osapi_api::audit::AuditEntry;
use uuid::Uuid;

use crate::lock;
use crate::traits::merge_newest;
use crate::{AuditStore, BusResult};

/// Audit entries held in memory in three logs of `max` entries each
/// (changes, reads, denied requests; see [`AuditLog`](osapi_api::audit::AuditLog)), so that a flood of
/// one kind only ever pushes out older entries of that kind.
pub struct MemoryAuditStore {
    logs: [Mutex<VecDeque<AuditEntry>>; 3],
    max: usize,
}

impl MemoryAuditStore {
    /// Empty logs keeping at most `max` entries each.
    pub fn new(max: usize) -> Self {
        MemoryAuditStore {
            logs: Default::default(),
            max: max.max(1),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.logs.iter().map(|l| lock(l).len()).sum()
    }

    /// True when the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest `n` entries of every log, newest first.
    fn newest(&self, n: usize) -> Vec<AuditEntry> {
        let logs = self
            .logs
            .iter()
            .map(|l| lock(l).iter().rev().take(n).cloned().collect())
            .collect();
        merge_newest(logs, n)
    }
}

#[async_trait]
impl AuditStore for MemoryAuditStore {
    async fn put(&self, entry: AuditEntry) -> BusResult<()> {
        let mut entries = lock(&self.logs[entry.log().index()]);
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
        Ok(self
            .logs
            .iter()
            .find_map(|l| lock(l).iter().find(|e| e.id == id).cloned()))
    }

    async fn export(&self) -> BusResult<Vec<AuditEntry>> {
        Ok(self.newest(usize::MAX))
    }
}
