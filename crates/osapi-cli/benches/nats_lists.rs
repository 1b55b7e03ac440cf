//! Listing and counting on NATS at scale: a real nats-server, a controller
//! process and two agent processes, 20 000 finished jobs (and the audit
//! entries their requests leave, about 20 000 more).
//!
//! 1. `GET /job?limit=1` — target < 100 ms at 20 000 jobs;
//! 2. `GET /job?status=completed&limit=10` and `GET /job/status`;
//! 3. `GET /audit?limit=20` — target < 100 ms at 25 000 entries;
//! 4. a second controller started against the full buckets: time until its
//!    first `GET /job?limit=1` answers (the index loads from the buckets).
//!
//! Run: `cargo bench -p osapi-cli --bench nats_lists`.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

#[path = "../tests/distributed/fleet.rs"]
#[allow(dead_code)]
mod fleet;
#[path = "../tests/distributed/pki.rs"]
#[allow(dead_code)]
mod pki;

use std::time::{Duration, Instant};

use fleet::{AgentSpec, Cluster};
use futures::StreamExt;
use osapi_api::job::{CreateJobRequest, JobStatus};

const JOBS: usize = 20_000;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn time<F, Fut, T>(runs: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f().await;
        samples.push(t.elapsed());
    }
    median(samples)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut c = Cluster::start(Duration::from_secs(15)).await;
        c.add_controller().await;
        c.add_agents(&[AgentSpec::new("node-a"), AgentSpec::new("node-b")])
            .await;
        let client = c.client(0);
        let req = CreateJobRequest::new("node.hostname.get", serde_json::json!({}), "_any");
        let t = Instant::now();
        let ids: Vec<uuid::Uuid> = futures::stream::iter(0..JOBS)
            .map(|_| {
                let (client, req) = (client.clone(), req.clone());
                async move { client.create_job(&req).await.expect("create").job_id }
            })
            .buffer_unordered(32)
            .collect()
            .await;
        let last = *ids.last().unwrap();
        client
            .wait_job(last, Duration::from_secs(120))
            .await
            .expect("last job");
        loop {
            let stats = client.job_stats().await.expect("stats");
            if stats.status_counts["completed"] == JOBS {
                break;
            }
            if t.elapsed() > Duration::from_secs(300) {
                let name = format!("controller-{}", c.controllers[0].0);
                panic!("jobs never all completed; controller log:\n{}", c.log(&name));
            }
            tokio::time::sleep(Duration::from_millis(1000)).await;
        }
        println!(
            "NATS lists: {JOBS} jobs created and finished in {:.1} s",
            t.elapsed().as_secs_f64()
        );

        let page = time(50, || async {
            let p = client.jobs(None, 1, 0).await.expect("page");
            assert_eq!(p.total_items, JOBS);
        })
        .await;
        println!("NATS lists: GET /job?limit=1 at {JOBS} jobs: median {} (target < 100 ms)", ms(page));
        let filtered = time(50, || async {
            let p = client.jobs(Some(JobStatus::Completed), 10, 100).await.expect("page");
            assert_eq!(p.items.len(), 10);
        })
        .await;
        println!(
            "NATS lists: GET /job?status=completed&limit=10&offset=100: median {}",
            ms(filtered)
        );
        let stats = time(50, || async {
            client.job_stats().await.expect("stats");
        })
        .await;
        println!("NATS lists: GET /job/status at {JOBS} jobs: median {}", ms(stats));

        // More audited requests, so the log holds over 25 000 entries.
        futures::stream::iter(0..6_000)
            .map(|_| {
                let client = client.clone();
                async move { client.agents().await.expect("agents") }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>()
            .await;
        let audit_total = client.audit(1, 0).await.expect("audit").total_items;
        assert!(audit_total >= 25_000, "{audit_total} audit entries");
        let audit = time(50, || async {
            let p = client.audit(20, 0).await.expect("audit");
            assert_eq!(p.items.len(), 20);
        })
        .await;
        println!(
            "NATS lists: GET /audit?limit=20 at {audit_total} entries: median {} (target < 100 ms)",
            ms(audit)
        );

        let t = Instant::now();
        c.add_controller().await;
        let second = c.client(1);
        let p = second.jobs(None, 1, 0).await.expect("page");
        assert_eq!(p.total_items, JOBS);
        println!(
            "NATS lists: a new controller's first GET /job?limit=1 (index loaded from {JOBS} jobs) {:.2} s after start",
            t.elapsed().as_secs_f64()
        );
    });
}
