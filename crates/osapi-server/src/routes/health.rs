//! `GET /health`, `/health/ready`, `/health/status`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use osapi_api::format::go_duration;
use osapi_api::health::{
    AgentDetail, AgentStats, ComponentHealth, ConsumerStats, HealthResponse, JobStats, NatsInfo,
    ReadyResponse, StatusResponse,
};
use osapi_api::job::JobStatus;
use std::time::Duration;

use crate::auth::{Authorized, perm};
use crate::error::ApiResult;
use crate::state::AppState;

/// Liveness: always ok.
#[utoipa::path(get, path = "/health", tag = "Health",
    responses((status = 200, description = "The controller is up", body = HealthResponse)))]
pub async fn health() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok".into(),
    })
}

/// Readiness: the bus answers.
#[utoipa::path(get, path = "/health/ready", tag = "Health",
    responses(
        (status = 200, description = "Ready", body = ReadyResponse),
        (status = 503, description = "Not ready", body = ReadyResponse)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let mut failures: Vec<String> = state
        .bus
        .status
        .check()
        .await
        .into_iter()
        .filter_map(|c| c.result.err())
        .collect();
    if state.jobs.is_stopping() {
        // A load balancer stops sending work here.
        failures.push("the controller is shutting down".into());
    }
    if failures.is_empty() {
        Json(ReadyResponse {
            status: "ready".into(),
            error: None,
        })
        .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ReadyResponse {
                status: "not_ready".into(),
                error: Some(failures.join("\n")),
            }),
        )
            .into_response()
    }
}

/// Detailed status: components, bus statistics, jobs and agents.
#[utoipa::path(get, path = "/health/status", tag = "Health",
    security(("BearerAuth" = ["health:read"])),
    responses(
        (status = 200, description = "Healthy", body = StatusResponse),
        (status = 401, body = osapi_api::error::ErrorResponse),
        (status = 403, body = osapi_api::error::ErrorResponse),
        (status = 503, description = "Degraded", body = StatusResponse)))]
pub async fn status(
    _auth: Authorized<perm::HealthRead>,
    State(state): State<AppState>,
) -> ApiResult<Response> {
    let checks = state.bus.status.check().await;
    let degraded = checks.iter().any(|c| c.result.is_err());
    let components = checks
        .into_iter()
        .map(|c| {
            let health = match c.result {
                Ok(()) => ComponentHealth {
                    status: "ok".into(),
                    error: None,
                },
                Err(e) => ComponentHealth {
                    status: "error".into(),
                    error: Some(e),
                },
            };
            (c.component, health)
        })
        .collect();
    let stats = state.bus.status.stats().await;
    let jobs = state.jobs.stats().await.ok().map(|q| {
        let count = |s: JobStatus| q.status_counts.get(s.as_str()).copied().unwrap_or(0) as u64;
        JobStats {
            total: q.total_jobs as u64,
            unprocessed: count(JobStatus::Submitted),
            processing: count(JobStatus::Processing),
            completed: count(JobStatus::Completed),
            failed: count(JobStatus::Failed) + count(JobStatus::PartialFailure),
            dlq: 0,
        }
    });
    let agents = state.directory.fresh().await.ok().map(|fleet| {
        let now = time::OffsetDateTime::now_utc();
        AgentStats {
            total: fleet.agents.len() as u64,
            ready: fleet.agents.iter().filter(|a| a.eligible()).count() as u64,
            agents: fleet
                .agents
                .iter()
                .map(|a| {
                    let age: Duration = (now - a.registration.registered_at)
                        .try_into()
                        .unwrap_or_default();
                    let labels: Vec<String> = a
                        .registration
                        .labels
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    AgentDetail {
                        hostname: a.hostname().to_string(),
                        labels: (!labels.is_empty()).then(|| labels.join(", ")),
                        registered: format!("{} ago", short_age(age)),
                    }
                })
                .collect(),
        }
    });
    let body = StatusResponse {
        status: if degraded { "degraded" } else { "ok" }.into(),
        components,
        version: state.config.version.clone(),
        uptime: go_duration(Duration::from_secs(state.started.elapsed().as_secs())),
        nats: Some(NatsInfo {
            url: state.bus.status.url(),
            version: state.bus.status.server_version(),
        }),
        streams: stats.streams,
        kv_buckets: stats.kv_buckets,
        object_stores: stats.object_stores,
        jobs,
        agents,
        consumers: Some(ConsumerStats {
            total: stats.consumers.len() as u64,
            consumers: stats.consumers,
        }),
    };
    let code = if degraded {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    Ok((code, Json(body)).into_response())
}

/// `Nd Nh`, `Nh Nm`, `Nm` or `Ns`, as upstream.
fn short_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
