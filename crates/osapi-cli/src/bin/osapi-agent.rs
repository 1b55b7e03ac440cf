//! `osapi-agent`: an OSAPI agent on NATS and nothing else: the same agent
//! as `osapi agent start`, in a binary that carries no controller, client
//! or token code, so every host of a fleet runs a smaller process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// An OSAPI agent on NATS (the `agent` section of the configuration file).
#[derive(Parser)]
#[command(name = "osapi-agent", version = osapi_cli::version::LONG, about)]
struct Args {
    /// Configuration file (upstream's osapi.yaml layout).
    #[arg(short = 'f', long = "osapi-file")]
    osapi_file: Option<PathBuf>,
    /// Debug logging.
    #[arg(short, long)]
    debug: bool,
    /// JSON logs on stderr (as `--log-format json`).
    #[arg(short, long)]
    json: bool,
    /// Log lines: human or json.
    #[arg(long, env = "OSAPI_LOG_FORMAT", value_enum, default_value_t)]
    log_format: osapi_cli::logging::LogFormat,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let format = if args.json {
        osapi_cli::logging::LogFormat::Json
    } else {
        args.log_format
    };
    osapi_cli::agent_main(args.osapi_file.as_deref(), args.debug, format)
}
