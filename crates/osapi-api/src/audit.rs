//! The audit log: one entry per authenticated request, saying who did what.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::serde_util::null_as_default;

/// One audited request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Entry id.
    pub id: Uuid,
    /// Request start.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub timestamp: OffsetDateTime,
    /// Token subject.
    pub user: String,
    /// Token roles.
    #[serde(default, deserialize_with = "null_as_default")]
    pub roles: Vec<String>,
    /// HTTP method.
    pub method: String,
    /// Request path without the query.
    pub path: String,
    /// Operation id of the route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// Client address: the peer, or the first forwarded hop when the peer is
    /// a trusted proxy (`api.server.trusted_proxies`).
    pub source_ip: String,
    /// Status code sent.
    pub response_code: u16,
    /// Handling time in milliseconds.
    pub duration_ms: u64,
    /// What the request started or changed (absent for reads).
    #[serde(flatten)]
    pub action: AuditAction,
}

impl AuditEntry {
    /// When the request ended (`timestamp` is when it started): the order
    /// of the log, newest first.
    pub fn ended(&self) -> OffsetDateTime {
        self.timestamp + std::time::Duration::from_millis(self.duration_ms)
    }

    /// True for a request the controller refused after reading the token
    /// (401 or 403): such entries are kept apart, so that a flood of them
    /// cannot push allowed requests out of the log.
    pub fn denied(&self) -> bool {
        matches!(self.response_code, 401 | 403)
    }
}

/// Longest command or argument list an entry keeps, in bytes.
pub const AUDIT_TEXT_LIMIT: usize = 4096;

/// What a request started or changed: the operation, its target, the job,
/// and for commands what ran. Never a token or file content.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditAction {
    /// Operation type (`command.shell.execute` …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Target as requested (`_any`, `_all`, a hostname, `key:value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The job created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<Uuid>,
    /// The job a retry re-ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<Uuid>,
    /// Command or command line of a command operation (cut at [`AUDIT_TEXT_LIMIT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Arguments of `command.exec.execute` (cut at [`AUDIT_TEXT_LIMIT`] in all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Name of the file uploaded, deployed or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

impl AuditAction {
    /// True when nothing was noted.
    pub fn is_empty(&self) -> bool {
        *self == AuditAction::default()
    }

    /// Notes an operation object as clients send it (`{"type", "data"}`):
    /// its type and, for commands, the command and arguments.
    ///
    /// ```
    /// use osapi_api::audit::AuditAction;
    /// let mut a = AuditAction::default();
    /// a.note_operation(&serde_json::json!({"type": "command.exec.execute",
    ///     "data": {"command": "ls", "args": ["-l", "/"]}}));
    /// assert_eq!(a.operation.as_deref(), Some("command.exec.execute"));
    /// assert_eq!(a.command.as_deref(), Some("ls"));
    /// assert_eq!(a.args, Some(vec!["-l".to_string(), "/".to_string()]));
    /// ```
    pub fn note_operation(&mut self, operation: &serde_json::Value) {
        let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
        self.operation = text(operation.get("type"));
        let data = operation.get("data");
        self.command = text(data.and_then(|d| d.get("command"))).map(|c| cut(c, AUDIT_TEXT_LIMIT));
        self.args = data
            .and_then(|d| d.get("args"))
            .and_then(|a| a.as_array())
            .map(|args| {
                let mut left = AUDIT_TEXT_LIMIT;
                args.iter()
                    .map(|a| {
                        a.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| a.to_string())
                    })
                    .map_while(|a| {
                        let kept = cut(a, left);
                        left = left.checked_sub(kept.len().max(1))?;
                        Some(kept)
                    })
                    .collect()
            });
        self.file = text(data.and_then(|d| d.get("object_name")));
    }
}

/// `s` cut to at most `max` bytes on a character boundary, marked when cut.
fn cut(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push('…');
    s
}

/// Body of `GET /audit` and `GET /audit/export`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ListAuditResponse {
    /// Entries stored.
    pub total_items: usize,
    /// The requested page, newest first.
    #[serde(default, deserialize_with = "null_as_default")]
    pub items: Vec<AuditEntry>,
}

/// Body of `GET /audit/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntryResponse {
    /// The entry.
    pub entry: AuditEntry,
}
