//! `report`: the benchmarks' latest figures as one Markdown table, each beside
//! the reference it was compared with in the same run, and as JSON beside it.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use kubeseed_e2e::report;

/// Prints the table of the figures under DIR (written by `bash e2e/bench.sh`,
/// the control-plane scenario and `cargo bench -p kubeseed-provision`) and
/// writes DIR/report.json.
#[derive(Debug, Parser)]
#[command(name = "report", version)]
struct Cli {
    /// Where the benchmarks wrote their JSON (default: the cargo target directory's bench/).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let dir = match cli.dir {
        Some(dir) => dir,
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
            .join("bench"),
    };
    let report = report::collect(&dir);
    print!("{}", report.markdown());
    let path = dir.join("report.json");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(&path, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("\nJSON: {}", path.display());
    Ok(())
}
