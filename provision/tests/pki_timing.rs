//! How long a whole HA cluster's PKI takes to make (printed, never asserted),
//! and what it is made of (asserted: the count the README quotes).
//!
//! Pure test. Timings: `cargo test -p kubeseed-provision --release --test
//! pki_timing -- --nocapture`. By default ECDSA P-256 and RSA 2048 are made;
//! set `KUBESEED_PKI_TIMING=ecdsa-p256,rsa-2048,rsa-3072,rsa-4096` for all
//! (RSA 4096 key generation takes seconds per key).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Instant;

use kubeseed_provision::cluster::{ClusterSpec, EtcdMember, Member};
use kubeseed_provision::pki::{ClusterPki, KeyAlgorithm};

/// The README's "Full 3-master PKI (41 keys and certificates)": the 4 CA
/// key pairs of the store (cluster, etcd, front-proxy, service account),
/// and on each master 8 leaf key pairs (apiserver, apiserver-kubelet-client,
/// apiserver-etcd-client, front-proxy-client, etcd server, peer and
/// healthcheck-client, kubelet) and 4 kubeconfigs (admin, controller-manager,
/// scheduler, kubelet), plus `super-admin.conf` on the first master only, as
/// kubeadm >= 1.29 does.
const README_COUNT: usize = 41;
const STORE_KEY_PAIRS: usize = 4;
const LEAVES_PER_MASTER: usize = 8;
const KUBECONFIGS_PER_MASTER: usize = 4;
const FIRST_MASTER: &str = "master-1";

fn ha_spec(alg: KeyAlgorithm) -> ClusterSpec {
    let ip = |s: &str| s.parse().unwrap();
    let mut spec = ClusterSpec::stacked(Member::new("master-1", ip("10.213.0.11")));
    for (name, addr) in [("master-2", "10.213.0.12"), ("master-3", "10.213.0.13")] {
        spec.control_plane.push(Member::new(name, ip(addr)));
        spec.etcd.push(EtcdMember::new(name, ip(addr)));
    }
    spec.endpoint.vip = Some(ip("10.213.0.100"));
    spec.key_algorithm = alg;
    spec
}

/// Per host: (leaf key pairs, kubeconfigs). A leaf key pair is a `.key`
/// with its `.crt` beside it (`sa.key` is the store's, counted there).
fn inventory(pki: &ClusterPki) -> BTreeMap<String, (usize, usize)> {
    pki.hosts
        .iter()
        .map(|(host, files)| {
            let paths: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
            let leaves = paths
                .iter()
                .filter(|p| p.ends_with(".key") && !p.ends_with("/sa.key"))
                .inspect(|key| {
                    let crt = format!("{}.crt", key.trim_end_matches(".key"));
                    assert!(paths.contains(&crt), "{host}: {key} without {crt}");
                })
                .count();
            let kubeconfigs = paths.iter().filter(|p| p.ends_with(".conf")).count();
            (host.clone(), (leaves, kubeconfigs))
        })
        .collect()
}

#[test]
fn full_ha_cluster_pki_is_what_the_readme_counts() {
    let algs =
        std::env::var("KUBESEED_PKI_TIMING").unwrap_or_else(|_| "ecdsa-p256,rsa-2048".into());
    for alg in algs.split(',') {
        let alg: KeyAlgorithm = alg.parse().unwrap();
        let start = Instant::now();
        let pki = ClusterPki::generate(ha_spec(alg)).unwrap();
        let elapsed = start.elapsed();

        let inventory = inventory(&pki);
        let expected: BTreeMap<String, (usize, usize)> = ["master-1", "master-2", "master-3"]
            .iter()
            .map(|h| {
                let super_admin = usize::from(*h == FIRST_MASTER);
                (
                    (*h).to_owned(),
                    (LEAVES_PER_MASTER, KUBECONFIGS_PER_MASTER + super_admin),
                )
            })
            .collect();
        assert_eq!(
            inventory, expected,
            "{alg}: (leaf key pairs, kubeconfigs) per host"
        );
        let count = STORE_KEY_PAIRS
            + inventory
                .values()
                .map(|(leaves, kubeconfigs)| leaves + kubeconfigs)
                .sum::<usize>();
        assert_eq!(
            count, README_COUNT,
            "{alg}: the README quotes {README_COUNT} keys and certificates for a 3-master PKI"
        );
        println!(
            "pki timing: {alg:>10}: 3-master stacked HA cluster, {count} keys and certificates, {:.2?} ({:.1?} per key)",
            elapsed,
            elapsed / u32::try_from(count).unwrap()
        );
    }
}
