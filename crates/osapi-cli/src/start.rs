//! `osapi start`: the embedded control plane in the foreground.

use anyhow::{Context, Result};
use clap::Args;
use osapi_server::Embedded;

use crate::config::OsapiFile;

/// Options of `osapi start`.
#[derive(Args)]
pub struct StartArgs {
    /// Port (default: api.server.port, 8080).
    #[arg(short, long)]
    port: Option<u16>,
}

pub async fn run(file: &OsapiFile, from_file: bool, args: StartArgs) -> Result<()> {
    let mut server = file.server_config()?;
    if let Some(p) = args.port {
        server.port = p;
    }
    if file.api.server.bind.is_empty() {
        server.bind = std::net::Ipv4Addr::LOCALHOST.into();
    }
    let agent = file.agent_config()?;
    let mut builder = Embedded::builder()
        .heartbeat_interval(agent.heartbeat_interval)
        .agent(agent)
        .server_config(|c| *c = server.clone());
    if !server.signing_key.is_empty() {
        builder = builder.signing_key(server.signing_key.clone());
    }
    let stack = builder
        .start()
        .await
        .context("cannot start the control plane")?;
    let key_note = if from_file && !server.signing_key.is_empty() {
        "signed with api.server.security.signing_key"
    } else {
        "signed with a fresh random key"
    };
    println!(
        "OSAPI control plane (embedded, in-memory bus) listening on {}",
        stack.url()
    );
    println!("Agents: {}", stack.agent_names().join(", "));
    println!("Admin token ({key_note}, valid 24h):");
    println!("{}", stack.token());
    println!();
    println!("  export OSAPI_URL={}", stack.url());
    println!("  export OSAPI_TOKEN={}", stack.token());
    println!();
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    println!("Stopping…");
    stack.shutdown().await;
    Ok(())
}
