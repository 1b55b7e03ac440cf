//! REST bodies of the synchronous `/node/{hostname}/…` endpoints: request
//! bodies, per-host result items and the `{"job_id", "results"}` collection.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::agent::{LoadAverageResponse, MemoryResponse, OsInfoResponse};
use crate::results::DiskUsage;
use crate::serde_util::null_as_default;

/// `{"job_id": …, "results": [...]}`: one item per answering host.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Collection<T> {
    /// The job that produced the results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    /// One item per host.
    #[serde(default = "Vec::new", deserialize_with = "null_as_default")]
    pub results: Vec<T>,
}

/// The schema of [`Collection`]: named after its item (`Collection_PingItem`)
/// and registering the item's schema, so that documents can refer to it.
#[cfg(feature = "openapi")]
mod collection_schema {
    use std::borrow::Cow;

    use utoipa::openapi::{RefOr, schema::Schema};
    use utoipa::{PartialSchema, ToSchema};
    use uuid::Uuid;

    use super::Collection;

    /// `{"job_id": …, "results": [...]}`: one item per answering host.
    #[derive(utoipa::ToSchema)]
    #[allow(dead_code)]
    struct Shape<T> {
        /// The job that produced the results.
        job_id: Option<Uuid>,
        /// One item per host.
        #[schema(required = false)]
        results: Vec<T>,
    }

    impl<T: ToSchema> PartialSchema for Collection<T> {
        fn schema() -> RefOr<Schema> {
            <Shape<T> as PartialSchema>::schema()
        }
    }

    impl<T: ToSchema> ToSchema for Collection<T> {
        fn name() -> Cow<'static, str> {
            Cow::Owned(format!("Collection_{}", T::name()))
        }
        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((T::name().into_owned(), T::schema()));
            T::schemas(schemas);
        }
    }
}

/// Body of `POST /node/{hostname}/network/ping`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PingRequest {
    /// IPv4/IPv6 literal or `@fact.` reference.
    pub address: String,
}

/// Body of `PUT /node/{hostname}/network/dns`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DnsUpdateRequest {
    /// Interface name (letters and digits) or `@fact.` reference.
    pub interface_name: String,
    /// Name servers (IP literals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub servers: Option<Vec<String>>,
    /// Search domains (hostnames).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_domains: Option<Vec<String>>,
}

/// Body of `POST /node/{hostname}/command/exec`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandExecRequest {
    /// Executable.
    pub command: String,
    /// Arguments.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub args: Vec<String>,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Seconds, 1–300 (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// Body of `POST /node/{hostname}/command/shell`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandShellRequest {
    /// Command line for `/bin/sh -c`.
    pub command: String,
    /// Working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Seconds, 1–300 (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

/// Body of `POST /node/{hostname}/file/deploy`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileDeployRequest {
    /// Object to deploy (1–255 characters).
    pub object_name: String,
    /// Absolute destination path.
    pub path: String,
    /// `raw` or `template`.
    pub content_type: String,
    /// Octal mode, e.g. `"0644"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Template variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub vars: Option<BTreeMap<String, Value>>,
}

/// Body of `POST /node/{hostname}/file/status`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileStatusRequest {
    /// Absolute path.
    pub path: String,
}

/// Item of `GET /node/{hostname}/hostname`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostnameItem {
    /// Hostname reported by the OS.
    pub hostname: String,
    /// Agent labels.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub labels: BTreeMap<String, String>,
    /// Error, when this host failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Item of `GET /node/{hostname}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeStatusItem {
    /// Hostname reported by the OS.
    pub hostname: String,
    /// `"N days, N hours, N minutes"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime: Option<String>,
    /// Load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_average: Option<LoadAverageResponse>,
    /// Memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryResponse>,
    /// Filesystems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disks: Option<Vec<DiskUsage>>,
    /// OS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_info: Option<OsInfoResponse>,
    /// Error, when this host failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Item of `GET /node/{hostname}/disk`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiskItem {
    /// Agent hostname.
    pub hostname: String,
    /// Filesystems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disks: Option<Vec<DiskUsage>>,
    /// Error, when this host failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Item of `GET /node/{hostname}/memory`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemoryItem {
    /// Agent hostname.
    pub hostname: String,
    /// Memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryResponse>,
    /// Error, when this host failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Item of `GET /node/{hostname}/load`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadItem {
    /// Agent hostname.
    pub hostname: String,
    /// Load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_average: Option<LoadAverageResponse>,
    /// Error, when this host failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Item of `GET /node/{hostname}/os`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OsInfoItem {
    /// Agent hostname.
    pub hostname: String,
    /// OS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_info: Option<OsInfoResponse>,
    /// Error, when this host failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Item of `GET /node/{hostname}/uptime`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UptimeItem {
    /// Agent hostname.
    pub hostname: String,
    /// Go duration, e.g. `76h3m12s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime: Option<String>,
    /// Error, when this host failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Item of `POST /node/{hostname}/network/ping`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PingItem {
    /// Agent hostname.
    pub hostname: String,
    /// Echo requests sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets_sent: Option<u32>,
    /// Echo replies received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets_received: Option<u32>,
    /// Loss in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet_loss: Option<f64>,
    /// `"%.2fms"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rtt: Option<String>,
    /// `"%.2fms"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_rtt: Option<String>,
    /// `"%.2fms"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rtt: Option<String>,
    /// Error, when this host failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Item of `GET /node/{hostname}/network/dns/{interfaceName}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DnsConfigItem {
    /// Agent hostname.
    pub hostname: String,
    /// Name servers.
    #[serde(default)]
    pub servers: Option<Vec<String>>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_domains: Option<Vec<String>>,
    /// Error, when this host failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Item of `PUT /node/{hostname}/network/dns`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DnsUpdateItem {
    /// Agent hostname.
    pub hostname: String,
    /// `ok` or `failed`.
    pub status: String,
    /// Whether the configuration changed.
    #[serde(default)]
    pub changed: bool,
    /// Error, when this host failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Item of the command endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CommandItem {
    /// Agent hostname.
    pub hostname: String,
    /// Standard output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<String>,
    /// Standard error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// Exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Run time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Always true on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<bool>,
    /// Error, when this host failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Body of `POST /node/{hostname}/file/deploy`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileDeployResponse {
    /// Job id.
    pub job_id: String,
    /// Agent hostname.
    pub hostname: String,
    /// Whether the file changed.
    pub changed: bool,
}

/// Body of `POST /node/{hostname}/file/status`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileStatusResponse {
    /// Job id.
    pub job_id: String,
    /// Agent hostname.
    pub hostname: String,
    /// Path.
    pub path: String,
    /// `in-sync`, `drifted` or `missing`.
    pub status: String,
    /// SHA-256 on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}
