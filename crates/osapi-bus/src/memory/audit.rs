//! In-memory audit logs, each capped by entries and by bytes.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use osapi_api::audit::AuditEntry;
use uuid::Uuid;

use crate::lock;
use crate::traits::merge_newest;
use crate::{AuditStore, BusResult};

/// One log: its entries, oldest first, and their approximate bytes.
#[derive(Default)]
struct Log {
    entries: VecDeque<AuditEntry>,
    bytes: usize,
}

/// Audit entries held in memory in three logs (changes, reads, refused
/// requests; see [`AuditLog`](osapi_api::audit::AuditLog)) of at most
/// `max` entries and `max_bytes` bytes each, so that a flood of one kind
/// only ever pushes out older entries of that kind, and memory stays
/// bounded whatever the entries hold.
pub struct MemoryAuditStore {
    logs: [Mutex<Log>; 3],
    max: usize,
    max_bytes: usize,
}

impl MemoryAuditStore {
    /// Empty logs keeping at most `max` entries and `max_bytes` bytes
    /// ([`AuditEntry::approx_bytes`]) each; the newest entry is always kept.
    pub fn new(max: usize, max_bytes: usize) -> Self {
        MemoryAuditStore {
            logs: Default::default(),
            max: max.max(1),
            max_bytes,
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.logs.iter().map(|l| lock(l).entries.len()).sum()
    }

    /// Approximate bytes held by every log.
    pub fn bytes(&self) -> usize {
        self.logs.iter().map(|l| lock(l).bytes).sum()
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
            .map(|l| lock(l).entries.iter().rev().take(n).cloned().collect())
            .collect();
        merge_newest(logs, n)
    }
}

#[async_trait]
impl AuditStore for MemoryAuditStore {
    async fn put(&self, entry: AuditEntry) -> BusResult<()> {
        let mut log = lock(&self.logs[entry.log().index()]);
        log.bytes += entry.approx_bytes();
        log.entries.push_back(entry);
        while log.entries.len() > self.max || (log.bytes > self.max_bytes && log.entries.len() > 1)
        {
            if let Some(old) = log.entries.pop_front() {
                log.bytes = log.bytes.saturating_sub(old.approx_bytes());
            }
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
            .find_map(|l| lock(l).entries.iter().find(|e| e.id == id).cloned()))
    }

    async fn export(&self) -> BusResult<Vec<AuditEntry>> {
        Ok(self.newest(usize::MAX))
    }
}

#[cfg(test)]
mod tests {
    use osapi_api::audit::AuditAction;
    use time::OffsetDateTime;

    use super::*;

    fn entry(method: &str, code: u16, command: &str) -> AuditEntry {
        AuditEntry {
            id: Uuid::new_v4(),
            timestamp: OffsetDateTime::now_utc(),
            user: "u".into(),
            roles: vec![],
            method: method.into(),
            path: "/job".into(),
            operation_id: None,
            source_ip: "127.0.0.1".into(),
            response_code: code,
            duration_ms: 0,
            action: AuditAction {
                command: Some(command.to_string()),
                ..AuditAction::default()
            },
        }
    }

    #[tokio::test]
    async fn each_log_is_bounded_by_bytes_and_keeps_its_newest() {
        let store = MemoryAuditStore::new(10_000, 64 << 10);
        let change = entry("POST", 201, "true");
        store.put(change.clone()).await.unwrap();
        let big = "x".repeat(4000);
        for _ in 0..1000 {
            store.put(entry("GET", 200, &big)).await.unwrap();
            store.put(entry("POST", 400, &big)).await.unwrap();
        }
        // Two logs of at most 64 KiB each, plus the one change.
        assert!(store.bytes() <= 2 * (64 << 10) + change.approx_bytes());
        assert!(store.len() < 40, "{}", store.len());
        assert_eq!(store.get(change.id).await.unwrap(), Some(change));
        // An entry larger than the budget is still kept, alone.
        let huge = entry("POST", 201, &"y".repeat(100 << 10));
        store.put(huge.clone()).await.unwrap();
        assert_eq!(store.get(huge.id).await.unwrap(), Some(huge));
    }
}
