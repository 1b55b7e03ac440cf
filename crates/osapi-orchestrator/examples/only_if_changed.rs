//! `only_if_changed`: a step that runs only if one of its dependencies
//! changed something.
//!
//! DAG: `health-check` → {`get-hostname`, `get-disk`} → `run-df` (exec
//! `df -h`, after `get-disk`, `.only_if_changed()`). Reading the disks
//! changes nothing, so `run-df` is skipped:
//! `[skip]     run-df                    reason="no dependencies changed"`
//! and the run completes with `4 steps, 3 unchanged, 1 skipped`.
//!
//! Prints the run, then why `run-df` did not run.
//!
//! Relative to upstream: the same plan; `df`'s auto name is already
//! `run-df`, the `.named("run-df")` is kept to show renaming.
//!
//! `cargo run --example only-if-changed` (embedded control plane), or with
//! `OSAPI_URL` and `OSAPI_TOKEN` set, against your controller.

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Local).await?;
    let o = env.orchestrator()?;

    let health = o.health_check();
    let _hostname = o.node_hostname_get("_any").after(&health);
    let disk = o.node_disk_get("_any").after(&health);
    let df = o
        .command_exec("_any", "df", &["-h"])
        .named("run-df")
        .after(&disk)
        .only_if_changed();

    let report = env.run(&o).await?;

    println!();
    match report.get(&df) {
        Some(step) if step.status == StepStatus::Skipped => println!(
            "run-df did not run: {}",
            step.skip_reason.as_deref().unwrap_or("")
        ),
        _ => {
            let out: CommandResult = report.result(&df)?;
            println!("df -h:\n{}", out.stdout.trim_end());
        }
    }

    env.shutdown().await;
    Ok(())
}
