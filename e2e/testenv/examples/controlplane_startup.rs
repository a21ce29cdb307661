//! Measures how long the test control plane takes to start (until `/readyz`
//! says ok) and to stop, over N sequential runs. Prints a table, then the same
//! figures as JSON on one line. Never asserts a time limit.
//!
//! `cargo run -p kubeseed-testenv --example controlplane_startup -- [N]`

use std::time::Instant;

use kubeseed_testenv::ControlPlane;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = match std::env::args().nth(1) {
        None => 5,
        Some(n) => n
            .parse()
            .map_err(|e| format!("run count must be a positive integer, got {n:?}: {e}"))?,
    };
    let mut start_s = Vec::new();
    let mut stop_s = Vec::new();
    for _ in 0..runs {
        let t0 = Instant::now();
        let cp = ControlPlane::start().await?;
        start_s.push(t0.elapsed().as_secs_f64());
        let t1 = Instant::now();
        cp.stop();
        stop_s.push(t1.elapsed().as_secs_f64());
    }
    let mut rows = Vec::new();
    println!(
        "{:<8} {:>4} {:>8} {:>8} {:>8}",
        "phase", "n", "min_s", "p50_s", "max_s"
    );
    for (name, mut v) in [("start", start_s), ("stop", stop_s)] {
        v.sort_by(f64::total_cmp);
        let (min, p50, max) = (
            percentile(&v, 0.0),
            percentile(&v, 0.5),
            percentile(&v, 1.0),
        );
        println!("{name:<8} {:>4} {min:>8.2} {p50:>8.2} {max:>8.2}", v.len());
        rows.push(serde_json::json!({
            "phase": name, "n": v.len(), "min_s": min, "p50_s": p50, "max_s": max, "samples_s": v,
        }));
    }
    println!(
        "{}",
        serde_json::json!({ "benchmark": "testenv_controlplane_startup", "results": rows })
    );
    Ok(())
}
