//! `GET /metrics` (`telemetry.metrics.path`): the controller's Prometheus
//! metrics, and the layer that counts every HTTP request for them.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use osapi_api::agent::AgentState;
use osapi_api::auth::Permission;
use tracing::Instrument;

use crate::error::ApiResult;
use crate::metrics::AuthFailure;
use crate::state::AppState;

/// The content type of Prometheus' text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics as text. Open to anyone, as upstream, unless
/// `telemetry.metrics.auth` asks for a token with `health:read`.
pub async fn serve(State(state): State<AppState>, req: Request) -> ApiResult<Response> {
    if state.config.metrics_auth {
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        state
            .auth
            .authenticate(header)?
            .require(Permission::HealthRead)?;
    }
    let agents: Vec<AgentState> = match state.directory.fleet().await {
        Ok(fleet) => fleet.agents.iter().map(|a| a.state()).collect(),
        // The scrape still answers; the bus error is counted.
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the agent list");
            Vec::new()
        }
    };
    let text = state.metrics.render(agents, state.bus.status.reconnects());
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response())
}

/// The `method` label: a standard method, or `other` (a client may send
/// any token as a method, and each would be a new series).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Runs each request in a `request` span (method, route template, and the
/// id, operation and target of a job it creates), counts it by method, route and status, times
/// it, and counts authentication failures by reason.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        method,
        route = route.as_deref().unwrap_or("unmatched"),
        job_id = tracing::field::Empty,
        operation = tracing::field::Empty,
        target = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    let response = next.run(req).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    if let Some(why) = response.extensions().get::<AuthFailure>() {
        state.metrics.auth_failure(*why);
    }
    state.metrics.request(
        method,
        route.as_deref().unwrap_or("unmatched"),
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standard_methods_become_labels() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let made_up = Method::from_bytes(b"X-RANDOM-1234").unwrap();
        assert_eq!(method_label(&made_up), "other");
    }
}
