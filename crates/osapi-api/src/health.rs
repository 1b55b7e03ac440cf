//! REST bodies of the health endpoints.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::serde_util::null_as_default;

/// Body of `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthResponse {
    /// Always `ok`.
    pub status: String,
}

/// Body of `GET /health/ready`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadyResponse {
    /// `ready` or `not_ready`.
    pub status: String,
    /// Why not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Health of one component.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComponentHealth {
    /// `ok` or `error`.
    pub status: String,
    /// Why not ok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Message bus server details.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NatsInfo {
    /// Server URL (or `memory://` for the embedded bus).
    pub url: String,
    /// Server version.
    pub version: String,
}

/// Stream statistics.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamInfo {
    /// Stream name.
    pub name: String,
    /// Messages held.
    pub messages: u64,
    /// Bytes held.
    pub bytes: u64,
    /// Consumers.
    pub consumers: u64,
}

/// Key-value bucket statistics.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KvBucketInfo {
    /// Bucket name.
    pub name: String,
    /// Values held.
    pub keys: u64,
    /// Bytes held.
    pub bytes: u64,
}

/// Object store statistics.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObjectStoreInfo {
    /// Store name.
    pub name: String,
    /// Bytes held.
    pub size: u64,
}

/// Job counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobStats {
    /// Jobs stored.
    pub total: u64,
    /// Not yet taken.
    pub unprocessed: u64,
    /// Running.
    pub processing: u64,
    /// Completed.
    pub completed: u64,
    /// Failed (including partial failures).
    pub failed: u64,
    /// Dead-lettered.
    pub dlq: u64,
}

/// One agent in the health summary.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentDetail {
    /// Hostname.
    pub hostname: String,
    /// `k=v` pairs joined by `, `.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// Age of the last heartbeat, e.g. `7s ago`.
    pub registered: String,
}

/// Agent counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentStats {
    /// Registered agents.
    pub total: u64,
    /// Agents in state Ready.
    pub ready: u64,
    /// Per-agent summary.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub agents: Vec<AgentDetail>,
}

/// Consumer statistics.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumerDetail {
    /// Consumer name.
    pub name: String,
    /// Messages not yet delivered.
    pub pending: u64,
    /// Delivered, not acknowledged.
    pub ack_pending: u64,
    /// Redelivered.
    pub redelivered: u64,
}

/// Consumer counts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumerStats {
    /// Consumers.
    pub total: u64,
    /// Per-consumer statistics.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub consumers: Vec<ConsumerDetail>,
}

/// Body of `GET /health/status`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusResponse {
    /// `ok` or `degraded`.
    pub status: String,
    /// Per-component health.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentHealth>,
    /// Controller version.
    #[serde(default)]
    pub version: String,
    /// Controller uptime (Go duration).
    #[serde(default)]
    pub uptime: String,
    /// Bus server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats: Option<NatsInfo>,
    /// Streams.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub streams: Vec<StreamInfo>,
    /// Buckets.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub kv_buckets: Vec<KvBucketInfo>,
    /// Object stores.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub object_stores: Vec<ObjectStoreInfo>,
    /// Job counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<JobStats>,
    /// Agent counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents: Option<AgentStats>,
    /// Consumer counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumers: Option<ConsumerStats>,
}
