//! Retries: a job step with immediate retries, and a custom step that fails
//! twice before it succeeds, retried with exponential back-off.
//!
//! DAG: `health-check` → {`get-load` (`.retry(3)`), `flaky` (custom step,
//! `.retry_with(RetryPolicy::exponential(3).initial(100 ms))`)}.
//!
//! Prints the run: `flaky` shows `[start]`, two `[retry]` lines
//! (`attempt=1`, `attempt=2`) and then `[changed]`; afterwards the load and
//! how many attempts `flaky` needed.
//!
//! Relative to upstream: upstream's `get-load` never fails, so its `[retry]`
//! lines were never seen; the `flaky` step (counting attempts with
//! `ctx.attempt`) makes them show, and its back-off is jittered and capped.
//!
//! `cargo run --example retry` (embedded control plane), or with
//! `OSAPI_URL` and `OSAPI_TOKEN` set, against your controller.

mod common;

use std::time::Duration;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Local).await?;
    let o = env.orchestrator()?;

    let health = o.health_check();
    let load = o.node_load_get("_any").after(&health).retry(3);
    let flaky = o
        .task_fn("flaky", |ctx, _results| async move {
            if ctx.attempt < 3 {
                return Err(TaskError::new(format!(
                    "transient failure on attempt {}",
                    ctx.attempt
                )));
            }
            Ok(TaskOutput::changed(ctx.attempt))
        })
        .after(&health)
        .retry_with(RetryPolicy::exponential(3).initial(Duration::from_millis(100)));

    let report = env.run(&o).await?;

    println!();
    let l: LoadResult = report.result(&load)?;
    println!("Load: {:.2} {:.2} {:.2}", l.load1, l.load5, l.load15);
    let attempts: u32 = report.result(&flaky)?;
    println!("flaky succeeded on attempt {attempts}");

    env.shutdown().await;
    Ok(())
}
