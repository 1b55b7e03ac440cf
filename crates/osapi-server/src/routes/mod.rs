//! The router: every route at the root and again under `/api/`, the audit
//! middleware, JSON 404/405 answers, and `/openapi.json`.

pub mod agent;
pub mod audit;
pub mod file;
pub mod health;
pub mod job;
pub mod metrics;
pub mod node;

use std::net::{IpAddr, SocketAddr};
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

/// Browsers' cross-origin access (`api.server.security.cors.allow_origins`):
/// outermost, so a preflight is answered before authentication, and every
/// answer (401s included) carries the headers a browser needs.
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{Method, header};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let allow = if origins.is_empty() || origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        // Checked by `ServerConfig::validate` at start.
        AllowOrigin::list(origins.iter().filter_map(|o| crate::config::cors_origin(o)))
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .max_age(std::time::Duration::from_secs(3600))
}

/// Builds the full router for `state`.
pub fn router(state: AppState) -> Router {
    let upload_limit = state.config.max_upload_bytes;
    let cors = cors(&state.config.cors_allow_origins);
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
    let mut root = Router::new().merge(api.clone()).nest("/api", api);
    if !state.config.metrics_path.is_empty() {
        root = root.route(&state.config.metrics_path, get(metrics::serve));
    }
    root.fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), audit_layer))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .layer(cors)
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

fn unaudited(path: &str, metrics_path: &str) -> bool {
    if path == metrics_path {
        return true;
    }
    let path = path.strip_prefix("/api").unwrap_or(path);
    path.starts_with("/health") || path == "/openapi.json"
}

/// Who sent the request: the peer address, unless the peer is a trusted
/// proxy (`api.server.trusted_proxies`); then the nearest forwarded hop that
/// is not itself a trusted proxy (`X-Forwarded-For` read from the right,
/// else `X-Real-IP`). A hop that is not an address (`unknown`, garbage) ends
/// the walk at the last trusted hop: what lies left of it is the client's
/// own writing. Forwarded headers from anyone else are ignored.
fn source_ip(req: &Request, trusted: &[ipnet::IpNet]) -> String {
    let Some(peer) = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_canonical())
    else {
        return String::new();
    };
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer.to_string();
    }
    let hops: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if hops.is_empty() {
        return req
            .headers()
            .get("x-real-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_hop)
            .unwrap_or(peer)
            .to_string();
    }
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        match parse_hop(hop) {
            Some(ip) if is_trusted(&ip) => nearest = ip,
            Some(ip) => return ip.to_string(),
            None => break,
        }
    }
    nearest.to_string()
}

/// One forwarded hop: an address, with or without a port (`1.2.3.4:80`,
/// `[2001:db8::1]:443`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| hop.trim_matches(|c| c == '[' || c == ']').parse::<IpAddr>())
        .ok()
        .map(|ip| ip.to_canonical())
}

/// Status recorded for a request whose client went away before the answer
/// (nginx's convention): whatever it started is still in the log.
const CLIENT_CLOSED: u16 = 499;

/// A request being audited. Dropped before [`PendingAudit::finish`] (the
/// client closed the connection while, say, a synchronous node request
/// waited), it still writes the entry, in the background.
struct PendingAudit {
    state: AppState,
    slot: AuditSlot,
    started: Instant,
    timestamp: OffsetDateTime,
    method: String,
    path: String,
    source_ip: String,
    done: bool,
}

impl PendingAudit {
    fn entry(&self, response_code: u16) -> Option<AuditEntry> {
        let note = self.slot.take();
        let p = note.principal?;
        Some(
            AuditEntry {
                id: Uuid::new_v4(),
                timestamp: self.timestamp,
                user: p.subject.clone(),
                roles: p.roles.clone(),
                method: self.method.clone(),
                path: self.path.clone(),
                operation_id: None,
                source_ip: self.source_ip.clone(),
                response_code,
                duration_ms: self.started.elapsed().as_millis() as u64,
                action: note.action,
            }
            .bounded(),
        )
    }

    async fn finish(mut self, response_code: u16) {
        self.done = true;
        if let Some(entry) = self.entry(response_code) {
            write_audit(&self.state, entry).await;
        }
    }
}

impl Drop for PendingAudit {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(entry) = self.entry(CLIENT_CLOSED)
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let state = self.state.clone();
            rt.spawn(async move { write_audit(&state, entry).await });
        }
    }
}

async fn write_audit(state: &AppState, entry: AuditEntry) {
    if let Err(e) = state.bus.audit.put(entry).await {
        tracing::warn!(error = %e, "failed to write audit entry");
    }
}

/// Records every authenticated request (including 403s) in the audit log,
/// with what it started or changed; a request whose client left before the
/// answer is recorded too (status 499).
async fn audit_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if unaudited(req.uri().path(), &state.config.metrics_path) {
        return next.run(req).await;
    }
    let slot = AuditSlot::default();
    req.extensions_mut().insert(slot.clone());
    let pending = PendingAudit {
        source_ip: source_ip(&req, &state.config.trusted_proxies),
        state,
        slot,
        started: Instant::now(),
        timestamp: OffsetDateTime::now_utc(),
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        done: false,
    };
    let response = next.run(req).await.into_response();
    // Written before the response leaves, so a client that reads the log
    // right after a request finds it there.
    pending.finish(response.status().as_u16()).await;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, xff: &[&str], real: Option<&str>) -> Request {
        let mut b = axum::http::Request::builder().uri("/agent");
        for h in xff {
            b = b.header("x-forwarded-for", *h);
        }
        if let Some(r) = real {
            b = b.header("x-real-ip", r);
        }
        let mut req = b.body(axum::body::Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        req
    }

    #[test]
    fn forwarded_hops_are_believed_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let cases = [
            // Not a proxy: headers ignored.
            ("203.0.113.5:1000", vec!["6.6.6.6"], None, "203.0.113.5"),
            // Through a proxy: the nearest untrusted hop.
            (
                "10.0.0.1:1000",
                vec!["6.6.6.6, 198.51.100.7"],
                None,
                "198.51.100.7",
            ),
            (
                "10.0.0.1:1000",
                vec!["6.6.6.6, 198.51.100.7:4711"],
                None,
                "198.51.100.7",
            ),
            (
                "10.0.0.1:1000",
                vec!["7.7.7.7, [2001:db8::1]:443"],
                None,
                "2001:db8::1",
            ),
            // Through two proxies.
            (
                "10.0.0.1:1000",
                vec!["198.51.100.7, 10.0.0.9"],
                None,
                "198.51.100.7",
            ),
            // An unparseable hop ends the walk: the client's writing left of it is ignored.
            ("10.0.0.1:1000", vec!["8.8.8.8, unknown"], None, "10.0.0.1"),
            (
                "10.0.0.1:1000",
                vec!["8.8.8.8", "10.0.0.2, garbage"],
                None,
                "10.0.0.1",
            ),
            // X-Real-IP only without X-Forwarded-For.
            (
                "10.0.0.1:1000",
                vec![],
                Some("198.51.100.9"),
                "198.51.100.9",
            ),
            (
                "10.0.0.1:1000",
                vec!["198.51.100.7"],
                Some("6.6.6.6"),
                "198.51.100.7",
            ),
            // Mapped addresses are shown as IPv4.
            (
                "[::ffff:10.0.0.1]:1000",
                vec!["198.51.100.7"],
                None,
                "198.51.100.7",
            ),
        ];
        for (peer, xff, real, want) in cases {
            let req = request(peer, &xff, real);
            assert_eq!(source_ip(&req, &trusted), want, "{peer} {xff:?} {real:?}");
        }
    }
}
