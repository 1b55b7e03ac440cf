//! Records the controller and agents exchange through the bus: job records,
//! job events, agent responses, agent registrations, facts, file state and
//! object metadata. These are internal to an OSAPI deployment (the REST
//! shapes are in [`crate::job`], [`crate::agent`] …).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::agent::{AgentState, NetworkInterface, NodeCondition, Route};
use crate::ops::{ContentType, JobClass};
use crate::results::{LoadResult, MemoryResult, OsInfo};

/// An immutable job definition, written once when the job is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Job id.
    pub id: Uuid,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The operation object as submitted (`{"type": …, "data": …}`).
    pub operation: Value,
    /// `operation.type`.
    pub op_type: String,
    /// Query or modify.
    pub class: JobClass,
    /// The target as submitted.
    pub target: String,
    /// Hosts that must answer, fixed at creation. Empty for `_any`: the agent
    /// that takes the job becomes the one expected host.
    #[serde(default)]
    pub expected_hosts: Vec<String>,
    /// After this instant the job is terminal; unanswered hosts fail.
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
    /// The job this one retries, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<Uuid>,
    /// The controller's signature over the job (see `signing`, feature
    /// `signing`); agents that trust keys run only signed jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<JobSignature>,
    /// The W3C `traceparent` of the request that created the job, when the
    /// controller exports spans: the agent's job span joins its trace.
    /// Not signed (it steers traces, never what runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_parent: Option<String>,
}

/// A controller's signature over a job record: which key, and the Ed25519
/// signature in base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSignature {
    /// Id of the signing key (first 8 bytes of its SHA-256, hex).
    pub key_id: String,
    /// Ed25519 signature, base64.
    pub sig: String,
}

impl JobRecord {
    /// True when exactly one agent, chosen by the queue, runs the job.
    pub fn is_any(&self) -> bool {
        self.target == crate::target::Target::ANY
    }

    /// The `data` object of the operation (`{}` when absent).
    pub fn data(&self) -> Value {
        self.operation
            .get("data")
            .cloned()
            .filter(|v| !v.is_null())
            .unwrap_or_else(|| Value::Object(Default::default()))
    }
}

/// Kinds of job events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// The controller queued the job.
    Submitted,
    /// An agent took the job.
    Acknowledged,
    /// An agent started running it.
    Started,
    /// An agent finished it successfully.
    Completed,
    /// An agent failed it.
    Failed,
    /// The job was retried as a new job.
    Retried,
    /// The controller found the agent gone (heartbeat expired or restarted).
    Lost,
    /// The job's deadline passed before this host answered.
    Expired,
    /// The job was cancelled (`DELETE /job/{id}` while it ran) before this
    /// host answered.
    Cancelled,
}

impl EventKind {
    /// The event name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Submitted => "submitted",
            EventKind::Acknowledged => "acknowledged",
            EventKind::Started => "started",
            EventKind::Completed => "completed",
            EventKind::Failed => "failed",
            EventKind::Retried => "retried",
            EventKind::Lost => "lost",
            EventKind::Expired => "expired",
            EventKind::Cancelled => "cancelled",
        }
    }

    /// True for events that end a host's part in a job.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            EventKind::Completed
                | EventKind::Failed
                | EventKind::Lost
                | EventKind::Expired
                | EventKind::Cancelled
        )
    }
}

/// Hostname used on events written by the controller.
pub const API_HOST: &str = "_api";

/// One event in a job's life.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEvent {
    /// Job id.
    pub job_id: Uuid,
    /// Kind.
    pub event: EventKind,
    /// Agent hostname, or `_api` for controller events.
    pub hostname: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// Agent instance that wrote it (acknowledged/started), to detect restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<Uuid>,
    /// Error text (failed, lost, expired).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Event details.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

impl JobEvent {
    /// A new event stamped now.
    pub fn now(job_id: Uuid, event: EventKind, hostname: impl Into<String>) -> JobEvent {
        JobEvent {
            job_id,
            event,
            hostname: hostname.into(),
            timestamp: OffsetDateTime::now_utc(),
            instance_id: None,
            error: None,
            data: Value::Null,
        }
    }

    /// Sets the error text.
    pub fn with_error(mut self, error: impl Into<String>) -> JobEvent {
        self.error = Some(error.into());
        self
    }

