//! OTLP export of spans (the `otel` feature; CI builds every feature):
//! `osapi start` with `telemetry.tracing.exporter: otlp` sends its spans to
//! a collector. The collector here is a stand-in written from the OTLP/HTTP
//! specification (it takes `POST /v1/traces` and keeps the protobuf
//! bodies): a real OpenTelemetry Collector cannot run on this machine.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;

#[path = "support/ports.rs"]
mod ports;

const BIN: &str = env!("CARGO_BIN_EXE_osapi");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector() {
    let received: Arc<Mutex<Vec<(String, Bytes)>>> = Arc::default();
    let store = received.clone();
    let collector = Router::new().route(
        "/v1/traces",
        post(move |headers: axum::http::HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                let kind = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                store.lock().unwrap().push((kind, body));
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let port = ports::free_port();
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 10.9.9.9\n").unwrap();
    let config = dir.path().join("osapi.yaml");
    let mut f = std::fs::File::create(&config).unwrap();
    write!(
        f,
        "api:\n  server:\n    port: {port}\n    security:\n      signing_key: otel-key\n\
         agent:\n  hostname: otel-agent\n  dns: {{resolv_conf: {}, resolvectl: never}}\n\
         telemetry:\n  tracing: {{exporter: otlp, otlp_endpoint: \"http://{collector_addr}\"}}\n",
        resolv.display()
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .arg("-f")
        .arg(&config)
        .arg("start")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("start.log")).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Read to the end, so the process can print until it exits.
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(token) = line.strip_prefix("  export OSAPI_TOKEN=")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(token.to_string());
            }
        }
    });
    let token = rx.await.expect("osapi start prints a token");

    // A request that creates a job: a request span and the agent's job span.
    let resp = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/node/otel-agent/hostname"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Spans still buffered leave when the process stops.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(dir.path().join("start.log")).unwrap()
    );
    let end = Instant::now() + Duration::from_secs(10);
    let contains = |bodies: &[(String, Bytes)], what: &[u8]| {
        bodies
            .iter()
            .any(|(_, b)| b.windows(what.len()).any(|w| w == what))
    };
    loop {
        let bodies = received.lock().unwrap().clone();
        if contains(&bodies, b"request") && contains(&bodies, b"job") {
            assert!(
                bodies
                    .iter()
                    .all(|(kind, _)| kind == "application/x-protobuf"),
                "OTLP/HTTP with protobuf"
            );
            // The service, the route template and the agent's host travel
            // as strings in the protobuf.
            assert!(contains(&bodies, b"osapi"));
            assert!(contains(&bodies, b"/node/{hostname}/hostname"));
            assert!(contains(&bodies, b"otel-agent"));
            // One trace: the agent's job span is a child of the request
            // that created the job (its traceparent rode in the job).
            let spans: Vec<Span> = bodies.iter().flat_map(|(_, b)| spans_of(b)).collect();
            let request = spans
                .iter()
                .find(|s| s.name == "request")
                .expect("a request span");
            let job = spans.iter().find(|s| s.name == "job").expect("a job span");
            assert_eq!(job.trace_id.len(), 16);
            assert_eq!(job.trace_id, request.trace_id, "one trace");
            assert_eq!(
                job.parent_span_id, request.span_id,
                "the request is the parent"
            );
            break;
        }
        assert!(
            Instant::now() < end,
            "the collector got {} bodies without both spans",
            bodies.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What the test reads of an OTLP span.
#[derive(Debug)]
struct Span {
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
}

/// The spans of an OTLP `ExportTraceServiceRequest` (protobuf):
/// `resource_spans` (1) → `scope_spans` (2) → `spans` (2), each with
/// `trace_id` (1), `span_id` (2), `parent_span_id` (4) and `name` (5).
fn spans_of(body: &[u8]) -> Vec<Span> {
    let mut out = Vec::new();
    for resource in fields(body, 1) {
        for scope in fields(resource, 2) {
            for span in fields(scope, 2) {
                let one = |n| {
                    fields(span, n)
                        .first()
                        .map(|b| b.to_vec())
                        .unwrap_or_default()
                };
                out.push(Span {
                    name: String::from_utf8_lossy(&one(5)).into_owned(),
                    trace_id: one(1),
                    span_id: one(2),
                    parent_span_id: one(4),
                });
            }
        }
    }
    out
}

/// The length-delimited fields numbered `number` of a protobuf message
/// (other fields skipped by their wire type).
fn fields(mut buf: &[u8], number: u64) -> Vec<&[u8]> {
    fn varint(buf: &mut &[u8]) -> u64 {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = buf.split_first().expect("a complete varint");
            *buf = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                break;
            }
        }
        value
    }
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf);
        match key & 7 {
            0 => {
                varint(&mut buf);
            }
            1 => buf = &buf[8..],
            2 => {
                let len = varint(&mut buf) as usize;
                let (field, rest) = buf.split_at(len);
                if key >> 3 == number {
                    out.push(field);
                }
                buf = rest;
            }
            5 => buf = &buf[4..],
            other => panic!("wire type {other} in an OTLP body"),
        }
    }
    out
}
