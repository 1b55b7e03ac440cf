//! Truthful `changed` for commands: conditions checked on each host before
//! a command runs (`creates`, `removes`, `unless`, `only_if`), and rules
//! that read each host's result (`changed_when`, `failed_when`).
//!
//! web-01 was set up by hand earlier (its `.installed` marker exists); the
//! plan installs the app where it is missing, upgrades only hosts that
//! have a version file, and runs a check whose exit code 1 means "differs",
//! not "failed".
//!
//! DAG: `seed-web-01` → `install` (`_all`, creates) → `upgrade` (`_all`,
//! only_if) → `check` (`_all`, changed_when + failed_when).
//!
//! Prints the run (web-01's `install` line reads `ok (creates: … exists)`),
//! then each host's outcome per step.
//!
//! `cargo run --example creates-unless` (embedded control plane with
//! web-01, web-02 and db-01), or with `OSAPI_URL` and `OSAPI_TOKEN` set,
//! against your controller (its agents must be this project's: upstream's
//! ignore the conditions).

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Three).await?;
    let o = env.orchestrator()?;
    // One directory per host (`@fact.hostname` is resolved on each agent).
    let app = env.deploy_path("app-@fact.hostname");
    let web01 = env.deploy_path("app-web-01");

    let seed = o
        .command_shell(
            "web-01",
            &format!("mkdir -p {web01} && touch {web01}/.installed"),
        )
        .named("seed-web-01");
    let install = o
        .command_shell(
            "_all",
            &format!("mkdir -p {app} && echo 1.0 > {app}/version && touch {app}/.installed"),
        )
        .named("install")
        .creates(&format!("{app}/.installed"))
        .after(&seed);
    let upgrade = o
        .command_shell("_all", &format!("echo 1.1 > {app}/version"))
        .named("upgrade")
        .only_if(&format!("test -f {app}/version"))
        .after(&install);
    // Exits 0 when the host runs 1.1, 1 when it does not (web-01, managed
    // by hand, has no version file), 2 on errors (`grep`'s): only 2 is a
    // failure, and a check never changes anything.
    let check = o
        .command_shell(
            "_all",
            &format!("test -f {app}/version || exit 1; grep -qx 1.1 {app}/version"),
        )
        .named("check")
        .changed_when(|_| false)
        .failed_when(|r| r.exit_code > 1)
        .after(&upgrade);

    let report = env.run(&o).await?;

    println!();
    for step in [&install, &upgrade, &check] {
        for host in report.host_results(step) {
            let result: CommandResult = host.decode()?;
            let outcome = match (&result.skipped, result.exit_code) {
                (Some(reason), _) => format!("skipped: {reason}"),
                (None, 0) => "ran".to_string(),
                (None, code) => format!("ran, exit code {code}"),
            };
            println!(
                "  {:<8} {:<7} {:?} changed={} ({outcome})",
                step.name(),
                host.hostname,
                host.status,
                host.changed
            );
        }
    }

    env.shutdown().await;
    Ok(())
}
