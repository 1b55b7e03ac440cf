//! `GET /audit`, `/audit/export`, `/audit/{id}`.

use axum::Json;
use axum::extract::{Path, Query, State};
use osapi_api::audit::{AuditEntryResponse, ListAuditResponse};

use crate::auth::{Authorized, perm};
use crate::error::{ApiError, ApiResult};
use crate::extract::{self, QueryMap, query_value};
use crate::state::AppState;

/// Largest `offset` of `GET /audit`.
const MAX_OFFSET: usize = 10_000;

/// Audit entries, newest first.
#[utoipa::path(get, path = "/audit", tag = "Audit",
    params(("limit" = Option<usize>, Query, description = "1-100, default 20"),
        ("offset" = Option<usize>, Query, description = "Entries to skip (at most 10000)")),
    security(("BearerAuth" = ["audit:read"])),
    responses((status = 200, body = ListAuditResponse),
        (status = 400, body = osapi_api::error::ErrorResponse)))]
pub async fn list(
    _auth: Authorized<perm::AuditRead>,
    State(state): State<AppState>,
    Query(query): Query<QueryMap>,
) -> ApiResult<Json<ListAuditResponse>> {
    let limit = query_value::<usize>(&query, "limit")?.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and 100, got {limit}"
        )));
    }
    let offset = query_value::<usize>(&query, "offset")?.unwrap_or(0);
    // A page costs its offset too (the logs are merged from the newest);
    // the whole log is what /audit/export is for.
    if offset > MAX_OFFSET {
        return Err(ApiError::bad_request(format!(
            "offset must be at most {MAX_OFFSET}; use GET /audit/export for the whole log"
        )));
    }
    let (total_items, items) = state.bus.audit.list(offset, limit).await?;
    Ok(Json(ListAuditResponse { total_items, items }))
}

/// Every audit entry.
#[utoipa::path(get, path = "/audit/export", tag = "Audit",
    security(("BearerAuth" = ["audit:read"])),
    responses((status = 200, body = ListAuditResponse)))]
pub async fn export(
    _auth: Authorized<perm::AuditRead>,
    State(state): State<AppState>,
) -> ApiResult<Json<ListAuditResponse>> {
    let items = state.bus.audit.export().await?;
    Ok(Json(ListAuditResponse {
        total_items: items.len(),
        items,
    }))
}

/// One audit entry.
#[utoipa::path(get, path = "/audit/{id}", tag = "Audit",
    params(("id" = String, Path, description = "Entry id (UUID)")),
    security(("BearerAuth" = ["audit:read"])),
    responses((status = 200, body = AuditEntryResponse),
        (status = 404, body = osapi_api::error::ErrorResponse)))]
pub async fn get(
    _auth: Authorized<perm::AuditRead>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<AuditEntryResponse>> {
    let id = extract::uuid("audit entry id", &id)?;
    let entry = state
        .bus
        .audit
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found("audit entry not found"))?;
    Ok(Json(AuditEntryResponse { entry }))
}
