//! The router: every route at the root and again under `/api/`, the audit
//! middleware, JSON 404/405 answers, and `/openapi.json`.

pub mod agent;
pub mod audit;
pub mod file;
pub mod health;
pub mod job;
pub mod node;

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use osapi_api::audit::AuditEntry;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::AuditSlot;
use crate::error::ApiError;
use crate::state::AppState;

/// Builds the full router for `state`.
pub fn router(state: AppState) -> Router {
    let upload_limit = state.config.max_upload_bytes;
    let api = Router::new()
        .route("/health", get(health::health))
        .route("/health/ready", get(health::ready))
        .route("/health/status", get(health::status))
        .route("/agent", get(agent::list))
        .route("/agent/{hostname}", get(agent::get))
        .route("/agent/{hostname}/drain", post(agent::drain))
        .route("/agent/{hostname}/undrain", post(agent::undrain))
        .route("/job", post(job::create).get(job::list))
        .route("/job/status", get(job::stats))
        .route("/job/{id}", get(job::get).delete(job::delete))
        .route("/job/{id}/retry", post(job::retry))
        .route(
            "/file",
            post(file::upload)
                .layer(DefaultBodyLimit::max(
                    upload_limit.saturating_add(64 * 1024),
                ))
                .get(file::list),
        )
        .route("/file/{name}", get(file::get).delete(file::delete))
        .route("/node/{hostname}", get(node::status))
        .route("/node/{hostname}/hostname", get(node::hostname))
        .route("/node/{hostname}/disk", get(node::disk))
        .route("/node/{hostname}/memory", get(node::memory))
        .route("/node/{hostname}/load", get(node::load))
        .route("/node/{hostname}/os", get(node::os))
        .route("/node/{hostname}/uptime", get(node::uptime))
        .route("/node/{hostname}/network/ping", post(node::ping))
        .route(
            "/node/{hostname}/network/dns/{interface}",
            get(node::dns_get),
        )
        .route("/node/{hostname}/network/dns", put(node::dns_update))
        .route("/node/{hostname}/command/exec", post(node::command_exec))
        .route("/node/{hostname}/command/shell", post(node::command_shell))
        .route("/node/{hostname}/file/deploy", post(node::file_deploy))
        .route("/node/{hostname}/file/status", post(node::file_status))
        .route("/audit", get(audit::list))
        .route("/audit/export", get(audit::export))
        .route("/audit/{id}", get(audit::get))
        .route("/openapi.json", get(crate::openapi::serve));
    Router::new()
        .merge(api.clone())
        .nest("/api", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), audit_layer))
        .with_state(state)
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method {} is not allowed on {}",
            req.method(),
            req.uri().path()
        ),
    )
}

fn unaudited(path: &str) -> bool {
    let path = path.strip_prefix("/api").unwrap_or(path);
    path.starts_with("/health") || path == "/openapi.json"
}

fn source_ip(req: &Request) -> String {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(',').next().unwrap_or_default().trim().to_string())
            .filter(|v| !v.is_empty())
    };
    header("x-forwarded-for")
        .or_else(|| header("x-real-ip"))
        .or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string())
        })
        .unwrap_or_default()
}

/// Records every authenticated request (including 403s) in the audit log.
async fn audit_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if unaudited(req.uri().path()) {
        return next.run(req).await;
    }
    let slot = AuditSlot::default();
    req.extensions_mut().insert(slot.clone());
    let started = Instant::now();
    let timestamp = OffsetDateTime::now_utc();
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let source_ip = source_ip(&req);
    let response = next.run(req).await.into_response();
    let principal = crate::lock(&slot.0).take();
    if let Some(p) = principal {
        let entry = AuditEntry {
            id: Uuid::new_v4(),
            timestamp,
            user: p.subject.clone(),
            roles: p.roles.clone(),
            method,
            path,
            operation_id: None,
            source_ip,
            response_code: response.status().as_u16(),
            duration_ms: started.elapsed().as_millis() as u64,
        };
        // Written before the response leaves, so a client that reads the
        // log right after a request finds it there.
        if let Err(e) = state.bus.audit.put(entry).await {
            tracing::warn!(error = %e, "failed to write audit entry");
        }
    }
    response
}
