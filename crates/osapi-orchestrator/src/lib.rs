//! Orchestrate operations across OSAPI-managed hosts: declare a DAG of typed
//! steps, run it against a controller, watch a live report, decode typed
//! results per step and per host. The Rust port of osapi-orchestrator.
//!
//! # Quick start
//!
//! A plan that checks the controller, reads a hostname from one agent and
//! runs `uptime` on every agent; then typed results, per step and per host.
//! (Here against an embedded control plane started in the hidden lines; in a
//! program, pass your controller's URL and token, or see the examples.)
//!
//! ```
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let stack = osapi_orchestrator::Embedded::builder().start().await?;
//! # let (url, token) = (stack.url().to_string(), stack.token().to_string());
//! use osapi_orchestrator::prelude::*;
//!
//! let o = Orchestrator::builder(&url, &token).quiet().build()?;
//! let health = o.health_check();
//! let host = o.node_hostname_get("_any").after(&health);
//! let uptime = o.command_exec("_all", "uptime", &[]).after(&health).retry(2);
//!
//! let report = o.run().await?;
//! assert_eq!(report.summary(), "3 steps, 1 changed, 2 unchanged");
//!
//! let h: HostnameResult = report.result(&host)?;
//! assert!(!h.hostname.is_empty());
//! for r in report.host_results(&uptime) {
//!     let out: CommandResult = r.decode()?;
//!     assert!(out.stdout.contains("load average"), "{}: {}", r.hostname, out.stdout);
//! }
//! # stack.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! * Operations: [`Orchestrator`] methods (`node_*`, `network_*`, `command_*`,
//!   `file_*`, `agent_*`, `health_check`, [`Orchestrator::task_fn`]).
//! * Chaining: [`Step`] methods (`after`, `retry`, `when`, `only_if_*`, …).
//! * Results: [`Report`], [`Results`], [`HostResult`], [`types`].
//! * Discovery: [`Orchestrator::discover`], [`Orchestrator::group_by_fact`], [`predicate`].
//! * Output: the terminal renderer ([`render`]) and JSON-lines [`events`].

#![warn(missing_docs)]

mod check;
mod engine;
pub mod error;
pub mod events;
mod guards;
pub mod journal;
mod ops;
mod orchestrator;
mod panics;
mod plan;
pub mod predicate;
pub mod render;
pub mod report;
pub mod results;
mod retry;
pub mod rollout;
mod step;
pub mod types;

pub use error::{DecodeError, PlanError, TaskError};
pub use orchestrator::{DEFAULT_JOB_DEADLINE, Orchestrator, OrchestratorBuilder};
pub use plan::TaskContext;
pub use plan::{ErrorStrategy, HostTolerance};
pub use report::{Report, RunError};
pub use results::{HostResult, HostStatus, Results, StepKey, StepResult, StepStatus};
pub use retry::RetryPolicy;
pub use step::{Step, StepRef, TaskOutput};
pub use tokio_util::sync::CancellationToken;

/// The REST client the orchestrator uses ([`TaskContext::client`] in
/// custom steps) and its error type.
pub use osapi_client::{self as client, Client, ClientError};

/// Operations as types, for [`Orchestrator::op`]: the [`Op`] trait and one
/// type per operation in [`op`].
pub use osapi_api::ops::{Op, op};

/// The zero-setup control plane: a controller on loopback and in-process
/// agents on an in-memory bus (default feature `embedded`).
#[cfg(feature = "embedded")]
pub use osapi_embedded::{self as embedded, Embedded, EmbeddedBuilder, EmbeddedError};

/// Locks `m`, also after a panic elsewhere poisoned it: what it guards
/// (a plan, a writer, pending output) stays usable.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Everything a plan usually needs.
pub mod prelude {
    pub use crate::predicate::*;
    pub use crate::rollout::Rollout;
    pub use crate::types::*;
    pub use crate::{
        CancellationToken, ClientError, DecodeError, ErrorStrategy, HostResult, HostStatus,
        Orchestrator, PlanError, Report, Results, RetryPolicy, RunError, Step, StepRef, StepResult,
        StepStatus, TaskContext, TaskError, TaskOutput,
    };
}

/// The README's Rust examples, compiled as doc tests so they stay correct.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;
