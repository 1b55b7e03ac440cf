//! Condition filters: discover only agents whose hosts are healthy.
//!
//! Before the plan: `o.discover(&[no_condition("DiskPressure"), healthy()])`
//! prints `Discovered <n> healthy agents` (an agent under memory, disk or
//! load pressure is left out). DAG: `health-check` → one `get-hostname` per
//! agent.
//!
//! Prints the discovery, the run, then `  <agent> -> <hostname>` per agent.
//!
//! Relative to upstream: the same filter; condition types match in any
//! case, and an agent that reports no conditions counts as healthy.
//!
//! `cargo run --example condition-filter` (embedded control plane with
//! web-01, web-02 and db-01), or with `OSAPI_URL` and `OSAPI_TOKEN` set,
//! against your controller.

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Three).await?;
    let o = env.orchestrator()?;

    let agents = o
        .discover(&[no_condition("DiskPressure"), healthy()])
        .await?;
    println!("Discovered {} healthy agents", agents.len());

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
