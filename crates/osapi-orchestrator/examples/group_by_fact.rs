//! Grouping: split the fleet by the value of a fact and give each group its
//! own command.
//!
//! Before the plan: `o.group_by_fact("env", &[])` groups the agents by their
//! custom `env` fact (groups sorted by value; agents without the fact are
//! left out) and prints `Group <value> (<n> hosts): <command>` per group.
//! DAG: `health-check` → one `command_shell(<host>, <group's command>)` per
//! host (`shell-echo`, `shell-echo-2`, …).
//!
//! Prints the groups, the run, then `  <host>: <stdout>` per host.
//!
//! The commands are harmless `echo`s (`echo deploying release to prod`,
//! `echo deploying release candidate to staging`). Upstream grouped by
//! `os.distribution` and ran `apt-get update -qq` / `yum check-update -q`,
//! i.e. changed the package state of every host; this example never
//! installs or updates anything.
//!
//! Relative to upstream: groups came in random map order, so step names
//! changed from run to run, and the step names contained the whole command;
//! ours are sorted and named after the command's first word.
//!
//! `cargo run --example group-by-fact` (embedded control plane with web-01,
//! web-02 and db-01), or with `OSAPI_URL` and `OSAPI_TOKEN` set, against
//! your controller (agents with an `env` fact).

mod common;

use osapi_orchestrator::prelude::*;

fn command_for(env: &str) -> String {
    match env {
        "prod" => "echo deploying release to prod".to_string(),
        "staging" => "echo deploying release candidate to staging".to_string(),
        other => format!("echo nothing to deploy for {other}"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Three).await?;
    let o = env.orchestrator()?;
    if !env.has_custom_fact(&o, "env").await? {
        env.shutdown().await;
        return Ok(());
    }

    let groups = o.group_by_fact("env", &[]).await?;
    let health = o.health_check();
    let mut steps = Vec::new();
    for (value, agents) in &groups {
        let cmd = command_for(value);
        println!("Group {value} ({} hosts): {cmd}", agents.len());
        for a in agents {
            let step = o.command_shell(&a.hostname, &cmd).after(&health);
            steps.push((a.hostname.clone(), step));
        }
    }

    let report = env.run(&o).await?;

    println!();
    for (host, step) in &steps {
        let out: CommandResult = report.result(step)?;
        println!("  {host}: {}", out.stdout.trim());
    }

    env.shutdown().await;
    Ok(())
}
