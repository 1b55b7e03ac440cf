//! Broadcast: one step sent to every agent (`_all`); each host answers on
//! its own and the report keeps a typed result per host.
//!
//! DAG: `get-hostname` on `_all`.
//!
//! Prints the run (`Plan: 1 step in 1 level`, one `[<host>] ok` line per
//! agent under the step), then each host's hostname and labels from
//! `report.results_by_host`.
//!
//! Relative to upstream: upstream only printed the summary; a broadcast
//! step has no single result, so we decode each host's.
//!
//! `cargo run --example broadcast` (embedded control plane with web-01,
//! web-02 and db-01), or with `OSAPI_URL` and `OSAPI_TOKEN` set, against
//! your controller.

mod common;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = common::connect(common::Fleet::Three).await?;
    let o = env.orchestrator()?;

    let hostname = o.node_hostname_get("_all");

    let report = env.run(&o).await?;

    println!();
    for (agent, result) in report.results_by_host(&hostname) {
        match result {
            Ok(h) => println!(
                "  {agent}: hostname={} labels={}",
                h.hostname,
                common::key_values(&h.labels)
            ),
            Err(e) => println!("  {agent}: {e}"),
        }
    }

    env.shutdown().await;
    Ok(())
}
