//! The job API: create, list, queue statistics, get (with long-poll), delete, retry.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use osapi_api::format::{parse_duration, rfc3339_seconds};
use osapi_api::job::{
    CreateJobRequest, CreateJobResponse, JobDetail, JobStatus, ListJobsResponse, QueueStats,
    RetryJobRequest,
};
use osapi_api::target::Target;

use crate::auth::{Authorized, perm};
use crate::error::{ApiError, ApiResult};
use crate::extract::{self, QueryMap, optional_json, query_value};
use crate::jobs::{Created, MAX_JOB_TIMEOUT, parse_operation};
use crate::state::AppState;

fn created(c: Created) -> (StatusCode, Json<CreateJobResponse>) {
    (
        StatusCode::CREATED,
        Json(CreateJobResponse {
            job_id: c.record.id,
            status: "created".into(),
            revision: c.revision,
            timestamp: rfc3339_seconds(c.record.created),
            expected_hosts: c.record.expected_hosts.clone(),
        }),
    )
}

/// Queue a job for a target. Needs `job:write` and the permission of the
/// operation (see the table in the API description).
#[utoipa::path(post, path = "/job", tag = "Job",
    request_body = CreateJobRequest,
    security(("BearerAuth" = ["job:write"])),
    responses((status = 201, body = CreateJobResponse),
        (status = 400, body = osapi_api::error::ErrorResponse),
        (status = 401, body = osapi_api::error::ErrorResponse),
        (status = 403, body = osapi_api::error::ErrorResponse)))]
pub async fn create(
    auth: Authorized<perm::JobWrite>,
    State(state): State<AppState>,
    extract::Json(req): extract::Json<CreateJobRequest>,
) -> ApiResult<(StatusCode, Json<CreateJobResponse>)> {
    auth.note(|a| {
        a.note_operation(&req.operation);
        a.target = Some(req.target_hostname.clone());
    });
    let op = parse_operation(&req.operation)?;
    auth.require(op.permission())?;
    let timeout = req
        .timeout
        .as_deref()
        .map(|t| {
            parse_duration(t)
                .map_err(|e| ApiError::bad_request(format!("timeout: {e}")))
                .and_then(|d| {
                    if d.is_zero() {
                        Err(ApiError::bad_request("timeout must be greater than zero"))
                    } else if d > MAX_JOB_TIMEOUT {
                        Err(ApiError::bad_request(format!(
                            "timeout must be at most {} (job records are kept that long)",
                            osapi_api::format::go_duration(MAX_JOB_TIMEOUT)
                        )))
                    } else {
                        Ok(d)
                    }
                })
        })
        .transpose()?;
    let c = state
        .jobs
        .create(req.operation, &req.target_hostname, timeout, None)
        .await?;
    auth.note(|a| a.job_id = Some(c.record.id));
    Ok(created(c))
}

/// Jobs, newest first.
#[utoipa::path(get, path = "/job", tag = "Job",
    params(
        ("status" = Option<String>, Query, description = "submitted, processing, completed, failed or partial_failure"),
        ("limit" = Option<usize>, Query, description = "Page size (default 10, 0 = all)"),
        ("offset" = Option<usize>, Query, description = "Items to skip")),
    security(("BearerAuth" = ["job:read"])),
    responses((status = 200, body = ListJobsResponse),
        (status = 400, body = osapi_api::error::ErrorResponse)))]
pub async fn list(
    _auth: Authorized<perm::JobRead>,
    State(state): State<AppState>,
    Query(query): Query<QueryMap>,
) -> ApiResult<Json<ListJobsResponse>> {
    let status = query
        .get("status")
        .map(|s| {
            JobStatus::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid status {s:?}: use submitted, processing, completed, failed or partial_failure"
                ))
            })
        })
        .transpose()?;
    let limit = query_value::<usize>(&query, "limit")?.unwrap_or(10);
    let offset = query_value::<usize>(&query, "offset")?.unwrap_or(0);
    let (total_items, items) = state.jobs.list(status, offset, limit).await?;
    Ok(Json(ListJobsResponse { total_items, items }))
}

/// Job counts per status and operation.
#[utoipa::path(get, path = "/job/status", tag = "Job",
    security(("BearerAuth" = ["job:read"])),
    responses((status = 200, body = QueueStats)))]
pub async fn stats(
    _auth: Authorized<perm::JobRead>,
    State(state): State<AppState>,
) -> ApiResult<Json<QueueStats>> {
    Ok(Json(state.jobs.stats().await?))
}

/// One job. With `?wait=<duration>` the reply comes when the job is terminal
/// or the wait ends, whichever is first.
#[utoipa::path(get, path = "/job/{id}", tag = "Job",
    params(("id" = String, Path, description = "Job id (UUID)"),
        ("wait" = Option<String>, Query, description = "Long-poll up to this long, e.g. 30s")),
    security(("BearerAuth" = ["job:read"])),
    responses((status = 200, body = JobDetail),
        (status = 400, body = osapi_api::error::ErrorResponse),
        (status = 404, body = osapi_api::error::ErrorResponse)))]
pub async fn get(
    _auth: Authorized<perm::JobRead>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<QueryMap>,
) -> ApiResult<Json<JobDetail>> {
    let id = extract::uuid("job id", &id)?;
    let wait = match query.get("wait") {
        Some(raw) => parse_duration(raw)
            .map_err(|e| ApiError::bad_request(format!("wait: {e}")))?
            .min(state.config.max_wait),
        None => Duration::ZERO,
    };
    let detail = if wait.is_zero() {
        state.jobs.detail(id).await?
    } else {
        state.jobs.wait(id, wait).await?
    };
    Ok(Json(detail))
}

/// Delete a job record.
#[utoipa::path(delete, path = "/job/{id}", tag = "Job",
    params(("id" = String, Path, description = "Job id (UUID)")),
    security(("BearerAuth" = ["job:write"])),
    responses((status = 204, description = "Deleted"),
        (status = 404, body = osapi_api::error::ErrorResponse)))]
pub async fn delete(
    auth: Authorized<perm::JobWrite>,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = extract::uuid("job id", &id)?;
    auth.note(|a| a.job_id = Some(id));
    state.jobs.delete(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Run a job's operation again as a new job. Needs `job:write` and the
/// permission of the job's operation.
#[utoipa::path(post, path = "/job/{id}/retry", tag = "Job",
    params(("id" = String, Path, description = "Job id (UUID)")),
    request_body(content = Option<RetryJobRequest>, description = "Optional new target (default _any)"),
    security(("BearerAuth" = ["job:write"])),
    responses((status = 201, body = CreateJobResponse),
        (status = 404, body = osapi_api::error::ErrorResponse)))]
pub async fn retry(
    auth: Authorized<perm::JobWrite>,
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<CreateJobResponse>)> {
    let id = extract::uuid("job id", &id)?;
    let req: RetryJobRequest = optional_json(&headers, &body)?;
    if req.target_hostname.as_deref() == Some("") {
        return Err(ApiError::bad_request("target_hostname must not be empty"));
    }
    let original = state.jobs.record(id).await?;
    auth.note(|a| {
        a.note_operation(&original.operation);
        a.retry_of = Some(id);
        a.target = Some(
            req.target_hostname
                .clone()
                .unwrap_or_else(|| Target::ANY.to_string()),
        );
    });
    let op = parse_operation(&original.operation)?;
    auth.require(op.permission())?;
    let c = state.jobs.retry(&original, req.target_hostname).await?;
    auth.note(|a| a.job_id = Some(c.record.id));
    Ok(created(c))
}
