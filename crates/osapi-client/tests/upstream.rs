//! The client against upstream-shaped responses. Upstream's Go server cannot
//! run here, so a small stand-in server replays bodies written from the
//! upstream specification's examples (tests/fixtures). It behaves like
//! upstream where it matters: it ignores `?wait=` and answers at once.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use osapi_api::job::JobStatus;
use osapi_api::results::LoadResult;
use osapi_client::{Client, ClientError};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn json(body: String) -> impl IntoResponse {
    ([("content-type", "application/json")], body)
}

#[derive(Clone, Default)]
struct Upstream {
    polls: Arc<AtomicUsize>,
}

async fn job(State(s): State<Upstream>) -> impl IntoResponse {
    // Processing for the first three polls, then completed: no long-polling.
    let n = s.polls.fetch_add(1, Ordering::SeqCst);
    json(fixture(if n < 3 {
        "job_processing.json"
    } else {
        "job_completed.json"
    }))
}

async fn start() -> (Client, Upstream) {
    let state = Upstream::default();
    let app = Router::new()
        .route("/job", post(|| async {
            (StatusCode::CREATED, json(r#"{"job_id":"550e8400-e29b-41d4-a716-446655440000","status":"created","revision":17,"timestamp":"2026-03-06T10:00:00-08:00"}"#.into()))
        }))
        .route("/job/{id}", get(job))
        .route("/agent", get(|| async { json(fixture("agents.json")) }))
        .route("/agent/{h}", get(|| async { (StatusCode::NOT_FOUND, json(r#"{"error":"agent not found: x"}"#.into())) }))
        .route("/node/{h}", get(|| async { json(fixture("node_status.json")) }))
        .route("/node/{h}/network/dns/{i}", get(|| async { json(fixture("dns_null_servers.json")) }))
        .route("/node/{h}/network/ping", post(|| async { json(fixture("ping.json")) }))
        .route("/health/status", get(|| async { json(fixture("health_status.json")) }))
        .route("/job/status", get(|| async { json(fixture("queue_stats_empty.json")) }))
        .route("/audit", get(|| async { json(fixture("audit.json")) }))
        .route("/file", get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, json(r#"{"message":"Internal Server Error"}"#.into())) }))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (
        Client::new(&format!("http://{addr}"), "token").unwrap(),
        state,
    )
}

#[tokio::test]
async fn wait_falls_back_to_polling_when_wait_is_ignored() {
    let (client, upstream) = start().await;
    let created = client
        .submit("node.hostname.get", serde_json::json!({}), "_any")
        .await
        .unwrap();
    assert_eq!(created.revision, 17);
    assert_eq!(created.status, "created");
    let started = Instant::now();
    let done = client
        .wait_job(created.job_id, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(done.status(), JobStatus::Completed);
    assert_eq!(done.result.unwrap()["labels"]["group"], "web.dev.us-east");
    assert_eq!(upstream.polls.load(Ordering::SeqCst), 4);
    // Three back-off sleeps of 50–170 ms each (±50 % jitter), not 30 s waits.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn upstream_bodies_decode() {
    let (client, _) = start().await;
    let agents = client.agents().await.unwrap();
    let a = &agents.agents[0];
    assert_eq!(a.load_average.as_ref().unwrap().one_min, 0.32);
    assert_eq!(a.memory.as_ref().unwrap().used, 4_194_304_000);
    assert_eq!(a.routes[0].metric, Some(100));
    assert_eq!(a.conditions[0].condition_type, "MemoryPressure");
    assert_eq!(a.cpu_count, Some(8));

    let status = client.node_status("web-01").await.unwrap();
    assert_eq!(
        status.results[0].disks.as_ref().unwrap()[0].total,
        500_000_000_000
    );
    let dns = client.node_dns("web-01", "eth0").await.unwrap();
    assert_eq!(dns.results[0].servers, None);
    assert_eq!(
        dns.results[0].search_domains.as_deref(),
        Some(&[".".to_string()][..])
    );
    let ping = client.node_ping("web-01", "8.8.8.8").await.unwrap();
    assert_eq!(ping.results[0].avg_rtt.as_deref(), Some("18.65ms"));
    let health = client.status().await.unwrap();
    assert_eq!(health.jobs.unwrap().completed, 90);
    assert_eq!(health.components["kv"].status, "error");
    let stats = client.job_stats().await.unwrap();
    assert!(!stats.status_counts.contains_key("partial_failure"));
    let audit = client.audit(20, 0).await.unwrap();
    assert_eq!(audit.items[0].duration_ms, 42);
}

#[tokio::test]
async fn errors_carry_the_server_message() {
    let (client, _) = start().await;
    let err = client.agent("x").await.unwrap_err();
    assert!(
        matches!(&err, ClientError::NotFound { message } if message == "agent not found: x"),
        "{err:?}"
    );
    let err = client.files().await.unwrap_err();
    assert!(matches!(err, ClientError::Server { status: 500, .. }));
    assert_eq!(
        err.message(),
        "Internal Server Error",
        "upstream framework envelope"
    );
    let closed = Client::new("http://127.0.0.1:1", "t").unwrap();
    let refused = closed.health().await.unwrap_err();
    assert!(matches!(refused, ClientError::Transport { .. }));
    // The HTTP client's error stays reachable as the source.
    let source = std::error::Error::source(&refused).expect("a source");
    assert!(
        source.to_string().starts_with("error sending request"),
        "{source}"
    );
    assert!(matches!(
        client
            .upload_file("x", osapi_api::ops::ContentType::Raw, Vec::new(), false)
            .await,
        Err(ClientError::InvalidInput { .. })
    ));
}

#[test]
fn broadcast_results_with_go_keys_decode() {
    let d: osapi_api::job::JobDetail = serde_json::from_str(&fixture("job_partial.json")).unwrap();
    assert_eq!(d.status(), JobStatus::PartialFailure);
    let r = d.responses.unwrap();
    let load: LoadResult = serde_json::from_value(r["web_01"].data.clone().unwrap()).unwrap();
    assert_eq!(load.load1, 0.32);
    assert!(r["db_01"].error.as_deref().unwrap().contains("boom"));
}
