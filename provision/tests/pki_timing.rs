//! A small printed benchmark: how long a whole HA cluster's PKI takes to make.
//!
//! Run with `cargo test -p kubeseed-provision --release --test pki_timing -- --nocapture`.
//! By default ECDSA P-256 and RSA 2048 are timed; set
//! `KUBESEED_PKI_TIMING=ecdsa-p256,rsa-2048,rsa-3072,rsa-4096` for all
//! (RSA 4096 key generation takes seconds per key).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use kubeseed_provision::pki::{ClusterPki, ClusterSpec, KeyAlgorithm, Member};

fn ha_spec(alg: KeyAlgorithm) -> ClusterSpec {
    let ip = |s: &str| s.parse().unwrap();
    let mut spec = ClusterSpec::stacked(Member::new("master-1", ip("10.213.0.11")));
    for (name, addr) in [("master-2", "10.213.0.12"), ("master-3", "10.213.0.13")] {
        spec.control_plane.push(Member::new(name, ip(addr)));
        spec.etcd.push(Member::new(name, ip(addr)));
    }
    spec.endpoint.vip = Some(ip("10.213.0.100"));
    spec.key_algorithm = alg;
    spec
}

#[test]
fn time_full_ha_cluster_pki() {
    let algs =
        std::env::var("KUBESEED_PKI_TIMING").unwrap_or_else(|_| "ecdsa-p256,rsa-2048".into());
    for alg in algs.split(',') {
        let alg: KeyAlgorithm = alg.parse().unwrap();
        let start = Instant::now();
        let pki = ClusterPki::generate(ha_spec(alg)).unwrap();
        let elapsed = start.elapsed();
        let keys = 4 + pki
            .hosts
            .values()
            .flat_map(|h| h.iter())
            .filter(|(p, _)| {
                let p = p.display().to_string();
                (p.ends_with(".key") && !p.ends_with("sa.key")) || p.ends_with(".conf")
            })
            .count();
        println!(
            "pki timing: {alg:>10}: 3-master stacked HA cluster, {keys} keys and certificates, {:.2?} ({:.1?} per key)",
            elapsed,
            elapsed / keys as u32
        );
    }
}