    /// Sets the details.
    pub fn with_data(mut self, data: Value) -> JobEvent {
        self.data = data;
        self
    }

    /// Sets the writing agent instance.
    pub fn with_instance(mut self, instance: Uuid) -> JobEvent {
        self.instance_id = Some(instance);
        self
    }
}

/// Outcome of one agent's run of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseStatus {
    /// The operation succeeded.
    Completed,
    /// The operation failed.
    Failed,
}

impl ResponseStatus {
    /// `completed` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseStatus::Completed => "completed",
            ResponseStatus::Failed => "failed",
        }
    }
}

/// One agent's answer to a job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentResponse {
    /// Job id.
    pub job_id: Uuid,
    /// Agent hostname.
    pub hostname: String,
    /// Outcome.
    pub status: ResponseStatus,
    /// Result data (absent on failure unless the provider returned partial data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// Whether the host was changed.
    #[serde(default)]
    pub changed: bool,
    /// Error text on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// Bus-internal: `data` was too large for one message and is stored in
    /// this many parts beside the response (the NATS backend); readers get
    /// it back whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_parts: Option<u32>,
}

/// What an agent writes into the registry on every heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRegistration {
    /// Agent hostname (its identity).
    pub hostname: String,
    /// Random id of this agent process; changes on restart.
    pub instance_id: Uuid,
    /// Configured labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// This heartbeat.
    #[serde(with = "time::serde::rfc3339")]
    pub registered_at: OffsetDateTime,
    /// Process start.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// Distribution and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_info: Option<OsInfo>,
    /// System uptime in seconds.
    #[serde(default)]
    pub uptime_seconds: u64,
    /// Load averages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadResult>,
    /// Memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryResult>,
    /// Conditions, always MemoryPressure, HighLoad, DiskPressure.
    #[serde(default)]
    pub conditions: Vec<NodeCondition>,
    /// Scheduling state as the agent sees it.
    #[serde(default)]
    pub state: AgentState,
    /// Jobs running right now.
    #[serde(default)]
    pub jobs_in_flight: u32,
    /// Agent software version.
    #[serde(default)]
    pub agent_version: String,
}

/// Facts an agent collects about its host.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Facts {
    /// CPU architecture (`uname -m`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub architecture: String,
    /// Kernel release.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kernel_version: String,
    /// Logical CPUs usable by the agent.
    #[serde(default)]
    pub cpu_count: u32,
    /// Fully qualified domain name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fqdn: String,
    /// Service manager.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_mgr: String,
    /// Package manager.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub package_mgr: String,
    /// Interfaces that are up and not loopback.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<NetworkInterface>,
    /// Interface of the default route.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub primary_interface: String,
    /// IPv4 routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// Custom facts from the agent's configuration.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, Value>,
}

/// What an agent records about a file it deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileState {
    /// Source object.
    pub object_name: String,
    /// Destination path.
    pub path: String,
    /// SHA-256 (hex) of the bytes written.
    pub sha256: String,
    /// Mode applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Owner applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Group applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub deployed_at: OffsetDateTime,
    /// `raw` or `template`.
    pub content_type: ContentType,
}

/// Metadata of an object in the file store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    /// Object name.
    pub name: String,
    /// SHA-256 (lowercase hex) of the content.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// `raw` or `template` (empty when unknown).
    pub content_type: String,
}

/// Default job deadline when neither the request nor the operation says otherwise.
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(300);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is how it fails
    use super::*;

    #[test]
    fn registration_without_a_version_still_parses() {
        // As written by upstream's agents and by ours before they reported
        // their version: no `agent_version`.
        let old = serde_json::json!({
            "hostname": "web-01",
            "instance_id": "6f1c1c86-4a4b-4d0f-9d1e-0c9e2b7f4a11",
            "registered_at": "2026-03-06T10:00:10Z",
            "started_at": "2026-03-06T09:00:00Z",
        });
        let reg: AgentRegistration = serde_json::from_value(old).unwrap();
        assert_eq!(reg.hostname, "web-01");
        assert_eq!(reg.agent_version, "");
        let mut new = serde_json::to_value(&reg).unwrap();
        new["agent_version"] = "0.1.0+8d085288c507".into();
        let reg: AgentRegistration = serde_json::from_value(new).unwrap();
        assert_eq!(reg.agent_version, "0.1.0+8d085288c507");
    }
}
