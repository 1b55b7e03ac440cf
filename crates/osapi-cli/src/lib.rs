//! `osapi`: run the control plane, mint tokens, and talk to a controller.

mod client;
mod config;
mod key;
mod serve;
mod start;
mod token;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::config::OsapiFile;

/// OSAPI control plane and client.
#[derive(Parser)]
#[command(name = "osapi", version, about)]
struct Cli {
    /// Configuration file (upstream's osapi.yaml layout).
    #[arg(short = 'f', long = "osapi-file", global = true)]
    osapi_file: Option<PathBuf>,
    /// Debug logging.
    #[arg(short, long, global = true)]
    debug: bool,
    /// JSON logs on stderr.
    #[arg(short, long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start an embedded controller and a local agent in the foreground.
    Start(start::StartArgs),
    /// Generate or validate tokens.
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Generate job-signing keys.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Talk to a controller.
    Client(client::ClientArgs),
    /// The controller on NATS (distributed mode).
    #[command(subcommand)]
    Api(serve::ApiCommand),
    /// An agent on NATS (distributed mode).
    #[command(subcommand)]
    Agent(serve::AgentCommand),
}

fn init_logging(debug: bool, json: bool) {
    let default = if debug { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("OSAPI_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let file = OsapiFile::load(cli.osapi_file.as_deref(), &env)?;
    init_logging(cli.debug || file.debug, cli.json);
    match cli.command {
        Command::Start(args) => start::run(&file, cli.osapi_file.is_some(), args).await,
        Command::Token(cmd) => token::run(&file, cmd),
        Command::Key(cmd) => key::run(cmd),
        Command::Client(args) => client::run(&file, args).await,
        Command::Api(serve::ApiCommand::Server(serve::ServerCommand::Start(args))) => {
            serve::api_server_start(&file, args).await
        }
        Command::Agent(serve::AgentCommand::Start) => serve::agent_start(&file).await,
    }
}
