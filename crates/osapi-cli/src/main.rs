//! `osapi`: run the control plane, mint tokens and keys, and talk to a
//! controller.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    osapi_cli::main_with(osapi_cli::Cli::parse())
}
