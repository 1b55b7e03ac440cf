//! Distributed mode over NATS on this machine: a real nats-server, a
//! controller process and 20 agent processes.
//!
//! 1. jobs/s with 32 concurrent clients (`POST /job` + long-poll, `_any`,
//!    `node.hostname.get`) — target ≥ 1 000;
//! 2. broadcast `node.hostname.get` to 20 agent processes — target ≤ 0.3 s;
//! 3. the orchestrator benchmark's 3-step plan on 20 agent processes.
//!
//! Run: `cargo bench -p osapi-cli --bench nats`.
#![allow(clippy::unwrap_used)] // test code: a panic is how it fails

#[path = "../tests/distributed/fleet.rs"]
#[allow(dead_code)]
mod fleet;
#[path = "../tests/distributed/pki.rs"]
#[allow(dead_code)]
mod pki;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fleet::{AgentSpec, Cluster};
use osapi_api::job::{CreateJobRequest, JobStatus};
use osapi_orchestrator::prelude::*;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut c = Cluster::start(Duration::from_secs(15)).await;
        c.add_controller().await;
        let specs: Vec<AgentSpec> = (0..20).map(|i| AgentSpec::new(&format!("node-{i:02}"))).collect();
        c.add_agents(&specs).await;
        let client = c.client(0);

        // 1. Throughput.
        let req = CreateJobRequest::new("node.hostname.get", serde_json::json!({}), "_any");
        for _ in 0..50 {
            let j = client.create_job(&req).await.expect("create");
            client.wait_job(j.job_id, Duration::from_secs(30)).await.expect("wait");
        }
        let mut rtt = Vec::new();
        for _ in 0..200 {
            let t = Instant::now();
            let j = client.create_job(&req).await.expect("create");
            client.wait_job(j.job_id, Duration::from_secs(30)).await.expect("wait");
            rtt.push(t.elapsed());
        }
        println!("NATS: sequential round trip: median {:.2} ms", median(rtt).as_secs_f64() * 1e3);
        let done = Arc::new(AtomicU64::new(0));
        let seconds = 5;
        let stop = Instant::now() + Duration::from_secs(seconds);
        let started = Instant::now();
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (client, req, done) = (client.clone(), req.clone(), done.clone());
                tokio::spawn(async move {
                    while Instant::now() < stop {
                        let j = client.create_job(&req).await.expect("create");
                        let d = client.wait_job(j.job_id, Duration::from_secs(30)).await.expect("wait");
                        assert_eq!(d.status(), JobStatus::Completed);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("client");
        }
        let n = done.load(Ordering::Relaxed);
        println!(
            "NATS: jobs/s with 32 concurrent clients: {:.0} ({n} jobs in {:.1} s) (target >= 1000)",
            n as f64 / started.elapsed().as_secs_f64(),
            started.elapsed().as_secs_f64()
        );

        // 2. Broadcast to 20 agent processes.
        let mut samples = Vec::new();
        for _ in 0..9 {
            let t = Instant::now();
            let j = client.submit("node.hostname.get", serde_json::json!({}), "_all").await.expect("create");
            let d = client.wait_job(j.job_id, Duration::from_secs(30)).await.expect("wait");
            assert_eq!(d.responses.map(|r| r.len()), Some(20));
            samples.push(t.elapsed());
        }
        println!(
            "NATS: broadcast node.hostname.get to 20 agent processes: median {:.1} ms (target <= 300 ms)",
            median(samples).as_secs_f64() * 1e3
        );

        // 3. The 3-step plan.
        client
            .upload_file("motd", ContentType::Raw, &b"hello from the benchmark\n"[..], true)
            .await
            .expect("upload");
        let mut samples = Vec::new();
        for i in 0..7 {
            let o = Orchestrator::builder(&c.url(0), &c.token()).quiet().build().expect("orchestrator");
            let who = o.command_exec("_all", "whoami", &[]);
            let guarded = o
                .command_exec("_all", "true", &[])
                .after(&who)
                .when(|r| r.status("run-whoami") == StepStatus::Changed);
            let path = format!("{}/motd-{i}-@fact.hostname", c.dir.path().display());
            o.file_deploy("_all", FileDeployOpts::new("motd", path).mode("0644")).after(&guarded);
            let t = Instant::now();
            let report = o.run().await.expect("plan");
            assert_eq!(report.count(StepStatus::Failed), 0);
            samples.push(t.elapsed());
        }
        println!(
            "NATS: 3-step plan (whoami, when-guarded true, deploy) on 20 agent processes: median {:.1} ms",
            median(samples).as_secs_f64() * 1e3
        );
    });
}
