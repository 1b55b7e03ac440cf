//! Commands: one run without a shell (`command_exec`) and one through
//! `/bin/sh -c` (`command_shell`), in parallel after the health check.
//!
//! DAG: `health-check` → {`run-uptime` (exec `uptime`), `shell-uname`
//! (shell `uname -a`)}.
//!
//! Prints the run, then `uptime stdout: …` and `uname: …`.
//!
//! Relative to upstream: upstream decoded the step `shell-uname`, but its
//! step was named `shell-uname -a`, so the uname line was never printed. Our
//! shell steps are named after the first word (`shell-uname`), and we decode
//! through the step handles, so no name can be wrong.
//!
//! `cargo run --example command` (embedded control plane), or with
//! `OSAPI_URL` and `OSAPI_TOKEN` set, against your controller.

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Local).await?;
    let o = env.orchestrator()?;

    let health = o.health_check();
    let uptime = o.command_exec("_any", "uptime", &[]).after(&health);
    let uname = o.command_shell("_any", "uname -a").after(&health);

    let report = env.run(&o).await?;

    println!();
    let up: CommandResult = report.result(&uptime)?;
    println!("uptime stdout: {}", up.stdout.trim());
    let un: CommandResult = report.result(&uname)?;
    println!("uname: {}", un.stdout.trim());

    env.shutdown().await;
    Ok(())
}
