//! The audit log: one entry per authenticated request.

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
    /// Client address (X-Forwarded-For, X-Real-IP, or the peer).
    pub source_ip: String,
    /// Status code sent.
    pub response_code: u16,
    /// Handling time in milliseconds.
    pub duration_ms: u64,
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
