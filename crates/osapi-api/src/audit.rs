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
    ///
    /// Refused means answered 4xx (other than 499, a client that left while
    /// its request ran) or 507 (store full): nothing was done, whatever
    /// permission the token had.
    pub fn log(&self) -> AuditLog {
        let refused = matches!(self.response_code, 400..=498 | 507);
        if refused {
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
    /// Accepted requests that may change something (`POST`, `PUT`,
    /// `DELETE` …).
    Changes,
    /// Accepted reads (`GET`, `HEAD`).
    Reads,
    /// Requests refused after the token was read: 403, every other 4xx
    /// answer, and 507 (401s are not audited).
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

/// Longest path, target, file path or other client-chosen text an entry
/// keeps, in bytes (head and tail, as commands): what a client sends
/// cannot make an entry large.
pub const AUDIT_FIELD_LIMIT: usize = 1024;

/// Roles an entry keeps (a token may list any number).
const AUDIT_ROLES_LIMIT: usize = 32;

impl AuditEntry {
    /// The entry with every client-chosen text cut to
    /// [`AUDIT_FIELD_LIMIT`] bytes and at most 32 roles, so that no entry
    /// is larger than about 20 KiB whatever was sent.
    ///
    /// ```
    /// # use osapi_api::audit::{AuditEntry, AUDIT_FIELD_LIMIT};
    /// # let mut entry: AuditEntry = serde_json::from_value(serde_json::json!({
    /// #   "id": "00000000-0000-0000-0000-000000000000", "timestamp": "2026-01-01T00:00:00Z",
    /// #   "user": "u", "method": "GET", "path": "/", "source_ip": "127.0.0.1",
    /// #   "response_code": 404, "duration_ms": 0})).unwrap();
    /// entry.path = format!("/{}", "a".repeat(60_000));
    /// let entry = entry.bounded();
    /// assert!(entry.path.len() <= AUDIT_FIELD_LIMIT);
    /// assert!(entry.approx_bytes() < 24 * 1024);
    /// ```
    pub fn bounded(mut self) -> AuditEntry {
        let cut = |s: &mut String| {
            if s.len() > AUDIT_FIELD_LIMIT {
                *s = head_and_tail(s, AUDIT_FIELD_LIMIT);
            }
        };
        let cut_opt = |s: &mut Option<String>| {
            if let Some(s) = s {
                cut(s);
            }
        };
        cut(&mut self.user);
        cut(&mut self.method);
        cut(&mut self.path);
        cut(&mut self.source_ip);
        cut_opt(&mut self.operation_id);
        self.roles.truncate(AUDIT_ROLES_LIMIT);
        for role in &mut self.roles {
            if role.len() > 64 {
                *role = head_and_tail(role, 64);
            }
        }
        let a = &mut self.action;
        for field in [
            &mut a.operation,
            &mut a.target,
            &mut a.file,
            &mut a.file_path,
            &mut a.file_mode,
            &mut a.file_owner,
            &mut a.command_sha256,
        ] {
            cut_opt(field);
        }
        self
    }

    /// About how many bytes the entry holds (its texts plus a fixed
    /// overhead), for logs bounded by bytes.
    pub fn approx_bytes(&self) -> usize {
        const OVERHEAD: usize = 256;
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let a = &self.action;
        OVERHEAD
            + self.user.len()
            + self.roles.iter().map(|r| r.len() + 24).sum::<usize>()
            + self.method.len()
            + self.path.len()
            + opt(&self.operation_id)
            + self.source_ip.len()
            + opt(&a.operation)
            + opt(&a.target)
            + opt(&a.command)
            + opt(&a.command_sha256)
            + a.args.iter().flatten().map(|x| x.len() + 24).sum::<usize>()
            + opt(&a.file)
            + opt(&a.file_path)
            + opt(&a.file_mode)
            + opt(&a.file_owner)
    }
}

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

    fn entry(method: &str, code: u16) -> AuditEntry {
        AuditEntry {
            id: uuid::Uuid::nil(),
            timestamp: OffsetDateTime::UNIX_EPOCH,
            user: "u".into(),
            roles: vec![],
            method: method.into(),
            path: "/job".into(),
            operation_id: None,
            source_ip: "127.0.0.1".into(),
            response_code: code,
            duration_ms: 1,
            action: AuditAction::default(),
        }
    }

    #[test]
    fn refused_requests_never_share_the_log_of_changes() {
        for code in [400, 403, 404, 405, 409, 413, 415, 422, 429, 507] {
            assert_eq!(entry("POST", code).log(), AuditLog::Denied, "{code}");
            assert_eq!(entry("GET", code).log(), AuditLog::Denied, "{code}");
        }
        for code in [200, 201, 202, 204, 499, 500, 503] {
            assert_eq!(entry("POST", code).log(), AuditLog::Changes, "{code}");
            assert_eq!(entry("DELETE", code).log(), AuditLog::Changes, "{code}");
            assert_eq!(entry("GET", code).log(), AuditLog::Reads, "{code}");
        }
    }

    #[test]
    fn bounded_entries_stay_small_whatever_was_sent() {
        let huge = "x".repeat(1 << 20);
        let mut e = entry("POST", 201);
        e.user = huge.clone();
        e.path = huge.clone();
        e.roles = vec![huge.clone(); 1000];
        e.action.target = Some(huge.clone());
        e.action.file_path = Some(huge.clone());
        e.action.file_owner = Some(huge.clone());
        let mut big = AuditAction::default();
        big.note_operation(
            &serde_json::json!({"type": huge, "data": {"command": huge, "args": [huge, huge]}}),
        );
        e.action.command = big.command;
        e.action.args = big.args;
        e.action.operation = big.operation;
        let e = e.bounded();
        assert!(e.approx_bytes() < 24 * 1024, "{}", e.approx_bytes());
        assert!(serde_json::to_string(&e).unwrap().len() < 24 * 1024);
        assert_eq!(e.roles.len(), 32);
        assert!(e.path.starts_with("xx") && e.path.contains('…'));
    }

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
