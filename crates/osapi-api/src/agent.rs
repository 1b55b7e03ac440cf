//! Agent data as the REST API shows it (`GET /agent`, `GET /agent/{hostname}`)
//! and the pieces shared with the registry and facts records: interfaces,
//! routes, conditions, states and timeline events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::serde_util::null_as_default;

/// Liveness as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AgentStatus {
    /// Registered and heartbeating.
    #[default]
    Ready,
    /// Known but not heartbeating.
    NotReady,
}

impl AgentStatus {
    /// `Ready` or `NotReady`.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Ready => "Ready",
            AgentStatus::NotReady => "NotReady",
        }
    }
}

impl std::fmt::Display for AgentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for AgentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Scheduling state of an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AgentState {
    /// Taking jobs.
    #[default]
    Ready,
    /// Drain requested; finishing in-flight jobs, taking no new ones.
    Draining,
    /// Drained: no jobs in flight, taking none.
    Cordoned,
}

impl AgentState {
    /// `Ready`, `Draining` or `Cordoned`.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentState::Ready => "Ready",
            AgentState::Draining => "Draining",
            AgentState::Cordoned => "Cordoned",
        }
    }
}

/// Condition type names.
pub mod condition {
    /// Memory use above the threshold.
    pub const MEMORY_PRESSURE: &str = "MemoryPressure";
    /// Load above CPUs × multiplier.
    pub const HIGH_LOAD: &str = "HighLoad";
    /// A filesystem above the threshold.
    pub const DISK_PRESSURE: &str = "DiskPressure";
    /// The agent is older than the controller's minimum
    /// (`api.server.min_agent_version`), or reports no version. Set by the
    /// controller, not the agent, and listed only while it holds.
    pub const VERSION_SKEW: &str = "VersionSkew";
}

/// A health condition of an agent's host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeCondition {
    /// `MemoryPressure`, `HighLoad`, `DiskPressure` (from the agent) or
    /// `VersionSkew` (from the controller).
    #[serde(rename = "type")]
    pub condition_type: String,
    /// True when the condition holds.
    pub status: bool,
    /// Why, when it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When `status` last flipped.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub last_transition_time: OffsetDateTime,
}

/// A network interface of an agent's host.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkInterface {
    /// Interface name.
    pub name: String,
    /// First IPv4 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<String>,
    /// First IPv6 address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<String>,
    /// Hardware address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// `inet`, `inet6` or `dual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
}

/// An IPv4 route of an agent's host.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Route {
    /// Destination network.
    pub destination: String,
    /// Gateway.
    pub gateway: String,
    /// Outgoing interface.
    pub interface: String,
    /// Prefix length as `/N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
    /// Route metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    /// Kernel route flags (hex text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<String>,
}

/// An entry of an agent's timeline (drain, undrain, cordoned …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEvent {
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub timestamp: OffsetDateTime,
    /// Event name.
    pub event: String,
    /// Agent hostname.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// What happened.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Error, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Load averages as the REST API shows them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadAverageResponse {
    /// 1-minute load.
    #[serde(rename = "1min", default)]
    pub one_min: f64,
    /// 5-minute load.
    #[serde(rename = "5min", default)]
    pub five_min: f64,
    /// 15-minute load.
    #[serde(rename = "15min", default)]
    pub fifteen_min: f64,
}

/// Memory as the REST API shows it (bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemoryResponse {
    /// Total.
    #[serde(default)]
    pub total: u64,
    /// Free.
    #[serde(default)]
    pub free: u64,
    /// Used (total − available).
    #[serde(default)]
    pub used: u64,
}

/// Distribution and version as the REST API shows them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OsInfoResponse {
    /// Distribution id.
    #[serde(default)]
    pub distribution: String,
    /// Version id.
    #[serde(default)]
    pub version: String,
}

impl From<&crate::results::LoadResult> for LoadAverageResponse {
    fn from(l: &crate::results::LoadResult) -> Self {
        LoadAverageResponse {
            one_min: l.load1,
            five_min: l.load5,
            fifteen_min: l.load15,
        }
    }
}

impl From<&crate::results::MemoryResult> for MemoryResponse {
    fn from(m: &crate::results::MemoryResult) -> Self {
        MemoryResponse {
            total: m.total,
            free: m.free,
            used: m.used,
        }
    }
}

impl From<&crate::results::OsInfo> for OsInfoResponse {
    fn from(o: &crate::results::OsInfo) -> Self {
        OsInfoResponse {
            distribution: o.distribution.clone(),
            version: o.version.clone(),
        }
    }
}

/// One agent, as `GET /agent` and `GET /agent/{hostname}` return it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentInfo {
    /// Agent hostname (its identity).
    pub hostname: String,
    /// `Ready` while registered.
    #[serde(default)]
    pub status: AgentStatus,
    /// Configured labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub labels: BTreeMap<String, String>,
    /// Last heartbeat.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub registered_at: Option<OffsetDateTime>,
    /// Agent process start.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "time::serde::rfc3339::option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<OffsetDateTime>,
    /// Software version of the agent, as semver with the git commit as
    /// build metadata when known (`0.1.0+8d085288c507`); absent when the
    /// agent reports none (upstream's agents, older records).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// Distribution and version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_info: Option<OsInfoResponse>,
    /// System uptime, `"N days, N hours, N minutes"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime: Option<String>,
    /// Load averages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_average: Option<LoadAverageResponse>,
    /// Memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryResponse>,
    /// CPU architecture, e.g. `x86_64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Kernel release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<String>,
    /// Logical CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_count: Option<u32>,
    /// Fully qualified domain name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    /// `systemd` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_mgr: Option<String>,
    /// `apt`, `dnf`, `yum`, `apk`, `pacman`, `zypper` or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_mgr: Option<String>,
    /// Network interfaces (up, not loopback).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub interfaces: Vec<NetworkInterface>,
    /// Interface of the default route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_interface: Option<String>,
    /// IPv4 routes.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub routes: Vec<Route>,
    /// Custom facts from the agent's configuration.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub facts: BTreeMap<String, Value>,
    /// Scheduling state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<AgentState>,
    /// Health conditions.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub conditions: Vec<NodeCondition>,
    /// Drain/undrain history (single-agent view only).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub timeline: Vec<TimelineEvent>,
}

/// Body of `GET /agent`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListAgentsResponse {
    /// Agents, by hostname.
    #[serde(default, deserialize_with = "null_as_default")]
    pub agents: Vec<AgentInfo>,
    /// Number of agents.
    #[serde(default)]
    pub total: usize,
}

/// Body of drain/undrain replies.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentActionResponse {
    /// What was done.
    pub message: String,
}
