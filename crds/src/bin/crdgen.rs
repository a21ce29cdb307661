//! Writes kubeseed's CRDs into the chart (`charts/kubeseed/crds/`), or with
//! `--check` fails when the committed files differ from the types.
//!
//! Usage: `cargo run -p kubeseed-crds --bin crdgen [-- --check | --stdout]`

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kubeseed_crds::crdgen::{CHART_CRD_DIR, render};

fn workspace_root() -> PathBuf {
    // crds/ sits one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn main() -> ExitCode {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let rendered = match render() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("crdgen: cannot render the CRDs: {e}");
            return ExitCode::FAILURE;
        }
    };
    let dir = workspace_root().join(CHART_CRD_DIR);
    match mode.as_str() {
        "--stdout" => {
            for crd in &rendered {
                print!("---\n{}", crd.yaml);
            }
            ExitCode::SUCCESS
        }
        "--check" => {
            let mut stale = Vec::new();
            for crd in &rendered {
                let path = dir.join(&crd.file_name);
                if std::fs::read_to_string(&path).ok().as_deref() != Some(crd.yaml.as_str()) {
                    stale.push(path.display().to_string());
                }
            }
            if stale.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!(
                    "crdgen: these files differ from the Rust types: {}\nrun `cargo run -p kubeseed-crds --bin crdgen` and commit the result",
                    stale.join(", ")
                );
                ExitCode::FAILURE
            }
        }
        "" => {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("crdgen: cannot create {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
            for crd in &rendered {
                let path = dir.join(&crd.file_name);
                if let Err(e) = std::fs::write(&path, &crd.yaml) {
                    eprintln!("crdgen: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("crdgen: unknown argument {other:?}; use no argument, --check or --stdout");
            ExitCode::FAILURE
        }
    }
}
