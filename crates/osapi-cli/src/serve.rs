//! Distributed mode: `osapi api server start` (a stateless controller on
//! NATS) and `osapi agent start` (one agent process per host on NATS).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use osapi_agent::Agent;
use osapi_bus::nats::NatsBus;
use osapi_server::Controller;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::{NatsConnection, OsapiFile};

/// How long processes keep trying to reach NATS at start-up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// `osapi api …`
#[derive(Subcommand)]
pub enum ApiCommand {
    /// The controller.
    #[command(subcommand)]
    Server(ServerCommand),
}

/// `osapi api server …`
#[derive(Subcommand)]
pub enum ServerCommand {
    /// Run a controller on NATS (api.server.nats) until SIGINT/SIGTERM.
    Start(ServerStartArgs),
}

/// Options of `osapi api server start`.
#[derive(Args)]
pub struct ServerStartArgs {
    /// Port (default: api.server.port).
    #[arg(short, long)]
    port: Option<u16>,
}

/// `osapi agent …`
#[derive(Subcommand)]
pub enum AgentCommand {
    /// Run an agent on NATS (agent.nats) until SIGINT/SIGTERM.
    Start,
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Connects to the NATS server `conn` names (waiting up to
/// [`CONNECT_TIMEOUT`]); errors read "{what} on NATS at {url}: …".
/// Returns the bus and the server URL.
pub(crate) async fn connect_nats(
    file: &OsapiFile,
    conn: &NatsConnection,
    role: &str,
    what: &str,
) -> Result<(osapi_bus::Bus, String)> {
    let nats = file.nats_config(conn, role)?;
    let url = nats.url.clone();
    let bus = NatsBus::connect(nats, CONNECT_TIMEOUT)
        .await
        .with_context(|| format!("{what} on NATS at {url}"))?;
    Ok((bus, url))
}

/// Connects an agent: it opens only what controllers created, watches only
/// its own drain flag and takes replies on its own inbox prefix.
pub(crate) async fn connect_agent_nats(
    file: &OsapiFile,
    hostname: &str,
) -> Result<(osapi_bus::Bus, String)> {
    let nats = file.nats_config(&file.agent.nats, "agent")?;
    let url = nats.url.clone();
    let bus = NatsBus::connect_agent(nats, hostname, CONNECT_TIMEOUT)
        .await
        .with_context(|| format!("cannot start the agent on NATS at {url}"))?;
    Ok((bus, url))
}

/// True when `host` (a NATS host setting) is this machine.
pub(crate) fn is_loopback(host: &str) -> bool {
    host.is_empty()
        || host.eq_ignore_ascii_case("localhost")
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `osapi api server start`: a controller on NATS until SIGTERM or Ctrl-C.
pub async fn api_server_start(file: &OsapiFile, args: ServerStartArgs) -> Result<()> {
    let server = file.server_config(args.port)?;
    if server.job_signer.is_none() {
        tracing::warn!(
            "no api.server.security.job_signing_key_file: jobs are published unsigned, and agents that check signatures will refuse them"
        );
    }
    let (bus, url) = connect_nats(
        file,
        &file.api.server.nats,
        "api",
        "cannot start the controller",
    )
    .await?;
    let controller = Controller::new(server, bus)?;
    let listener = controller.bind().await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, nats = %url, "controller listening");
    println!("OSAPI controller listening on http://{addr} (NATS at {url})");
    controller.serve(listener, shutdown_signal()).await?;
    Ok(())
}

/// An agent that trusts no job-signing key runs whatever the bus carries:
/// allowed only on a NATS server on this machine, or when asked for.
pub(crate) fn check_unsigned(file: &OsapiFile, config: &osapi_agent::AgentConfig) -> Result<()> {
    let host = &file.agent.nats.host;
    if config.security.job_verify_keys.is_empty()
        && !config.security.allow_unsigned_jobs
        && !is_loopback(host)
    {
        anyhow::bail!(
            "agent.security.job_verify_keys is empty and NATS ({host}) is not on this machine: \
             anyone who can publish on that bus could run commands here. Set the controllers' \
             public keys (`osapi key generate`), or agent.security.allow_unsigned_jobs: true"
        );
    }
    if config.security.job_verify_keys.is_empty() {
        tracing::warn!("no agent.security.job_verify_keys: this agent runs unsigned jobs");
    }
    Ok(())
}

/// `osapi agent start` (and `osapi-agent`): an agent on NATS until SIGTERM
/// or Ctrl-C, when it stops taking jobs, lets running ones finish and
/// deregisters. SIGHUP reads `osapi_file` again and applies its labels and
/// custom facts without stopping anything.
pub async fn agent_start(file: &OsapiFile, osapi_file: Option<&Path>) -> Result<()> {
    // First of all: a SIGHUP (a `systemctl reload`) while the agent still
    // connects must not end it; it is applied once the agent runs.
    let mut hangups = signal(SignalKind::hangup())?;
    let mut config = file.agent_config_on_nats()?;
    check_unsigned(file, &config)?;
    if config.state_dir.is_none() {
        config.state_dir = Some(file.state_dir()?);
    }
    let metrics = agent_metrics_listener(file).await?;
    let hostname = config.resolved_hostname()?;
    let (bus, url) = connect_agent_nats(file, &hostname).await?;
    config.heartbeat_interval = file.heartbeat_interval_on_server(bus.registry.ttl())?;
    let agent = Agent::new(config, bus)?;
    let name = agent.hostname().to_string();
    let handle = agent.start().await?;
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(listener) = metrics {
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "agent metrics on /metrics");
        tokio::spawn(crate::agent_metrics::serve(
            listener,
            handle.metrics(),
            async move {
                let _ = metrics_stopped.await;
            },
        ));
    }
    println!("OSAPI agent {name} running (NATS at {url})");
    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = hangups.recv() => reload(&handle, osapi_file).await,
        }
    }
    println!("Stopping agent {name}…");
    let _ = stop_metrics.send(());
    handle.shutdown().await;
    Ok(())
}

/// The socket of `agent.metrics.listen`, bound before the agent starts so a
/// wrong address stops it at once.
async fn agent_metrics_listener(file: &OsapiFile) -> Result<Option<tokio::net::TcpListener>> {
    let listen = file.agent.metrics.listen.trim();
    if listen.is_empty() {
        return Ok(None);
    }
    let addr: std::net::SocketAddr = listen.parse().with_context(|| {
        format!("agent.metrics.listen {listen:?} is not an address such as 127.0.0.1:9102")
    })?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("agent.metrics.listen: cannot listen on {addr}"))?;
    Ok(Some(listener))
}

/// SIGHUP: the file read again; its labels and custom facts applied. A
/// file that does not load is reported and changes nothing.
async fn reload(handle: &osapi_agent::AgentHandle, osapi_file: Option<&Path>) {
    let loaded =
        OsapiFile::load_with_process_env(osapi_file).and_then(|f| f.agent_config_on_nats());
    let config = match loaded {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                error = format!("{e:#}"),
                "SIGHUP: configuration not reloaded"
            );
            return;
        }
    };
    match handle.reload(config.labels, config.facts).await {
        Ok(()) => tracing::info!(
            "SIGHUP: labels and custom facts applied; other settings take effect at the next start"
        ),
        Err(e) => tracing::error!(error = %e, "SIGHUP: configuration not reloaded"),
    }
}
