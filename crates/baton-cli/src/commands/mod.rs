//! One module per command. Each returns the exit code or an error that carries one.

mod check;
mod clean;
mod config;
mod demo;
mod diff;
mod doctor;
mod forward;
mod init;
mod merge;
mod run;
mod show;
mod status;

use baton_core::ExitCode;

use crate::cli::{Cli, Command};
use crate::error::CliError;

pub(crate) fn dispatch(cli: Cli) -> ExitCode {
    init_tracing(cli.global.verbose);
    let result = match cli.command {
        Command::Init(a) => init::run(&cli.global, a),
        Command::Run(a) => run::run(&cli.global, a),
        Command::Status(a) => status::run(&cli.global, a),
        Command::Show(a) => show::run(&cli.global, a),
        Command::Diff(a) => diff::run(&cli.global, a),
        Command::Merge(a) => merge::run(&cli.global, a),
        Command::Clean(a) => clean::run(&cli.global, a),
        Command::Demo(a) => demo::run(&cli.global, a),
        Command::Config(a) => config::run(&cli.global, a),
        Command::Doctor(a) => doctor::run(&cli.global, a),
        // It exits as the agent did, with any code.
        Command::Forward(a) => std::process::exit(forward::run(a)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            e.print();
            e.code
        }
    }
}

fn init_tracing(verbose: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(if verbose { "debug" } else { "warn" }));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

/// A multi-threaded runtime for the commands that run things.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::failure(format!("cannot start the async runtime: {e}")))
}
