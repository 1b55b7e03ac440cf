//! Read, then write: the DNS configuration before, then an update of its
//! servers and search domains.
//!
//! DAG: `health-check` → `get-dns` (`_any`) → `update-dns` (`_any`, servers
//! 8.8.8.8 and 8.8.4.4, search domain example.com). The interface comes from
//! `OSAPI_INTERFACE`; unset or empty means the system configuration.
//!
//! Prints the run, then `DNS before: …` and `DNS update: …`.
//!
//! In embedded mode the agent's resolv.conf is a private copy in a temp
//! dir, so nothing on this machine changes.
//!
//! Relative to upstream: upstream defaulted the interface to `eth0`, which
//! many machines lack; we default to the system configuration, and print
//! what was read and what the update did.
//!
//! `cargo run --example dns-update` (embedded control plane), or with
//! `OSAPI_URL` and `OSAPI_TOKEN` set, against your controller (which then
//! really changes that host's DNS).

mod common;

use osapi_orchestrator::prelude::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Local).await?;
    let o = env.orchestrator()?;
    let interface = std::env::var("OSAPI_INTERFACE").unwrap_or_default();

    let health = o.health_check();
    let get_dns = o.network_dns_get("_any", &interface).after(&health);
    let update_dns = o
        .network_dns_update(
            "_any",
            &interface,
            &["8.8.8.8", "8.8.4.4"],
            &["example.com"],
        )
        .after(&get_dns);

    let report = env.run(&o).await?;

    println!();
    let before: DnsConfigResult = report.result(&get_dns)?;
    println!(
        "DNS before: servers=[{}] search=[{}]",
        before.dns_servers.join(", "),
        before.search_domains.join(", ")
    );
    let update: DnsUpdateResult = report.result(&update_dns)?;
    println!(
        "DNS update: success={} changed={} {}",
        update.success, update.changed, update.message
    );

    env.shutdown().await;
    Ok(())
}
