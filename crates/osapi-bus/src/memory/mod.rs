//! The in-memory backend: everything lives in this process. Used by embedded
//! mode (controller and agents in one process) and by tests.

mod audit;
mod jobs;
mod objects;
mod queue;
mod registry;
mod state;
mod status;

use std::sync::Arc;
use std::time::Duration;

pub use audit::MemoryAuditStore;
pub use jobs::MemoryJobStore;
pub use objects::{MemoryFileStateStore, MemoryObjectStore};
pub use queue::MemoryJobQueue;
pub use registry::{MemoryFactStore, MemoryRegistry};
pub use state::MemoryStateStore;
pub use status::MemoryStatus;

use crate::Bus;

/// Limits and lifetimes of the in-memory backend.
#[derive(Debug, Clone)]
pub struct MemoryBusConfig {
    /// How long a registration lives without a heartbeat (default 30 s).
    pub registry_ttl: Duration,
    /// How long facts live without a refresh (default 5 min).
    pub facts_ttl: Duration,
    /// Jobs kept; the oldest are dropped beyond this (default 10 000).
    pub max_jobs: usize,
    /// Bytes of job records, events and responses kept (default 256 MiB):
    /// beyond, the oldest finished jobs are dropped; running jobs never are.
    pub max_job_bytes: usize,
    /// Audit entries kept in each of the three logs (changes, reads,
    /// refused requests; default 10 000), so that a flood of one kind never
    /// pushes the others out.
    pub max_audit_entries: usize,
    /// Bytes each audit log keeps (default 50 MiB, `nats.audit.max_bytes`):
    /// beyond, its oldest entries go.
    pub max_audit_bytes: usize,
    /// Bytes of uploaded files kept (default 1 GiB, `nats.objects.max_bytes`):
    /// an upload past it is refused and nothing stored is lost.
    pub max_object_bytes: u64,
}

impl Default for MemoryBusConfig {
    fn default() -> Self {
        MemoryBusConfig {
            registry_ttl: Duration::from_secs(30),
            facts_ttl: Duration::from_secs(300),
            max_jobs: 10_000,
            max_job_bytes: 256 << 20,
            max_audit_entries: 10_000,
            max_audit_bytes: 50 << 20,
            max_object_bytes: 1 << 30,
        }
    }
}

/// Builder of in-memory buses.
pub struct MemoryBus;

impl MemoryBus {
    /// Creates a bus held in this process. When called inside a tokio runtime
    /// it also starts a task that expires registrations as soon as their TTL
    /// passes (otherwise they expire lazily when read).
    pub fn start(config: MemoryBusConfig) -> Bus {
        let jobs = Arc::new(MemoryJobStore::with_limits(
            config.max_jobs,
            config.max_job_bytes,
        ));
        let registry = Arc::new(MemoryRegistry::new(config.registry_ttl));
        registry::spawn_reaper(&registry);
        let facts = Arc::new(MemoryFactStore::new(config.facts_ttl));
        let state = Arc::new(MemoryStateStore::new());
        let objects = Arc::new(MemoryObjectStore::new(config.max_object_bytes));
        let file_state = Arc::new(MemoryFileStateStore::new());
        let audit = Arc::new(MemoryAuditStore::new(
            config.max_audit_entries,
            config.max_audit_bytes,
        ));
        let status = Arc::new(MemoryStatus {
            jobs: jobs.clone(),
            registry: registry.clone(),
            facts: facts.clone(),
            objects: objects.clone(),
            file_state: file_state.clone(),
            audit: audit.clone(),
        });
        Bus {
            jobs,
            queue: Arc::new(MemoryJobQueue::new()),
            registry,
            facts,
            state,
            objects,
            file_state,
            audit,
            status,
        }
    }
}
