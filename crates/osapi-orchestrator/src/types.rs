//! Typed results of every operation (shared with the control plane, so
//! upstream agents' Go-cased keys decode too) and the option types of the
//! operations.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use osapi_api::agent::{
    AgentInfo, AgentState, AgentStatus, LoadAverageResponse, MemoryResponse, NodeCondition,
    OsInfoResponse,
};
pub use osapi_api::health::HealthResponse;
// Every operation's parameters and result type, as the catalogue grows.
pub use osapi_api::ops::params::*;
pub use osapi_api::results::*;

/// Result of [`crate::Orchestrator::agent_list`] (the `GET /agent` body).
pub type AgentListResult = osapi_api::agent::ListAgentsResponse;

/// One agent, as [`crate::Orchestrator::agent_get`] and discovery return it.
pub type AgentResult = AgentInfo;

/// Result of [`crate::Orchestrator::file_upload`]: the controller's upload reply.
pub type FileUploadResult = osapi_api::file::FileUploadResponse;

/// Result of [`crate::Orchestrator::file_changed`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FileChangedResult {
    /// Object name.
    pub name: String,
    /// True when the store lacks this content.
    pub changed: bool,
    /// SHA-256 (hex) of the local content.
    pub sha256: String,
}

/// What to deploy where, for [`crate::Orchestrator::file_deploy`].
///
/// ```
/// use osapi_orchestrator::types::FileDeployOpts;
/// let opts = FileDeployOpts::new("nginx.conf", "/etc/nginx/nginx.conf")
///     .template()
///     .mode("0644")
///     .owner("root")
///     .group("root")
///     .var("port", 8080);
/// assert_eq!(opts.vars["port"], 8080);
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FileDeployOpts {
    /// Object in the file store.
    pub object_name: String,
    /// Absolute destination path (may use `@fact.` references).
    pub path: String,
    /// `raw` (default) or `template`.
    pub content_type: ContentType,
    /// Octal mode such as `"0644"`.
    pub mode: Option<String>,
    /// Owner (name or uid).
    pub owner: Option<String>,
    /// Group (name or gid).
    pub group: Option<String>,
    /// Template variables (`.Vars`).
    pub vars: BTreeMap<String, Value>,
}

impl FileDeployOpts {
    /// Deploy `object_name` to `path`, raw.
    pub fn new(object_name: impl Into<String>, path: impl Into<String>) -> Self {
        FileDeployOpts {
            object_name: object_name.into(),
            path: path.into(),
            ..Default::default()
        }
    }

    /// Render as a Go template with `.Vars`, `.Facts`, `.Hostname`.
    pub fn template(mut self) -> Self {
        self.content_type = ContentType::Template;
        self
    }

    /// File mode.
    pub fn mode(mut self, mode: impl Into<String>) -> Self {
        self.mode = Some(mode.into());
        self
    }

    /// Owner.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// Group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// A template variable.
    pub fn var(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.vars.insert(key.into(), value.into());
        self
    }

    pub(crate) fn to_params(&self) -> osapi_api::ops::FileDeployParams {
        osapi_api::ops::FileDeployParams {
            object_name: self.object_name.clone(),
            path: self.path.clone(),
            content_type: self.content_type,
            mode: self.mode.clone(),
            owner: self.owner.clone(),
            group: self.group.clone(),
            vars: self.vars.clone(),
            ..Default::default()
        }
    }
}
