//! Run journal and resume: a run that fails on one host leaves a journal;
//! after the host is fixed, `resume_from` runs only what did not succeed —
//! `prepare` comes from the journal, and `install` (`.resume_hosts()`)
//! runs again on web-02 alone, keeping the other hosts' results.
//!
//! DAG: `prepare` (`_all`) → `install` (`_all`, needs a `ready-<host>`
//! file, which web-02 lacks in the first run).
//!
//! Prints run 1 (install fails on web-02), the fix, and run 2
//! (`[journal]` for prepare; `Complete: …, 1 from the journal`), then
//! which hosts each run installed on.
//!
//! `cargo run --example resume` (embedded control plane with web-01,
//! web-02 and db-01), or with `OSAPI_URL` and `OSAPI_TOKEN` set, against
//! your controller.

mod common;

use osapi_orchestrator::prelude::*;

/// The plan, the same in both runs.
fn plan(o: &Orchestrator, dir: &str) {
    let prepare = o
        .command_shell("_all", &format!("mkdir -p {dir}/app-@fact.hostname"))
        .named("prepare");
    o.command_shell(
        "_all",
        &format!("test -f {dir}/ready-@fact.hostname && touch {dir}/app-@fact.hostname/installed"),
    )
    .named("install")
    .resume_hosts()
    .after(&prepare);
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Three).await?;
    let dir = env.deploy_path("resume");
    let journal = std::env::temp_dir().join(format!("osapi-resume-{}.journal", std::process::id()));

    // Two hosts are ready; web-02 is not.
    let setup = env.builder().quiet().build()?;
    setup.command_shell(
        "_all",
        &format!(
            "mkdir -p {dir} && (test @fact.hostname = web-02 || touch {dir}/ready-@fact.hostname)"
        ),
    );
    setup.run().await?;

    println!("Run 1, journal {}:", journal.display());
    let first = env.builder().journal(&journal).build()?;
    plan(&first, &dir);
    let failed = match env.run(&first).await {
        // A controller whose agents do not run commands for real (a test
        // stand-in): nothing failed, and run 2 takes everything from the journal.
        Ok(report) => {
            println!("\nrun 1 succeeded: web-02 was ready after all");
            report
        }
        Err(e) => {
            println!("\nrun 1 failed: {e}");
            e.into_report()
        }
    };

    println!("\nFixing web-02, then run 2 from the journal:");
    let fix = env.builder().quiet().build()?;
    fix.command_shell("web-02", &format!("touch {dir}/ready-web-02"));
    fix.run().await?;
    let second = env.builder().journal(&journal).build()?;
    plan(&second, &dir);
    let resumed = second.resume_from(&journal).await?;

    println!();
    let jobs_of_run_1: Vec<_> = failed
        .step("install")
        .map(|s| s.hosts.iter().filter_map(|h| h.job_id).collect())
        .unwrap_or_default();
    for host in &resumed
        .step("install")
        .map(|s| s.hosts.clone())
        .unwrap_or_default()
    {
        let run = if host.job_id.is_some_and(|id| jobs_of_run_1.contains(&id)) {
            "run 1 (kept from the journal)"
        } else {
            "run 2"
        };
        println!(
            "  install on {:<7} {:?} in {run}",
            host.hostname, host.status
        );
    }
    let _ = std::fs::remove_file(&journal);
    env.shutdown().await;
    Ok(())
}
