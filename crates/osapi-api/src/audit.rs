//! The audit log: one entry per authenticated request, saying who did what.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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

    /// Which log keeps the entry. Each log has its own retention, so a flood
    /// of reads or of refused requests can only push out older entries of
    /// its own kind, never the record of a change.
    pub fn log(&self) -> AuditLog {
        if matches!(self.response_code, 401 | 403) {
            AuditLog::Denied
        } else if matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS") {
            AuditLog::Reads
        } else {
            AuditLog::Changes
        }
    }
}

/// The three audit logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditLog {
    /// Allowed requests that may change something (`POST`, `PUT`, `DELETE` …).
    Changes,
    /// Allowed reads (`GET`, `HEAD`).
    Reads,
    /// Requests refused after the token was read (403; 401s are not audited).
    Denied,
}

impl AuditLog {
    /// Every log.
    pub const ALL: [AuditLog; 3] = [AuditLog::Changes, AuditLog::Reads, AuditLog::Denied];

    /// Index in [`AuditLog::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Longest command or argument list an entry keeps, in bytes: longer ones
/// keep their head and tail, with the full length and SHA-256.
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
    /// Command or command line of a command operation; past
    /// [`AUDIT_TEXT_LIMIT`] bytes its head and tail, joined by `…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Full length of the command in bytes, when it was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_bytes: Option<usize>,
    /// SHA-256 (hex) of the whole command, when it was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_sha256: Option<String>,
    /// Arguments of `command.exec.execute` (each cut as the command is, at
    /// most [`AUDIT_TEXT_LIMIT`] bytes in all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Arguments left out past the limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args_dropped: Option<usize>,
    /// Name of the file uploaded, deployed or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Path on the hosts a deploy writes or a status reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_path: Option<String>,
    /// Mode a deploy sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<String>,
    /// Owner (and `:group`) a deploy sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_owner: Option<String>,
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
        let field = |k: &str| text(data.and_then(|d| d.get(k)));
        if let Some(command) = field("command") {
            if command.len() > AUDIT_TEXT_LIMIT {
                self.command_bytes = Some(command.len());
                self.command_sha256 = Some(hex(&Sha256::digest(command.as_bytes())));
            }
            self.command = Some(head_and_tail(&command, AUDIT_TEXT_LIMIT));
        }
        self.args = data
            .and_then(|d| d.get("args"))
            .and_then(|a| a.as_array())
            .map(|args| {
                let mut left = AUDIT_TEXT_LIMIT;
                let mut kept = Vec::new();
                for a in args {
                    let a = a
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| a.to_string());
                    // Too little room left to show anything useful: stop.
                    if a.len() > left && left < 32 {
                        break;
                    }
                    let cut = head_and_tail(&a, left);
                    left -= cut.len();
                    kept.push(cut);
                }
                if kept.len() < args.len() {
                    self.args_dropped = Some(args.len() - kept.len());
                }
                kept
            });
        self.file = field("object_name");
        self.file_path = field("path");
        self.file_mode = field("mode");
        self.file_owner = match (field("owner"), field("group")) {
            (Some(o), Some(g)) => Some(format!("{o}:{g}")),
            (Some(o), None) => Some(o),
            (None, Some(g)) => Some(format!(":{g}")),
            (None, None) => None,
        };
    }
}

/// `s` if it fits in `max` bytes; else its head and tail (each about half,
/// on character boundaries) joined by `…`, so what a long command ends with
/// stays visible.
fn head_and_tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let half = max.saturating_sub(3) / 2;
    let mut head = half;
    while !s.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = s.len() - half;
    while !s.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}…{}", &s[..head], &s[tail..])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_commands_keep_their_tail_and_a_digest() {
        let command = format!("true{}; touch /tmp/owned", " ".repeat(5000));
        let mut a = AuditAction::default();
        a.note_operation(
            &serde_json::json!({"type": "command.shell.execute", "data": {"command": command}}),
        );
        let kept = a.command.unwrap();
        assert!(kept.len() <= AUDIT_TEXT_LIMIT);
        assert!(
            kept.starts_with("true") && kept.ends_with("; touch /tmp/owned"),
            "{kept}"
        );
        assert_eq!(a.command_bytes, Some(command.len()));
        assert_eq!(a.command_sha256.unwrap().len(), 64);
        let mut b = AuditAction::default();
        let args: Vec<String> = (0..100).map(|i| format!("{i:0>100}")).collect();
        b.note_operation(&serde_json::json!({"type": "command.exec.execute", "data": {"command": "echo", "args": args}}));
        let kept = b.args.unwrap();
        assert!(kept.iter().map(String::len).sum::<usize>() <= AUDIT_TEXT_LIMIT);
        assert_eq!(kept.len() + b.args_dropped.unwrap(), 100);
        let mut d = AuditAction::default();
        d.note_operation(&serde_json::json!({"type": "file.deploy.execute", "data": {"object_name": "x", "path": "/etc/cron.d/x", "mode": "4755", "owner": "root", "group": "wheel"}}));
        assert_eq!(d.file_path.as_deref(), Some("/etc/cron.d/x"));
        assert_eq!(d.file_mode.as_deref(), Some("4755"));
        assert_eq!(d.file_owner.as_deref(), Some("root:wheel"));
        // Flattened into an entry, no field collides with the entry's own.
        let entry = AuditEntry {
            id: uuid::Uuid::nil(),
            timestamp: OffsetDateTime::UNIX_EPOCH,
            user: "u".into(),
            roles: vec![],
            method: "POST".into(),
            path: "/job".into(),
            operation_id: None,
            source_ip: "127.0.0.1".into(),
            response_code: 201,
            duration_ms: 1,
            action: d,
        };
        let back: AuditEntry =
            serde_json::from_str(&serde_json::to_string(&entry).unwrap()).unwrap();
        assert_eq!(back, entry);
    }
}
