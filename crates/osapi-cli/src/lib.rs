//! The `osapi` and `osapi-agent` commands: run the control plane, mint
//! tokens and keys, and talk to a controller. `osapi` does everything;
//! `osapi-agent` is the agent alone, a smaller process for every host of a
//! fleet (it runs the same code as `osapi agent start`).

mod agent_metrics;
pub mod client;
pub mod config;
pub mod key;
pub mod logging;
mod otel;
pub mod serve;
pub mod start;
mod table;
mod token;
pub mod version;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::config::{OsapiFile, SpanExport};
use crate::logging::{LogFormat, LogSettings};

/// OSAPI control plane and client.
#[derive(Parser)]
#[command(name = "osapi", version = version::LONG, about)]
pub struct Cli {
    /// Configuration file (upstream's osapi.yaml layout).
    #[arg(short = 'f', long = "osapi-file", global = true)]
    osapi_file: Option<PathBuf>,
    /// Debug logging.
    #[arg(short, long, global = true)]
    debug: bool,
    /// JSON logs on stderr; for `osapi client`, JSON results too (the
    /// default when stdout is not a terminal; a table otherwise).
    #[arg(short, long, global = true)]
    json: bool,
    /// Log lines: human or json.
    #[arg(
        long,
        global = true,
        env = "OSAPI_LOG_FORMAT",
        value_enum,
        default_value_t
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// The commands of `osapi`.
#[derive(Subcommand)]
pub enum Command {
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
    /// Print the version and the git commit of this build (`--json`: as
    /// JSON).
    Version,
}

/// Runs a command line of `osapi`; the agent on a single-threaded runtime
/// (one host's agent waits on the network and on child processes: a thread
/// pool would cost memory and wake-ups for nothing), everything else on a
/// multi-threaded one.
pub fn main_with(cli: Cli) -> ExitCode {
    // Needs no configuration (a broken file must not hide the version) and
    // no runtime.
    if let Command::Version = cli.command {
        return report(print_version(cli.json));
    }
    let runtime = match cli.command {
        Command::Agent(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let outcome = runtime
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(cli)));
    report(outcome)
}

/// Prints an error the way every command does and turns it into an exit code.
/// Output cut short by a reader that went away (`osapi … | head`) ends the
/// command quietly, as it does for other Unix tools.
pub fn report(outcome: Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn run(cli: Cli) -> Result<()> {
    let file = OsapiFile::load_with_process_env(cli.osapi_file.as_deref())?;
    // Spans are exported by the processes that serve; a client's standard
    // output is its answer.
    let serves = matches!(
        cli.command,
        Command::Start(_) | Command::Api(_) | Command::Agent(_)
    );
    let _exporting = logging::init(&LogSettings {
        debug: cli.debug || file.debug,
        format: if cli.json {
            LogFormat::Json
        } else {
            cli.log_format
        },
        spans: if serves {
            file.telemetry.tracing.export()?
        } else {
            SpanExport::None
        },
    })?;
    match cli.command {
        Command::Start(args) => start::run(&file, cli.osapi_file.is_some(), args).await,
        Command::Token(cmd) => token::run(&file, cmd),
        Command::Key(cmd) => key::run(cmd),
        Command::Client(args) => client::run(&file, args, cli.json).await,
        Command::Api(serve::ApiCommand::Server(serve::ServerCommand::Start(args))) => {
            serve::api_server_start(&file, args).await
        }
        Command::Agent(serve::AgentCommand::Start) => {
            serve::agent_start(&file, cli.osapi_file.as_deref()).await
        }
        Command::Version => print_version(cli.json),
    }
}

/// `osapi version`: `osapi 0.1.0 (commit 8d085288c507)`, or with `json`
/// `{"version":"0.1.0","commit":"8d085288c507"}`.
fn print_version(json: bool) -> Result<()> {
    use std::io::Write;
    let line = if json {
        serde_json::to_string(&version::info())?
    } else {
        format!("osapi {}", version::LONG)
    };
    writeln!(std::io::stdout(), "{line}")?;
    Ok(())
}

/// Runs the agent alone, as `osapi-agent` does: loads the configuration
/// file, starts logging, and runs until SIGINT/SIGTERM on a single-threaded
/// runtime.
pub fn agent_main(osapi_file: Option<&Path>, debug: bool, format: LogFormat) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(async {
                let file = OsapiFile::load_with_process_env(osapi_file)?;
                let _exporting = logging::init(&LogSettings {
                    debug: debug || file.debug,
                    format,
                    spans: file.telemetry.tracing.export()?,
                })?;
                serve::agent_start(&file, osapi_file).await
            })
        });
    report(outcome)
}
