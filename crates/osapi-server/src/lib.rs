//! The OSAPI controller: REST API (upstream-compatible paths, bodies and
//! status codes, at the root and under `/api/`), JWT authentication with
//! per-route permissions, the job service with expected hosts, long-polling
//! and lost-agent detection, the file API, the audit log and our OpenAPI
//! document. The `osapi-embedded` crate runs it with in-process agents on an
//! in-memory bus.

#![warn(missing_docs)]

pub mod auth;
mod config;
mod controller;
pub mod directory;
mod error;
pub mod extract;
pub mod jobs;
pub mod listener;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod version;

/// Locks a mutex, recovering the data if a panicking thread poisoned it
/// (every critical section in this crate leaves the data consistent).
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub use config::{ConnectionLimits, ServerConfig};
pub use controller::{Controller, ServerError};
pub use error::{ApiError, ApiResult};
/// The semver crate, whose `Version` [`ServerConfig::min_agent_version`] holds.
pub use semver;
