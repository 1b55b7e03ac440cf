//! Fact guards: run a step only if an agent it targets has the right facts.
//!
//! DAG: `health-check` → `list-agents` → `shell-apt-get` (shell
//! `apt-get --version | head -n 1` on `OSAPI_TARGET`, default `_any`) with
//! `.when_fact(&list, os("debian").or(os("ubuntu")))`.
//!
//! On a Debian or Ubuntu machine the guard matches and the step runs; on
//! others it is skipped with `reason="when-fact: no matching agent"`.
//! Prints the run, then the command's output or why it was skipped.
//!
//! Upstream ran `apt-get update -qq`; this example runs the read-only
//! `apt-get --version` instead, so it never changes the package state.
//!
//! Relative to upstream: upstream's guard only considered agents for `_all`
//! or an exact hostname, so with the default target `_any` (or a label
//! target) it never matched and the step always skipped. Ours considers any
//! agent for `_any` and `_all`, the agent itself for a hostname, and the
//! labelled agents for `key:value`.
//!
//! `cargo run --example when-fact` (embedded control plane with web-01,
//! web-02 and db-01), or with `OSAPI_URL` and `OSAPI_TOKEN` set, against
//! your controller.

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Three).await?;
    let o = env.orchestrator()?;
    let target = std::env::var("OSAPI_TARGET")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "_any".to_string());

    let health = o.health_check();
    let list = o.agent_list().after(&health);
    let apt = o
        .command_shell(&target, "apt-get --version | head -n 1")
        .when_fact(&list, os("debian").or(os("ubuntu")));

    let report = env.run(&o).await?;

    println!();
    match report.get(&apt) {
        Some(step) if step.status == StepStatus::Skipped => println!(
            "{} skipped: {}",
            step.name,
            step.skip_reason.as_deref().unwrap_or("")
        ),
        _ => {
            for (host, out) in report.results_by_host(&apt) {
                let out = out?;
                println!("  {host}: {}", out.stdout.trim());
            }
        }
    }

    env.shutdown().await;
    Ok(())
}
