//! Check mode: preview a change before making it. A config file is
//! deployed for real (version 1); then the next version's plan runs with
//! `o.check()`: each host says whether its file would change and shows the
//! diff, the DNS update is compared, the restart command is skipped, and
//! a read-only command marked `.safe_in_check()` runs. Nothing changes,
//! not even the controller's stored file.
//!
//! DAG (check run): `upload-file` → `deploy-file` (`_all`) →
//! `restart` (`only_if_changed`); `update-dns` (`_all`); `run-hostname`
//! (safe in check mode).
//!
//! Prints both runs, then each host's prediction and its diff.
//!
//! `cargo run --example check-mode` (embedded control plane with web-01,
//! web-02 and db-01), or with `OSAPI_URL` and `OSAPI_TOKEN` set, against
//! your controller (its agents must be this project's: upstream's do not
//! know `dry_run`).

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Three).await?;
    let path = env.deploy_path("app-@fact.hostname.conf");

    // Version 1, for real.
    let o = env.orchestrator()?;
    let upload = o
        .file_upload("preview.conf", ContentType::Raw, "port: 8080\nworkers: 4\n")
        .force();
    o.file_deploy("_all", FileDeployOpts::new("preview.conf", &path))
        .after(&upload);
    env.run(&o).await?;

    // Version 2, previewed.
    let o = env.orchestrator()?;
    let upload = o
        .file_upload("preview.conf", ContentType::Raw, "port: 8080\nworkers: 8\n")
        .force();
    let deploy = o
        .file_deploy("_all", FileDeployOpts::new("preview.conf", &path))
        .after(&upload);
    o.command_shell("_all", "systemctl restart app")
        .named("restart")
        .after(&deploy)
        .only_if_changed();
    let dns = o.network_dns_update("_all", "eth0", &["192.0.2.53"], &[]);
    o.command_exec("_all", "hostname", &[]).safe_in_check();
    let preview = o.check().await?;

    println!();
    for host in preview.host_results(&deploy) {
        let r: FileDeployResult = host.decode()?;
        println!("  {} would change: {}", host.hostname, r.changed);
        for line in r.diff.unwrap_or_default().lines() {
            println!("    {line}");
        }
    }
    for host in preview.host_results(&dns) {
        let r: DnsUpdateResult = host.decode()?;
        println!("  {} DNS: {}", host.hostname, r.message);
    }
    if let Some(restart) = preview.step("restart") {
        println!(
            "  restart: {:?} ({})",
            restart.status,
            restart.skip_reason.as_deref().unwrap_or("")
        );
    }

    env.shutdown().await;
    Ok(())
}
