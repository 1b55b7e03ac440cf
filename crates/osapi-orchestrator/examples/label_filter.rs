//! Label and fact filters: discover the agents with a given label and a
//! given fact value.
//!
//! Before the plan: `o.discover(&[has_label("role", "web"),
//! fact_equals("env", "prod")])` prints `Found <n> prod web agents` and
//! `  <hostname> (labels=<k=v, …>)` per agent (in the embedded fleet:
//! exactly web-01). DAG: `health-check` → one `get-hostname` per agent.
//!
//! Prints the discovery, the run, then `  <agent> -> <hostname>` per agent.
//!
//! Relative to upstream: labels print as sorted `k=v` pairs instead of Go
//! map syntax; `fact_equals` compares JSON values (numbers by value), never
//! panicking on lists or maps.
//!
//! `cargo run --example label-filter` (embedded control plane with web-01,
//! web-02 and db-01), or with `OSAPI_URL` and `OSAPI_TOKEN` set, against
//! your controller.

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Three).await?;
    let o = env.orchestrator()?;
    if !env.has_custom_fact(&o, "env").await? {
        env.shutdown().await;
        return Ok(());
    }

    let agents = o
        .discover(&[has_label("role", "web"), fact_equals("env", "prod")])
        .await?;
    println!("Found {} prod web agents", agents.len());
    for a in &agents {
        println!(
            "  {} (labels={})",
            a.hostname,
            common::key_values(&a.labels)
        );
    }

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
