//! `osapi start`: the embedded control plane in the foreground.

use anyhow::{Context, Result};
use clap::Args;
use osapi_bus::memory::MemoryBusConfig;
use osapi_embedded::Embedded;

use crate::config::OsapiFile;

/// Options of `osapi start`.
#[derive(Args)]
pub struct StartArgs {
    /// Port (default: api.server.port, 8080).
    #[arg(short, long)]
    port: Option<u16>,
}

/// `osapi start`: a controller and a local agent in one process (on the
/// configured NATS, or the embedded in-memory bus).
pub async fn run(file: &OsapiFile, from_file: bool, args: StartArgs) -> Result<()> {
    if file.server_uses_nats() {
        return run_on_nats(file, args).await;
    }
    let mut server = file.server_config(args.port)?;
    if file.api.server.bind.is_empty() {
        server.bind = std::net::Ipv4Addr::LOCALHOST.into();
    }
    let agent = file.agent_config()?;
    // The operator's machine, as configured: no sandbox.
    let stack = Embedded::builder()
        .real_host()
        .registry_ttl(file.registry_ttl()?)
        .heartbeat_interval(agent.heartbeat_interval)
        .bus_config({
            let bus = file.memory_bus_config()?;
            move |c| {
                *c = MemoryBusConfig {
                    registry_ttl: c.registry_ttl,
                    ..bus
                }
            }
        })
        .agent(agent)
        .server_config(|c| *c = server.clone())
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
    crate::serve::shutdown_signal().await;
    println!("Stopping…");
    stack.shutdown().await;
    Ok(())
}

/// `osapi start` when the file names a NATS server: a controller and a local
/// agent in this process, on that NATS.
async fn run_on_nats(file: &OsapiFile, args: StartArgs) -> Result<()> {
    let server = file.server_config(args.port)?;
    if server.signing_key.is_empty() {
        anyhow::bail!(
            "api.server.security.signing_key is required when the controller runs on NATS"
        );
    }
    let (bus, url) = crate::serve::connect_nats(
        file,
        &file.api.server.nats,
        "start",
        "cannot start the control plane",
    )
    .await?;
    let mut agent_config = file.agent_config()?;
    // The local agent trusts the jobs of the controller beside it.
    if let Some(signer) = &server.job_signer {
        agent_config = agent_config.trust(signer.public_key());
    }
    crate::serve::check_unsigned(file, &agent_config)?;
    if agent_config.state_dir.is_none() {
        agent_config.state_dir = Some(file.state_dir()?);
    }
    let controller = osapi_server::Controller::new(server, bus.clone())?;
    let listener = controller.bind().await?;
    let addr = listener.local_addr()?;
    let agent = osapi_agent::Agent::new(agent_config, bus)?.start().await?;
    println!(
        "OSAPI control plane on NATS at {url}: controller http://{addr}, agent {}",
        agent.hostname()
    );
    println!("Press Ctrl-C to stop.");
    controller
        .serve(listener, crate::serve::shutdown_signal())
        .await?;
    agent.shutdown().await;
    Ok(())
}
