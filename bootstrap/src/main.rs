//! `bootstrap`: brings up the first control-plane host over SSH.

use clap::Parser;

/// kubeseed's workstation CLI.
#[derive(Debug, Parser)]
#[command(name = "bootstrap", version, about)]
enum Cli {
    /// Bring up the first master with etcd on HOST and install the operator.
    Seed {
        /// The host to seed (SSH address).
        host: String,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Seed { host } => {
            anyhow::bail!(
                "`bootstrap seed {host}` is not implemented yet (see the README's status table)"
            )
        }
    }
}
