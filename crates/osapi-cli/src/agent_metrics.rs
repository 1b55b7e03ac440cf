//! The agent's Prometheus endpoint (`agent.metrics.listen`): `GET /metrics`
//! on a socket of its own, served with the controller's connection limits
//! (so idle or half-open sockets cannot pile up).

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use osapi_agent::metrics::AgentMetrics;
use osapi_server::ConnectionLimits;
use tokio::net::TcpListener;

/// Serves `metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<AgentMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    );
    if let Err(e) =
        osapi_server::listener::serve(listener, app, ConnectionLimits::default(), shutdown).await
    {
        tracing::warn!(error = %e, "agent metrics endpoint stopped");
    }
}
