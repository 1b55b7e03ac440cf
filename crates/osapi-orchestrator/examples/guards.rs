//! Guards: a step that runs only if a condition on earlier results holds.
//!
//! DAG: `health-check` → `get-hostname` → `run-whoami`, where `run-whoami`
//! (exec `whoami`) has a `when` guard that decodes `get-hostname` and runs
//! only if the hostname is non-empty; otherwise it would be reported as
//! `[skip] run-whoami reason="when: guard returned false"`.
//!
//! Prints the run, then `Hostname: …` and `whoami: …` (or why it skipped).
//!
//! Relative to upstream: the guard reads the step by the handle's name
//! instead of a hard-coded string, and a guard that panics fails its step
//! instead of crashing the run.
//!
//! `cargo run --example guards` (embedded control plane), or with
//! `OSAPI_URL` and `OSAPI_TOKEN` set, against your controller.

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Local).await?;
    let o = env.orchestrator()?;

    let health = o.health_check();
    let hostname = o.node_hostname_get("_any").after(&health);
    let hostname_step = hostname.name();
    let whoami = o
        .command_exec("_any", "whoami", &[])
        .after(&hostname)
        .when(move |results| {
            results
                .decode::<HostnameResult>(&hostname_step)
                .is_ok_and(|h| !h.hostname.is_empty())
        });

    let report = env.run(&o).await?;

    println!();
    let h: HostnameResult = report.result(&hostname)?;
    println!("Hostname: {}", h.hostname);
    match report.get(&whoami) {
        Some(step) if step.status == StepStatus::Skipped => {
            println!(
                "whoami skipped: {}",
                step.skip_reason.as_deref().unwrap_or("")
            );
        }
        _ => {
            let who: CommandResult = report.result(&whoami)?;
            println!("whoami: {}", who.stdout.trim());
        }
    }

    env.shutdown().await;
    Ok(())
}
