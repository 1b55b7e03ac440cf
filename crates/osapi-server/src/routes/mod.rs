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
use axum::routing::{get, post};
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
        .route("/audit", get(audit::list))
        .route("/audit/export", get(audit::export))
        .route("/audit/{id}", get(audit::get))
        .route("/openapi.json", get(crate::openapi::serve))
        .merge(node::router());
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

/// Who sent the request: the peer address, unless the peer is a trusted
/// proxy (`api.server.trusted_proxies`); then the nearest forwarded hop that
/// is not itself a trusted proxy (`X-Forwarded-For` read from the right,
/// then `X-Real-IP`). Forwarded headers from anyone else are ignored.
fn source_ip(req: &Request, trusted: &[ipnet::IpNet]) -> String {
    let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
    else {
        return String::new();
    };
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer.to_string();
    }
    let forwarded: Vec<std::net::IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|hop| hop.trim().parse().ok())
        .collect();
    if let Some(client) = forwarded.iter().rev().find(|ip| !is_trusted(ip)) {
        return client.to_string();
    }
    if let Some(first) = forwarded.first() {
        return first.to_string();
    }
    req.headers()
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok())
        .unwrap_or(peer)
        .to_string()
}

/// Records every authenticated request (including 403s) in the audit log,
/// with what it started or changed.
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
    let source_ip = source_ip(&req, &state.config.trusted_proxies);
    let response = next.run(req).await.into_response();
    let note = slot.take();
    if let Some(p) = note.principal {
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
            action: note.action,
        };
        // Written before the response leaves, so a client that reads the
        // log right after a request finds it there.
        if let Err(e) = state.bus.audit.put(entry).await {
            tracing::warn!(error = %e, "failed to write audit entry");
        }
    }
    response
}
