//! Benchmark: a worker joined by the operator, one alone and four at once
//! (kind: whole-system benchmark, real hosts).
//!
//! host1 seeded; host2's `WorkerNode` applied alone → apply to Ready; then
//! host3..host6 applied at once → apply to all four Ready. The operator
//! joins workers concurrently (each on its own SSH session), so four at once
//! should cost little more than one: target ≤ 1.3× (two cores shared by
//! six lab hosts and the operator, so it is reported, not asserted).
//! A table goes to stderr and JSON to `target/bench/workers.json`.
//!
//! Needs what `workers.rs` needs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step must stop it

mod common;

use std::time::{Duration, Instant};

use common::cluster::{apply, condition, wait_ready, worker_yaml};
use common::seeded_lab;

const NAME: &str = "wrkbench";
const SUBNET: &str = "10.213.17.0/24";

#[test]
fn worker_join_one_and_four_at_once() {
    let (lab, _work, state) = seeded_lab(NAME, SUBNET, 6);
    let address = |host: &str| lab.host(host).unwrap().address.to_string();

    let started = Instant::now();
    apply(&state, &worker_yaml("host2", &address("host2"), ""));
    wait_ready(&lab, &state, "workernode/host2", Duration::from_secs(600));
    let one = started.elapsed().as_secs_f64();

    let four_hosts = ["host3", "host4", "host5", "host6"];
    let yaml: Vec<String> = four_hosts
        .iter()
        .map(|h| worker_yaml(h, &address(h), ""))
        .collect();
    let started = Instant::now();
    apply(&state, &yaml.join("---\n"));
    let mut each = Vec::new();
    let mut pending: Vec<&str> = four_hosts.to_vec();
    while !pending.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(1200),
            "{pending:?} not Ready"
        );
        pending.retain(|h| {
            if condition(&state, &format!("workernode/{h}"), "Ready").0 == "True" {
                each.push((h.to_string(), started.elapsed().as_secs_f64()));
                false
            } else {
                true
            }
        });
        std::thread::sleep(Duration::from_millis(500));
    }
    let four = started.elapsed().as_secs_f64();
    let ratio = four / one;
    eprintln!("\n| workers joined at once | apply → all Ready (s) | ratio to one | target |");
    eprintln!("|---|---|---|---|");
    eprintln!("| 1 | {one:.1} | 1.00 | |");
    eprintln!("| 4 | {four:.1} | {ratio:.2} | ≤ 1.3 |");
    for (h, s) in &each {
        eprintln!("  {h} Ready after {s:.1} s");
    }
    let doc = serde_json::json!({
        "one_worker_seconds": one,
        "four_workers_seconds": four,
        "ratio": ratio,
        "target_ratio": 1.3,
        "each": each.iter().map(|(h, s)| serde_json::json!({"host": h, "seconds": s})).collect::<Vec<_>>(),
    });
    std::fs::write(
        common::bench_dir().join("workers.json"),
        serde_json::to_string_pretty(&doc).unwrap(),
    )
    .unwrap();
    lab.down().unwrap();
}
