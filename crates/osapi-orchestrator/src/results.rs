//! Step and host outcomes, and [`Results`]: the live view of finished steps
//! that guards and custom steps read while the plan runs.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::error::DecodeError;

/// Outcome of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Ran and changed something.
    Changed,
    /// Ran and changed nothing.
    Unchanged,
    /// Did not run (the reason is in the report).
    Skipped,
    /// Ran and failed.
    Failed,
    /// No such step, or it has not finished yet.
    Unknown,
}

impl StepStatus {
    /// `changed`, `unchanged`, `skipped`, `failed` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Changed => "changed",
            StepStatus::Unchanged => "unchanged",
            StepStatus::Skipped => "skipped",
            StepStatus::Failed => "failed",
            StepStatus::Unknown => "unknown",
        }
    }
}

/// Outcome of a step on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HostStatus {
    /// Succeeded without changing anything.
    Ok,
    /// Succeeded and changed something.
    Changed,
    /// Failed (agent error, or a command's non-zero exit).
    Failed,
    /// Did not run there.
    Skipped,
    /// The agent vanished (heartbeat expired or restarted) or never answered before the deadline.
    Lost,
}

impl HostStatus {
    /// `ok`, `changed`, `failed`, `skipped` or `lost`.
    pub fn as_str(self) -> &'static str {
        match self {
            HostStatus::Ok => "ok",
            HostStatus::Changed => "changed",
            HostStatus::Failed => "failed",
            HostStatus::Skipped => "skipped",
            HostStatus::Lost => "lost",
        }
    }

    /// True for `failed` and `lost`.
    pub fn is_failure(self) -> bool {
        matches!(self, HostStatus::Failed | HostStatus::Lost)
    }
}

/// What one host did for a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostResult {
    /// Agent hostname.
    pub hostname: String,
    /// Outcome.
    pub status: HostStatus,
    /// Whether it changed something.
    pub changed: bool,
    /// Error text for failed and lost hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The operation's result on this host (`null` when none).
    #[serde(default)]
    pub data: Value,
    /// The job that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
}

impl HostResult {
    /// Decodes this host's data into a typed result.
    ///
    /// ```
    /// use osapi_orchestrator::{HostResult, HostStatus};
    /// use osapi_orchestrator::types::LoadResult;
    /// let h = HostResult {
    ///     hostname: "web-01".into(), status: HostStatus::Ok, changed: false, error: None,
    ///     data: serde_json::json!({"load1": 0.5, "load5": 0.4, "load15": 0.3}), job_id: None,
    /// };
    /// let load: LoadResult = h.decode().unwrap();
    /// assert_eq!(load.load1, 0.5);
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        if self.data.is_null() {
            return Err(DecodeError::NoData {
                step: format!("host {}", self.hostname),
                status: self.status.as_str().to_string(),
            });
        }
        T::deserialize(&self.data).map_err(|e| DecodeError::Invalid {
            step: format!("host {}", self.hostname),
            message: e.to_string(),
        })
    }

    /// True for failed and lost hosts.
    pub fn failed(&self) -> bool {
        self.status.is_failure()
    }
}

/// Everything known about a finished step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    /// Step name.
    pub name: String,
    /// Outcome.
    pub status: StepStatus,
    /// Whether anything changed (any host, for job steps).
    pub changed: bool,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// Result data: a function step's output, or the single host's result of a
    /// job step (`null` when several hosts answered: see `hosts`).
    #[serde(default)]
    pub data: Value,
    /// Per-host outcomes of job steps, by hostname.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostResult>,
    /// Job of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    /// Wall time including retries.
    #[serde(with = "duration_ms")]
    pub duration: Duration,
    /// Attempts made (0 when skipped).
    pub attempts: u32,
    /// 0-based level.
    pub level: usize,
    /// Taken from the run journal by [`crate::Orchestrator::resume_from`]
    /// instead of run again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_journal: bool,
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

impl StepResult {
    /// Decodes the step's data into a typed result.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        if self.data.is_null() {
            if self.hosts.len() > 1 {
                return Err(DecodeError::MultipleHosts {
                    step: self.name.clone(),
                    hosts: self.hosts.len(),
                });
            }
            return Err(DecodeError::NoData {
                step: self.name.clone(),
                status: self.status.as_str().to_string(),
            });
        }
        T::deserialize(&self.data).map_err(|e| DecodeError::Invalid {
            step: self.name.clone(),
            message: e.to_string(),
        })
    }

    /// Hosts that failed or were lost.
    pub fn failed_hosts(&self) -> impl Iterator<Item = &HostResult> {
        self.hosts.iter().filter(|h| h.failed())
    }
}

/// What names a step in lookups: its name (`"deploy"`), or its handle
/// (`&step`, a [`crate::StepRef`]). [`Results`] and [`crate::Report`]
/// take either.
///
/// ```
/// # fn demo(o: &osapi_orchestrator::Orchestrator, results: &osapi_orchestrator::Results) {
/// let deploy = o.health_check().named("deploy");
/// assert_eq!(results.status("deploy"), results.status(&deploy));
/// # }
/// ```
pub trait StepKey {
    /// The step's name.
    fn step_name(&self) -> String;
}

impl StepKey for str {
    fn step_name(&self) -> String {
        self.to_string()
    }
}

impl StepKey for String {
    fn step_name(&self) -> String {
        self.clone()
    }
}

impl<K: StepKey + ?Sized> StepKey for &K {
    fn step_name(&self) -> String {
        (**self).step_name()
    }
}

/// Results of the steps finished so far. Cheap to clone; reads see steps as
/// they finish. A step's own dependencies are always finished when it runs.
#[derive(Clone, Default)]
pub struct Results {
    inner: Arc<RwLock<HashMap<String, Arc<StepResult>>>>,
}

impl Results {
    /// Empty results.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn insert(&self, result: StepResult) -> Arc<StepResult> {
        let result = Arc::new(result);
        self.inner
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(result.name.clone(), result.clone());
        result
    }

    /// A finished step's result, by name or handle.
    pub fn get(&self, step: impl StepKey) -> Option<Arc<StepResult>> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&step.step_name())
            .cloned()
    }

    /// A step's status (`Unknown` when absent or not finished).
    pub fn status(&self, step: impl StepKey) -> StepStatus {
        self.get(step)
            .map(|r| r.status)
            .unwrap_or(StepStatus::Unknown)
    }

    /// Whether a step changed anything.
    pub fn changed(&self, step: impl StepKey) -> bool {
        self.get(step).is_some_and(|r| r.changed)
    }

    /// Decodes a step's data, by name or handle.
    pub fn decode<T: DeserializeOwned>(&self, step: impl StepKey) -> Result<T, DecodeError> {
        let name = step.step_name();
        self.get(&name).ok_or(DecodeError::NoStep(name))?.decode()
    }

    /// Per-host outcomes of a step (empty when absent or not a job step).
    pub fn host_results(&self, step: impl StepKey) -> Vec<HostResult> {
        self.get(step).map(|r| r.hosts.clone()).unwrap_or_default()
    }
}
