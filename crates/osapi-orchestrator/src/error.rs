//! Error types: building the plan, decoding results, and the error a
//! custom step returns (a failed run is a [`crate::RunError`], with its
//! report). No dependency on the rest of the crate.

/// The plan cannot run as declared. Nothing ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Two steps share a name.
    #[error(
        "duplicate step name {name:?} (steps #{first} and #{second}); rename one with .named(…)"
    )]
    DuplicateName {
        /// The name.
        name: String,
        /// 1-based declaration index of the first step.
        first: usize,
        /// 1-based declaration index of the second step.
        second: usize,
    },
    /// Dependencies form a cycle.
    #[error("cycle detected: {}", path.join(" -> "))]
    Cycle {
        /// Step names along the cycle, first repeated at the end.
        path: Vec<String>,
    },
    /// A step depends on a step of another orchestrator.
    #[error("step {step:?} depends on a step that belongs to another orchestrator")]
    ForeignDependency {
        /// The step with the foreign dependency.
        step: String,
    },
    /// A step's settings are invalid.
    #[error("step {step:?}: {message}")]
    InvalidStep {
        /// The step.
        step: String,
        /// What is wrong.
        message: String,
    },
}

/// A result could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// No step with that name (or it has not finished).
    #[error("no result for {0:?}")]
    NoStep(String),
    /// The step has no data (skipped, failed, or an operation without output).
    #[error("no result data for {step:?} (status: {status})")]
    NoData {
        /// The step.
        step: String,
        /// Its status.
        status: String,
    },
    /// The step ran on several hosts: decode them one by one.
    #[error("step {step:?} ran on {hosts} hosts; decode each with host_results(…)")]
    MultipleHosts {
        /// The step.
        step: String,
        /// Number of hosts.
        hosts: usize,
    },
    /// The data does not match the requested type.
    #[error("decode result data of {step:?}: {message}")]
    Invalid {
        /// The step.
        step: String,
        /// The decoder's message.
        message: String,
    },
}

/// An error returned by a custom step ([`crate::Orchestrator::task_fn`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TaskError(pub String);

impl TaskError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        TaskError(message.into())
    }
}

impl From<osapi_client::ClientError> for TaskError {
    fn from(e: osapi_client::ClientError) -> Self {
        TaskError(e.to_string())
    }
}

impl From<DecodeError> for TaskError {
    fn from(e: DecodeError) -> Self {
        TaskError(e.to_string())
    }
}

impl From<String> for TaskError {
    fn from(s: String) -> Self {
        TaskError(s)
    }
}

impl From<&str> for TaskError {
    fn from(s: &str) -> Self {
        TaskError(s.to_string())
    }
}
