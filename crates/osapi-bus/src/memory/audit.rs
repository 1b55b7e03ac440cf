//! In-memory audit log with a size cap.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use osapi_api::audit::AuditEntry;
use uuid::Uuid;

use crate::lock;
use crate::{AuditStore, BusResult};

/// Audit entries held in memory; beyond the cap the oldest are dropped.
pub struct MemoryAuditStore {
    entries: Mutex<VecDeque<AuditEntry>>,
    max: usize,
}

impl MemoryAuditStore {
    /// An empty log keeping at most `max` entries.
    pub fn new(max: usize) -> Self {
        MemoryAuditStore {
            entries: Mutex::new(VecDeque::new()),
            max: max.max(1),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// True when the log is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl AuditStore for MemoryAuditStore {
    async fn put(&self, entry: AuditEntry) -> BusResult<()> {
        let mut entries = lock(&self.entries);
        entries.push_back(entry);
        while entries.len() > self.max {
            entries.pop_front();
        }
        Ok(())
    }

    async fn list(&self, offset: usize, limit: usize) -> BusResult<(usize, Vec<AuditEntry>)> {
        let entries = lock(&self.entries);
        let page = entries
            .iter()
            .rev()
            .skip(offset)
            .take(limit)
            .cloned()
            .collect();
        Ok((entries.len(), page))
    }

    async fn get(&self, id: Uuid) -> BusResult<Option<AuditEntry>> {
        Ok(lock(&self.entries).iter().find(|e| e.id == id).cloned())
    }

    async fn export(&self) -> BusResult<Vec<AuditEntry>> {
        Ok(lock(&self.entries).iter().rev().cloned().collect())
    }
}
