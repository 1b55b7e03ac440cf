//! Verbose output: the `basic` plan with `.verbose()`, so every finished
//! step also prints its job id and its result data (sorted `key: value`
//! lines, e.g. `hostname: …` and `labels: …` under `get-hostname`).
//!
//! DAG: `health-check` → `get-hostname` (`_any`).
//!
//! Prints the run with data lines, then `Hostname: …`.
//!
//! Relative to upstream: upstream printed data keys in random map order and
//! never showed stderr; ours are sorted and include stderr and exit codes.
//!
//! `cargo run --example verbose` (embedded control plane), or with
//! `OSAPI_URL` and `OSAPI_TOKEN` set, against your controller.

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Local).await?;
    let o = env.builder().verbose().build()?;

    let health = o.health_check();
    let hostname = o.node_hostname_get("_any").after(&health);

    let report = env.run(&o).await?;
    let h: HostnameResult = report.result(&hostname)?;
    println!("Hostname: {}", h.hostname);
    env.shutdown().await;
    Ok(())
}
