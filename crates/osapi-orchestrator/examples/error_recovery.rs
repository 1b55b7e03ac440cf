//! Error recovery: a broadcast step that may fail without stopping the plan
//! (`continue_on_error`), and a clean-up step that runs only because it did
//! (`only_if_failed`).
//!
//! DAG: `deploy` (shell `echo deploying; exit 1` on `_all`,
//! `.continue_on_error()`) → `cleanup` (exec `echo running-cleanup` on
//! `_any`, `.only_if_failed()`).
//!
//! With the embedded three-agent fleet `deploy` fails on every host
//! (`[failed] deploy` with the `3 of 3 hosts failed: …` error and one
//! `[<host>] failed: command exited with code 1` line per host), `cleanup`
//! runs, and the run still returns Ok. Prints the summary and the hosts
//! that failed.
//!
//! Relative to upstream: upstream ignored the exit codes of broadcast
//! commands, so its `deploy` (`echo deploying`) could never fail and
//! `cleanup` always skipped. Our non-zero exits fail their hosts; the
//! deploy command exits 1 on purpose to show the recovery path.
//!
//! `cargo run --example error-recovery` (embedded control plane), or with
//! `OSAPI_URL` and `OSAPI_TOKEN` set, against your controller.

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Three).await?;
    let o = env.orchestrator()?;

    let deploy = o
        .command_shell("_all", "echo deploying; exit 1")
        .named("deploy")
        .continue_on_error();
    let cleanup = o
        .command_exec("_any", "echo", &["running-cleanup"])
        .named("cleanup")
        .after(&deploy)
        .only_if_failed();

    let report = env.run(&o).await?;

    println!();
    println!("Summary: {}", report.summary());
    for host in report.host_results(&deploy).iter().filter(|h| h.failed()) {
        println!(
            "deploy failed on {}: {}",
            host.hostname,
            host.error.as_deref().unwrap_or("failed")
        );
    }
    let cleaned: Result<CommandResult, _> = report.result(&cleanup);
    if let Ok(out) = cleaned {
        println!("cleanup stdout: {}", out.stdout.trim());
    }

    env.shutdown().await;
    Ok(())
}
