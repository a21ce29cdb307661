//! `bootstrap`: brings up the first control-plane host over SSH.

// Tests may unwrap: a panic is how a test fails.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod cli;
mod progress;
mod seed;
mod state;
mod use_endpoint;

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let mut filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // kube's client logs every failed request at ERROR; bootstrap reports
    // failures itself, with what to do. `--log kube_client=debug` shows them.
    if !cli.log.contains("kube")
        && let Ok(quiet) = "kube_client::client::builder=off".parse()
    {
        filter = filter.add_directive(quiet);
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        cli::Command::Seed(args) => seed::run(args).await,
        cli::Command::UseEndpoint(args) => use_endpoint::run(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("\nbootstrap: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
