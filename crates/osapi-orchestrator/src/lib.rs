//! Orchestrate operations across OSAPI-managed hosts: declare a DAG of typed
//! steps, run it against a controller, watch a live report, decode typed
//! results per step and per host. The Rust port of osapi-orchestrator.
//!
//! ```no_run
//! use osapi_orchestrator::prelude::*;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let o = Orchestrator::new("http://127.0.0.1:8080", "<token>")?;
//! let health = o.health_check();
//! let host = o.node_hostname_get("_any").after(&health);
//! let uptime = o.command_exec("_all", "uptime", &[]).after(&health).retry(2);
//! let report = o.run().await?;
//! println!("{}", report.summary());
//! let h: HostnameResult = report.result(&host)?;
//! for r in report.host_results(&uptime) {
//!     let out: CommandResult = r.decode()?;
//!     println!("{}: {}", r.hostname, out.stdout.trim());
//! }
//! # let _ = h;
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

mod engine;
pub mod error;
pub mod events;
mod guards;
mod ops;
mod orchestrator;
mod plan;
pub mod predicate;
pub mod render;
pub mod report;
pub mod results;
mod retry;
mod step;
pub mod types;

pub use error::{DecodeError, PlanError, RunError, TaskError};
pub use orchestrator::{Orchestrator, OrchestratorBuilder};
pub use plan::{ErrorStrategy, HostTolerance};
pub use report::Report;
pub use results::{HostResult, HostStatus, Results, StepResult, StepStatus};
pub use retry::RetryPolicy;
pub use step::{Step, StepRef, TaskContext, TaskOutput};
pub use tokio_util::sync::CancellationToken;

/// Everything a plan usually needs.
pub mod prelude {
    pub use crate::predicate::*;
    pub use crate::types::*;
    pub use crate::{
        CancellationToken, ErrorStrategy, HostResult, HostStatus, Orchestrator, Report, Results,
        RetryPolicy, RunError, Step, StepStatus, TaskContext, TaskError, TaskOutput,
    };
}
