//! Health and statistics of the in-memory backend.

use std::sync::Arc;

use async_trait::async_trait;
use osapi_api::health::{KvBucketInfo, ObjectStoreInfo};

use super::{
    MemoryAuditStore, MemoryFactStore, MemoryFileStateStore, MemoryJobStore, MemoryObjectStore,
    MemoryRegistry,
};
use crate::{BusStats, BusStatus, ComponentCheck, Registry};

/// Reports on the in-memory stores.
pub struct MemoryStatus {
    pub(super) jobs: Arc<MemoryJobStore>,
    pub(super) registry: Arc<MemoryRegistry>,
    pub(super) facts: Arc<MemoryFactStore>,
    pub(super) objects: Arc<MemoryObjectStore>,
    pub(super) file_state: Arc<MemoryFileStateStore>,
    pub(super) audit: Arc<MemoryAuditStore>,
}

#[async_trait]
impl BusStatus for MemoryStatus {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn url(&self) -> String {
        "memory://".to_string()
    }

    fn server_version(&self) -> String {
        osapi_api::VERSION.to_string()
    }

    async fn check(&self) -> Vec<ComponentCheck> {
        vec![ComponentCheck {
            component: "bus".to_string(),
            result: Ok(()),
        }]
    }

    async fn stats(&self) -> BusStats {
        let bucket = |name: &str, keys: usize| KvBucketInfo {
            name: name.to_string(),
            keys: keys as u64,
            bytes: 0,
        };
        let agents = self.registry.list().await.map(|l| l.len()).unwrap_or(0);
        let size = self.objects.usage();
        BusStats {
            streams: Vec::new(),
            kv_buckets: vec![
                bucket("job-queue", self.jobs.len()),
                bucket("agent-registry", agents),
                bucket("agent-facts", self.facts.len()),
                bucket("file-state", self.file_state.len()),
                bucket("audit-log", self.audit.len()),
            ],
            object_stores: vec![ObjectStoreInfo {
                name: "file-objects".to_string(),
                size,
            }],
            consumers: Vec::new(),
        }
    }
}
