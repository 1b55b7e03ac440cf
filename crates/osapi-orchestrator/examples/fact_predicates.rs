//! Fact predicates: discover agents that match several predicates at once.
//!
//! Before the plan: `o.discover(&[arch(<this machine's arch>), min_cpu(1),
//! min_memory(512 MiB)])` prints `Found <n> agents matching all predicates`
//! and `  <hostname> (<distribution> <arch>, <n> CPUs)` per agent. DAG:
//! `health-check` → one `get-load` per agent (`get-load`, `get-load-2`, …).
//!
//! Prints the discovery, the run, then each agent's load averages.
//!
//! Relative to upstream: upstream required Ubuntu on amd64 with 4 CPUs and
//! "8GB" of memory that was really 8000 bytes; we match this machine's
//! architecture and ask for 512 MiB in bytes.
//!
//! `cargo run --example fact-predicates` (embedded control plane with
//! web-01, web-02 and db-01), or with `OSAPI_URL` and `OSAPI_TOKEN` set,
//! against your controller.

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Three).await?;
    let o = env.orchestrator()?;

    let agents = o
        .discover(&[
            arch(std::env::consts::ARCH),
            min_cpu(1),
            min_memory(512 * 1024 * 1024),
        ])
        .await?;
    println!("Found {} agents matching all predicates", agents.len());
    for a in &agents {
        println!(
            "  {} ({} {}, {} CPUs)",
            a.hostname,
            a.os_info
                .as_ref()
                .map(|os| os.distribution.as_str())
                .unwrap_or("unknown"),
            a.architecture.as_deref().unwrap_or("unknown"),
            a.cpu_count.unwrap_or(0)
        );
    }

    let health = o.health_check();
    let steps: Vec<(String, Step<LoadResult>)> = agents
        .iter()
        .map(|a| {
            (
                a.hostname.clone(),
                o.node_load_get(&a.hostname).after(&health),
            )
        })
        .collect();

    let report = env.run(&o).await?;

    println!();
    for (host, step) in &steps {
        let l = report.result(step)?;
        println!(
            "  {host}: load {:.2} {:.2} {:.2}",
            l.load1, l.load5, l.load15
        );
    }

    env.shutdown().await;
    Ok(())
}
