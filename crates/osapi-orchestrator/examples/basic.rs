//! The smallest plan: check the controller, then read a hostname.
//!
//! `cargo run --example basic` (embedded control plane), or with
//! `OSAPI_URL` and `OSAPI_TOKEN` set, against your controller.

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Local).await?;
    let o = env.orchestrator()?;

    let health = o.health_check();
    let hostname = o.node_hostname_get("_any").after(&health);

    let report = env.run(&o).await?;
    let h: HostnameResult = report.result(&hostname)?;
    println!("Hostname: {}", h.hostname);
    env.shutdown().await;
    Ok(())
}
