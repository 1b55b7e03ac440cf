//! The OSAPI agent: runs on every managed host, takes jobs from the bus, runs
//! them against the real machine and writes results back.
//!
//! * [`Agent`] / [`AgentHandle`]: start, heartbeat, facts, drain, shutdown.
//! * [`providers`]: what each operation does to the host.
//! * [`facts`], [`conditions`]: what the agent reports about its host.
//! * [`factref`]: `@fact.` references in job data (osapi-api's, re-exported).
//!
//! ```no_run
//! # async fn demo() -> Result<(), osapi_agent::AgentError> {
//! use osapi_agent::{Agent, AgentConfig};
//! use osapi_bus::memory::{MemoryBus, MemoryBusConfig};
//! let bus = MemoryBus::start(MemoryBusConfig::default());
//! let handle = Agent::new(AgentConfig::named("web-01").label("role", "web"), bus)?.start().await?;
//! // … jobs for web-01, role:web, _all and _any now run here …
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod admission;
pub mod conditions;
mod config;
mod freshness;
pub use osapi_api::factref;
pub mod facts;
mod job;
pub mod journal;
pub mod metrics;
pub mod providers;
mod running;
mod runtime;
mod state_dir;
/// File templates: Go's `text/template` (the `osapi-gotemplate` crate).
pub use osapi_gotemplate as template;

pub use config::{AgentConfig, AgentError, AgentSecurity};
pub use runtime::{Agent, AgentHandle};
