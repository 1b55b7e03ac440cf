//! Parallel steps: after the health check, five read-only queries share one
//! dependency, so they form one level and run at the same time.
//!
//! DAG: `health-check` → {`get-hostname`, `get-disk`, `get-memory`,
//! `get-load`, `get-uptime`} (all on `_any`).
//!
//! Prints the plan (`Plan: 6 steps in 2 levels`), the live run, then one line
//! per typed result (`Hostname: …`, `Disk /: 12.3 GiB used of 49.1 GiB`,
//! `Memory: …`, `Load: …`, `Uptime: …`).
//!
//! Relative to upstream: upstream only printed the summary again; we decode
//! each step's typed result through its handle.
//!
//! `cargo run --example parallel` (embedded control plane), or with
//! `OSAPI_URL` and `OSAPI_TOKEN` set, against your controller.

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Local).await?;
    let o = env.orchestrator()?;

    let health = o.health_check();
    let hostname = o.node_hostname_get("_any").after(&health);
    let disk = o.node_disk_get("_any").after(&health);
    let memory = o.node_memory_get("_any").after(&health);
    let load = o.node_load_get("_any").after(&health);
    let uptime = o.node_uptime_get("_any").after(&health);

    let report = env.run(&o).await?;

    println!();
    let h: HostnameResult = report.result(&hostname)?;
    println!("Hostname: {}", h.hostname);
    let d: DiskResult = report.result(&disk)?;
    match d.disks.iter().find(|x| x.name == "/").or(d.disks.first()) {
        Some(root) => println!(
            "Disk {}: {} used of {}",
            root.name,
            common::gib(root.used),
            common::gib(root.total)
        ),
        None => println!("Disk: no filesystems reported"),
    }
    let m: MemoryResult = report.result(&memory)?;
    println!(
        "Memory: {} used of {}",
        common::gib(m.used),
        common::gib(m.total)
    );
    let l: LoadResult = report.result(&load)?;
    println!("Load: {:.2} {:.2} {:.2}", l.load1, l.load5, l.load15);
    let u: UptimeResult = report.result(&uptime)?;
    println!("Uptime: {}", u.uptime);

    env.shutdown().await;
    Ok(())
}
