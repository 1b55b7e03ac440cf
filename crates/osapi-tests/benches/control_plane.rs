//! Benchmark of the embedded control plane (controller + agent + memory bus,
//! HTTP on loopback):
//!
//! 1. round trip of `POST /job` + `GET /job/{id}?wait` for `node.hostname.get`,
//!    one client, sequential (median, p90, p99);
//! 2. jobs per second with 32 concurrent clients, each doing the same round trip.
//!
//! Run: `cargo bench -p osapi-tests --bench control_plane` (release build).
//! `BENCH_SECONDS` sets the length of the throughput phase (default 5).
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use osapi_agent::AgentConfig;
use osapi_api::job::{CreateJobRequest, JobStatus};
use osapi_client::Client;
use osapi_embedded::Embedded;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

async fn round_trip(client: &Client, req: &CreateJobRequest) {
    let created = client.create_job(req).await.expect("create");
    let done = client
        .job_wait(created.job_id, Duration::from_secs(10))
        .await
        .expect("wait");
    assert_eq!(done.status(), JobStatus::Completed, "{done:?}");
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let stack = Embedded::builder()
            .agent(AgentConfig::named("bench-agent"))
            .bus_config(|b| b.max_jobs = 50_000)
            .start()
            .await
            .expect("embedded stack");
        let client = Client::new(stack.url(), stack.token()).expect("client");
        let req = CreateJobRequest::new("node.hostname.get", serde_json::json!({}), "_any");

        for _ in 0..200 {
            round_trip(&client, &req).await;
        }
        let n = 2000;
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            round_trip(&client, &req).await;
            samples.push(t.elapsed());
        }
        samples.sort();
        println!(
            "round trip (POST /job + GET /job/{{id}}?wait, node.hostname.get), {n} samples: median {:.3} ms, p90 {:.3} ms, p99 {:.3} ms (target: median <= 2 ms)",
            percentile(&samples, 0.5).as_secs_f64() * 1e3,
            percentile(&samples, 0.9).as_secs_f64() * 1e3,
            percentile(&samples, 0.99).as_secs_f64() * 1e3,
        );

        let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
        let clients = 32;
        let done = Arc::new(AtomicU64::new(0));
        let stop = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let client = client.clone();
            let req = req.clone();
            let done = done.clone();
            tasks.push(tokio::spawn(async move {
                while Instant::now() < stop {
                    round_trip(&client, &req).await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for t in tasks {
            t.await.expect("client task");
        }
        let total = done.load(Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        println!(
            "throughput with {clients} concurrent clients: {:.0} jobs/s ({total} jobs in {elapsed:.2} s) (target: >= 5000 jobs/s)",
            total as f64 / elapsed
        );
        stack.shutdown().await;
    });
}
