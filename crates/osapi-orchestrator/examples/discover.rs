//! Discovery: pick agents by their facts while building the plan, then give
//! each one a step of its own.
//!
//! Before the plan: `o.discover(&[arch(<this machine's arch>), min_cpu(1)])`
//! prints `Discovered <n> matching agents`. DAG: `health-check` → one
//! `get-hostname` per agent, targeted at its hostname (`get-hostname`,
//! `get-hostname-2`, …).
//!
//! Prints the discovery line, the run, then `  <agent> -> <hostname>` per
//! agent.
//!
//! Relative to upstream: upstream looked for `Ubuntu` on `amd64` only, so it
//! found nothing on most other machines; we match the architecture this
//! example runs on (`x86_64` and `amd64` are the same architecture).
//!
//! `cargo run --example discover` (embedded control plane with web-01,
//! web-02 and db-01), or with `OSAPI_URL` and `OSAPI_TOKEN` set, against
//! your controller.

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Three).await?;
    let o = env.orchestrator()?;

    let agents = o
        .discover(&[arch(std::env::consts::ARCH), min_cpu(1)])
        .await?;
    println!("Discovered {} matching agents", agents.len());

    let health = o.health_check();
    let steps: Vec<(String, Step<HostnameResult>)> = agents
        .iter()
        .map(|a| {
            (
                a.hostname.clone(),
                o.node_hostname_get(&a.hostname).after(&health),
            )
        })
        .collect();

    let report = env.run(&o).await?;

    println!();
    for (agent, step) in &steps {
        let h = report.result(step)?;
        println!("  {agent} -> {}", h.hostname);
    }

    env.shutdown().await;
    Ok(())
}
