//! The kubeseed operator binary: parse flags, set up logging, run.

use anyhow::Context as _;
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = kubeseed_operator::Config::parse();
    kubeseed_operator::telemetry::init(config.log_format).context("cannot set up logging")?;
    kubeseed_operator::run(config).await
}
