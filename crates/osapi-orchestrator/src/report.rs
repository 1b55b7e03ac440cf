//! The report of a run: every step's outcome, in plan order, with typed
//! access; and [`RunError`], a run that did not succeed, with its report.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{DecodeError, PlanError};
use crate::results::StepKey;
use crate::results::{HostResult, StepResult, StepStatus};
use crate::step::Step;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Every step, level by level, in declaration order within a level.
    pub steps: Vec<StepResult>,
    /// Wall time of the run.
    #[serde(with = "duration_ms")]
    pub duration: Duration,
}

mod duration_ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

/// Upstream's summary line: `N tasks`, then `, k changed`, `, k unchanged`,
/// `, k skipped`, `, k failed` for non-zero counts, in that order.
///
/// ```
/// use osapi_orchestrator::report::summary_line;
/// use osapi_orchestrator::StepStatus::*;
/// assert_eq!(summary_line([Changed, Unchanged, Skipped, Failed]), "4 steps, 1 changed, 1 unchanged, 1 skipped, 1 failed");
/// assert_eq!(summary_line([Unchanged]), "1 step, 1 unchanged");
/// assert_eq!(summary_line([]), "0 steps");
/// ```
pub fn summary_line(statuses: impl IntoIterator<Item = StepStatus>) -> String {
    let (mut total, mut c, mut u, mut s, mut f) = (0, 0, 0, 0, 0);
    for st in statuses {
        total += 1;
        match st {
            StepStatus::Changed => c += 1,
            StepStatus::Unchanged => u += 1,
            StepStatus::Skipped => s += 1,
            StepStatus::Failed => f += 1,
            StepStatus::Unknown => {}
        }
    }
    let mut out = format!("{total} {}", if total == 1 { "step" } else { "steps" });
    for (n, word) in [
        (c, "changed"),
        (u, "unchanged"),
        (s, "skipped"),
        (f, "failed"),
    ] {
        if n > 0 {
            out.push_str(&format!(", {n} {word}"));
        }
    }
    out
}

impl Report {
    /// `N steps, a changed, b unchanged, c skipped, d failed` (zero counts
    /// left out), then `, e from the journal` for a resumed run.
    pub fn summary(&self) -> String {
        let mut line = summary_line(self.steps.iter().map(|s| s.status));
        let resumed = self.steps.iter().filter(|s| s.from_journal).count();
        if resumed > 0 {
            line.push_str(&format!(", {resumed} from the journal"));
        }
        line
    }

    /// A step by name or handle (`report.step("deploy")`, `report.step(&deploy)`).
    pub fn step(&self, step: impl StepKey) -> Option<&StepResult> {
        let name = step.step_name();
        self.steps.iter().find(|s| s.name == name)
    }

    /// A step by handle.
    pub fn get<T>(&self, step: &Step<T>) -> Option<&StepResult> {
        self.step(step)
    }

    /// The typed result of a step.
    ///
    /// A step that ran on several hosts has no single result: use
    /// [`Report::host_results`] and [`HostResult::decode`].
    pub fn result<T: DeserializeOwned>(&self, step: &Step<T>) -> Result<T, DecodeError> {
        self.decode(step)
    }

    /// Decodes a step's data by name or handle (as upstream's `Decode`).
    pub fn decode<T: DeserializeOwned>(&self, step: impl StepKey) -> Result<T, DecodeError> {
        let name = step.step_name();
        self.step(&name).ok_or(DecodeError::NoStep(name))?.decode()
    }

    /// Per-host outcomes of a step (empty for function steps).
    pub fn host_results<T>(&self, step: &Step<T>) -> &[HostResult] {
        self.get(step)
            .map(|s| s.hosts.as_slice())
            .unwrap_or_default()
    }

    /// Each host's typed result; hosts without data (failed, lost) are errors in the list.
    pub fn results_by_host<T: DeserializeOwned>(
        &self,
        step: &Step<T>,
    ) -> Vec<(String, Result<T, DecodeError>)> {
        self.host_results(step)
            .iter()
            .map(|h| (h.hostname.clone(), h.decode()))
            .collect()
    }

    /// Steps with this status.
    pub fn count(&self, status: StepStatus) -> usize {
        self.steps.iter().filter(|s| s.status == status).count()
    }

    /// True when no step failed.
    pub fn succeeded(&self) -> bool {
        self.count(StepStatus::Failed) == 0
    }
}

/// Why a run did not succeed. Every variant carries the report of what ran.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The plan is invalid; nothing ran.
    #[error("plan validation: {error}")]
    Plan {
        /// What is wrong.
        error: PlanError,
        /// Empty.
        report: Box<Report>,
    },
    /// A step failed and its error strategy stopped the plan.
    #[error("step {step:?} failed: {error}")]
    StepFailed {
        /// The step.
        step: String,
        /// Its error.
        error: String,
        /// What ran, and what was skipped because of the stop.
        report: Box<Report>,
    },
    /// The run was cancelled.
    #[error("run cancelled")]
    Cancelled {
        /// What ran before the cancellation.
        report: Box<Report>,
    },
    /// The run journal could not be opened or read; nothing ran.
    #[error("{error}")]
    Journal {
        /// Which file, and what went wrong.
        error: crate::journal::JournalError,
        /// Empty.
        report: Box<Report>,
    },
}

impl RunError {
    /// The report of what ran.
    pub fn report(&self) -> &Report {
        match self {
            RunError::Plan { report, .. }
            | RunError::StepFailed { report, .. }
            | RunError::Journal { report, .. }
            | RunError::Cancelled { report } => report,
        }
    }

    /// Takes the report.
    pub fn into_report(self) -> Report {
        match self {
            RunError::Plan { report, .. }
            | RunError::StepFailed { report, .. }
            | RunError::Journal { report, .. }
            | RunError::Cancelled { report } => *report,
        }
    }
}
