//! Rolling update: a file deployed to three agents in two batches, a
//! canary (`db-01`, the first host by name) then the rest, with a health
//! gate after each batch.
//!
//! Run 1: the gate checks the canary's copy of the file (`file_status_get`
//! on db-01); it passes, so the second batch follows.
//! Run 2: a new version, with a gate that fails (the canary's health check
//! exits 1): the rollout stops after the canary, and web-01 and web-02 are
//! reported `skipped` with the reason.
//!
//! DAG (each run): `upload-file` → `deploy-file` (`_all`, batches `1`,
//! `100%`, gate: a step that runs only as the gate).
//!
//! Prints both runs (`[batch]`, `[gate]` and `[stop]` lines), then each
//! host's outcome per run.
//!
//! `cargo run --example rolling-update` (embedded control plane with
//! web-01, web-02 and db-01), or with `OSAPI_URL` and `OSAPI_TOKEN` set,
//! against your controller.

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Three).await?;
    let path = env.deploy_path("app-@fact.hostname.conf");

    // Run 1: version 1, the gate checks the canary's file.
    let o = env.orchestrator()?;
    let upload = o.file_upload("app.conf", ContentType::Raw, "version: 1\n");
    let canary_file = o.file_status_get("db-01", &path).named("canary-file");
    let deploy = o
        .file_deploy("_all", FileDeployOpts::new("app.conf", &path))
        .after(&upload)
        .rolling(Rollout::batches(["1", "100%"]))
        .gate(&canary_file);
    let first = env.run(&o).await?;

    // Run 2: version 2, and the canary's health check fails.
    let o = env.orchestrator()?;
    let upload = o
        .file_upload("app.conf", ContentType::Raw, "version: 2\n")
        .force();
    let health = o.command_shell("db-01", "exit 1").named("canary-health");
    let second = o
        .file_deploy("_all", FileDeployOpts::new("app.conf", &path))
        .after(&upload)
        .rolling(Rollout::batches(["1", "100%"]))
        .gate(&health)
        .continue_on_error();
    let stopped = env.run(&o).await?;

    println!();
    for (run, report, step) in [(1, &first, &deploy), (2, &stopped, &second)] {
        for host in report.host_results(step) {
            let what = match &host.error {
                Some(e) => e.clone(),
                None => format!("changed={}", host.changed),
            };
            println!("  run {run} {:<7} {:?}: {what}", host.hostname, host.status);
        }
    }

    env.shutdown().await;
    Ok(())
}
