//! Control-plane state and transport of OSAPI behind traits, so the controller
//! and agents run the same code on every backend.
//!
//! A [`Bus`] bundles one implementation of each store:
//!
//! | trait | holds |
//! |---|---|
//! | [`JobStore`] | job records, their events and agent responses, plus a change feed |
//! | [`JobQueue`] | job notifications: one shared `_any` work queue, one queue per host |
//! | [`Registry`] | agent registrations with a TTL (heartbeats) |
//! | [`FactStore`] | agent facts with a TTL |
//! | [`AgentStateStore`] | drain flags and agent timelines |
//! | [`ObjectStore`] | uploaded files |
//! | [`FileStateStore`] | what each agent deployed where |
//! | [`AuditStore`] | the audit log |
//!
//! Backends: [`memory`] (one process, used by embedded mode and tests) and,
//! with the `nats` feature, `nats` (NATS JetStream, for distributed mode).
//!
//! ```
//! # tokio_test_shim::run(async {
//! use osapi_bus::memory::{MemoryBus, MemoryBusConfig};
//! let bus = MemoryBus::start(MemoryBusConfig::default());
//! assert!(bus.registry.list().await.unwrap().is_empty());
//! # });
//! # mod tokio_test_shim { pub fn run<F: std::future::Future>(f: F) -> F::Output {
//! #   tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f) } }
//! ```

#![warn(missing_docs)]

mod cancel;
mod error;
mod feed;
pub mod memory;
#[cfg(feature = "nats")]
pub mod nats;
pub mod size;
mod traits;

pub use cancel::CancelFeed;
pub use error::{BusError, BusResult};
pub use traits::*;

static ERRORS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Errors the backend returned in this process so far (NATS calls that
/// failed), for the controller's and agents' metrics.
pub fn error_count() -> u64 {
    ERRORS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Counts one backend error.
#[cfg_attr(not(feature = "nats"), allow(dead_code))]
pub(crate) fn count_error() {
    ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it
/// (every critical section in this crate leaves the data consistent).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the stores' unit tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use osapi_api::ops::JobClass;
    use osapi_api::records::JobRecord;
    use time::OffsetDateTime;

    /// A fresh `_any` hostname query, due now.
    pub(crate) fn record() -> JobRecord {
        JobRecord {
            id: uuid::Uuid::new_v4(),
            created: OffsetDateTime::now_utc(),
            operation: serde_json::json!({"type": "node.hostname.get"}),
            op_type: "node.hostname.get".into(),
            class: JobClass::Query,
            target: "_any".into(),
            expected_hosts: vec![],
            deadline: OffsetDateTime::now_utc(),
            retry_of: None,
            signature: None,
            trace_parent: None,
        }
    }
}
