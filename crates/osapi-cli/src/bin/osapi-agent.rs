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
    /// JSON logs on stderr.
    #[arg(short, long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    osapi_cli::agent_main(args.osapi_file.as_deref(), args.debug, args.json)
}
