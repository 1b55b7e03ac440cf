//! REST bodies of the job API: create, get (with `result`, `responses`,
//! `agent_states`, `timeline`), list, queue statistics and retry.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::serde_util::null_as_default;

/// Body of `POST /job`.
///
/// ```
/// use osapi_api::job::CreateJobRequest;
/// use osapi_api::ops::Operation;
/// let req = CreateJobRequest::new(Operation::NodeHostnameGet.as_str(), serde_json::json!({}), "_any");
/// assert_eq!(serde_json::to_value(&req).unwrap()["operation"]["type"], "node.hostname.get");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateJobRequest {
    /// `{"type": "<operation>", "data": {…}}`. Operations that change
    /// hosts take `"dry_run": true` in `data` (check mode: the agent
    /// predicts instead of acting; `file.deploy.execute` returns a
    /// unified `diff`, `network.dns.update` compares, commands do not run
    /// and report `skipped: "check mode"`); `file.deploy.execute` also
    /// takes `"diff": true` to return the diff of a real change; commands
    /// take `creates`, `removes`, `unless` and `only_if` (checked on the
    /// host first). Extensions of ours: upstream's agents ignore them.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub operation: Value,
    /// `_any`, `_all`, a hostname, `key:value`, or hostnames separated by
    /// commas (ours).
    pub target_hostname: String,
    /// Optional deadline for the whole job as a duration (`"90s"`, `"5m"`);
    /// an extension of ours, ignored by upstream servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

impl CreateJobRequest {
    /// Builds a request from an operation type, its data and a target.
    pub fn new(op_type: &str, data: Value, target: &str) -> CreateJobRequest {
        let mut operation = serde_json::Map::new();
        operation.insert("type".into(), Value::String(op_type.to_string()));
        if !data.is_null() {
            operation.insert("data".into(), data);
        }
        CreateJobRequest {
            operation: Value::Object(operation),
            target_hostname: target.to_string(),
            timeout: None,
        }
    }
}

/// Body of the 201 reply to `POST /job` and `POST /job/{id}/retry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateJobResponse {
    /// New job id.
    pub job_id: Uuid,
    /// Always `created`.
    #[serde(default)]
    pub status: String,
    /// Store revision of the job record.
    #[serde(default)]
    pub revision: u64,
    /// Creation time (RFC 3339).
    #[serde(default)]
    pub timestamp: String,
    /// Hosts the job waits for (empty for `_any`); ours.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub expected_hosts: Vec<String>,
}

/// Body of `POST /job/{id}/retry`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetryJobRequest {
    /// New target; `_any` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_hostname: Option<String>,
}

/// Computed status of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Queued; no agent has taken it.
    Submitted,
    /// At least one expected host has not answered yet.
    Processing,
    /// Every expected host succeeded.
    Completed,
    /// Every expected host failed.
    Failed,
    /// Some hosts succeeded, some failed. Terminal.
    PartialFailure,
    /// A status this client does not know.
    #[serde(other)]
    Unknown,
}

impl JobStatus {
    /// True for `completed`, `failed` and `partial_failure`.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Completed | JobStatus::Failed | JobStatus::PartialFailure
        )
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Submitted => "submitted",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::PartialFailure => "partial_failure",
            JobStatus::Unknown => "unknown",
        }
    }

    /// Parses the wire spelling (not `unknown`).
    pub fn parse(s: &str) -> Option<JobStatus> {
        [
            JobStatus::Submitted,
            JobStatus::Processing,
            JobStatus::Completed,
            JobStatus::Failed,
            JobStatus::PartialFailure,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One host's answer inside `responses`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostResponse {
    /// `completed` or `failed`.
    #[serde(default)]
    pub status: String,
    /// Raw agent hostname.
    #[serde(default)]
    pub hostname: String,
    /// Result data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub data: Option<Value>,
    /// Error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Whether the host changed; ours (upstream hides it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
}

/// One host's processing state inside `agent_states`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentJobState {
    /// `acknowledged`, `started`, `completed`, `failed`, or ours: `pending`
    /// (expected, not yet taken), `lost`, `expired`.
    #[serde(default)]
    pub status: String,
    /// Error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Run time as a Go duration (`1.84ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// One entry of a job's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobTimelineEntry {
    /// RFC 3339.
    #[serde(default)]
    pub timestamp: String,
    /// Event name.
    #[serde(default)]
    pub event: String,
    /// Agent hostname or `_api`.
    #[serde(default)]
    pub hostname: String,
    /// Human-readable text.
    #[serde(default)]
    pub message: String,
    /// Error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Body of `GET /job/{id}`, and an item of `GET /job`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobDetail {
    /// Job id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Computed status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The operation as submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub operation: Option<Value>,
    /// Error when the job failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Last agent that finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Time of the latest event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Result data when exactly one agent answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<Value>,
    /// Per-host answers (keyed by sanitised hostname) when several agents answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responses: Option<BTreeMap<String, HostResponse>>,
    /// Per-host processing state, keyed by raw hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_states: Option<BTreeMap<String, AgentJobState>>,
    /// Events in time order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<JobTimelineEntry>>,
    /// The target as submitted; ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Hosts the job waits for; ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_hosts: Option<Vec<String>>,
    /// Whether any host changed; ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
}

impl JobDetail {
    /// The computed status, `Unknown` when absent.
    pub fn status(&self) -> JobStatus {
        self.status.unwrap_or(JobStatus::Unknown)
    }
}

/// Body of `GET /job`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListJobsResponse {
    /// Jobs matching the filter.
    #[serde(default)]
    pub total_items: usize,
    /// The requested page, newest first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub items: Vec<JobDetail>,
}

/// Body of `GET /job/status`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueStats {
    /// Jobs stored.
    #[serde(default)]
    pub total_jobs: usize,
    /// Jobs per computed status.
    #[serde(default)]
    pub status_counts: BTreeMap<String, usize>,
    /// Jobs per operation type.
    #[serde(default)]
    pub operation_counts: BTreeMap<String, usize>,
    /// Dead-lettered jobs (always 0: we never redeliver).
    #[serde(default)]
    pub dlq_count: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_detail_decodes() {
        let body = r#"{"id":"550e8400-e29b-41d4-a716-446655440000","status":"partial_failure","created":"2026-03-06T10:00:00-08:00",
          "operation":{"type":"node.hostname.get","data":{}},
          "responses":{"web_01":{"status":"completed","hostname":"web-01","data":{"hostname":"web-01"}},
                       "db_01":{"status":"failed","hostname":"db-01","error":"boom"}},
          "agent_states":{"web-01":{"status":"completed","duration":"1.84ms"},"db-01":{"status":"failed","error":"boom"}},
          "timeline":[{"timestamp":"2026-03-06T10:00:00-08:00","event":"submitted","hostname":"_api","message":"Job submitted to queue"}]}"#;
        let d: JobDetail = serde_json::from_str(body).unwrap();
        assert_eq!(d.status(), JobStatus::PartialFailure);
        assert!(d.status().is_terminal());
        let r = d.responses.unwrap();
        assert_eq!(r["db_01"].error.as_deref(), Some("boom"));
        assert_eq!(
            d.agent_states.unwrap()["web-01"].duration.as_deref(),
            Some("1.84ms")
        );
    }

    #[test]
    fn unknown_status_is_not_terminal() {
        let d: JobDetail = serde_json::from_str(r#"{"status":"pending"}"#).unwrap();
        assert_eq!(d.status(), JobStatus::Unknown);
        assert!(!d.status().is_terminal());
    }
}
