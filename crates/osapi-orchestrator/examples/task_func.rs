//! Custom steps: `task_fn_with` runs your own async code as a step of the plan,
//! with data it owns (here the handle of an earlier step, so no clone is
//! needed inside the closure), reading earlier results and returning typed
//! data of its own.
//!
//! DAG: `health-check` → `get-hostname` → `summarize` (custom step: decodes
//! `get-hostname`, prints `  Hostname: <h>` while it runs, and returns
//! `changed` with data `{"host": <h>}`).
//!
//! Prints the run (`Complete: 3 steps, 1 changed, 2 unchanged`), then
//! `Report hostname: <h>` decoded from the `summarize` step.
//!
//! Relative to upstream: the custom step's data is a typed struct and is
//! decoded through the step handle; a decode error fails the step instead of
//! being swallowed.
//!
//! `cargo run --example task-func` (embedded control plane), or with
//! `OSAPI_URL` and `OSAPI_TOKEN` set, against your controller.

mod common;

use osapi_orchestrator::prelude::*;
use serde::{Deserialize, Serialize};

/// What `summarize` returns.
#[derive(Serialize, Deserialize)]
struct Summary {
    host: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Local).await?;
    let o = env.orchestrator()?;

    let health = o.health_check();
    let hostname = o.node_hostname_get("_any").after(&health);
    let summarize = o
        .task_fn_with(
            "summarize",
            hostname.clone(),
            |_ctx, results, hostname| async move {
                let h: HostnameResult = results.result(&hostname)?;
                println!("  Hostname: {}", h.hostname);
                Ok(TaskOutput::changed(Summary { host: h.hostname }))
            },
        )
        .after(&hostname);

    let report = env.run(&o).await?;

    let summary: Summary = report.result(&summarize)?;
    println!("Report hostname: {}", summary.host);

    env.shutdown().await;
    Ok(())
}
