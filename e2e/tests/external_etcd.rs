//! The External etcd topology, provisioned by the operator in the cluster
//! (kind: whole-system, real hosts): etcd members on hosts of their own, and
//! masters whose apiservers use them.
//!
//! 1. host1 seeded (its stacked member founds etcd);
//! 2. three `EtcdMember`s applied at once (host2..host4) → they join one
//!    learner at a time and are promoted: four voting members, and nothing
//!    but etcd on their hosts;
//! 3. two `ControlPlaneMember`s with `External` (host5, host6) → Ready
//!    Nodes, no etcd on their hosts, each apiserver's `--etcd-servers` naming
//!    every Ready `EtcdMember`;
//! 4. host4's `EtcdMember` deleted → three members, its host clean (data
//!    kept as a backup), and both External apiservers' `--etcd-servers`
//!    without it (kept in step).
//!
//! Needs what `control_plane.rs` needs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step must stop it

mod common;

use std::time::{Duration, Instant};

use common::cluster::{
    apply, condition, etcd_member_yaml, etcd_members, eventually_or_dump, exists, jsonpath,
    master_yaml, wait_ready,
};
use common::{kubectl_ok, seeded_lab};
use kubeseed_e2e::Lab;

const NAME: &str = "exttest";
const SUBNET: &str = "10.213.14.0/24";

/// The `--etcd-servers` of `host`'s apiserver, from its unit.
fn etcd_servers(lab: &Lab, host: &str) -> String {
    let unit = lab.exec_ok(host, "systemctl cat kube-apiserver").unwrap();
    unit.split_whitespace()
        .find_map(|w| w.trim_matches('\'').strip_prefix("--etcd-servers="))
        .unwrap_or_default()
        .trim_end_matches('\\')
        .to_owned()
}

#[test]
fn external_etcd_members_and_masters() {
    let (lab, _work, state) = seeded_lab(NAME, SUBNET, 6);
    let address = |host: &str| lab.host(host).unwrap().address.to_string();

    // ---- three etcd members, applied at once ---------------------------------------
    let started = Instant::now();
    let yaml: Vec<String> = ["host2", "host3", "host4"]
        .iter()
        .map(|h| etcd_member_yaml(h, &address(h)))
        .collect();
    apply(&state, &yaml.join("---\n"));
    for host in ["host2", "host3", "host4"] {
        wait_ready(
            &lab,
            &state,
            &format!("etcdmember/{host}"),
            Duration::from_secs(900),
        );
    }
    let etcd_seconds = started.elapsed().as_secs_f64();
    let members = etcd_members(&lab, "host1");
    assert_eq!(members.len(), 4, "{members:?}");
    assert!(members.iter().all(|(_, learner)| !learner), "{members:?}");
    for host in ["host2", "host3", "host4"] {
        let id = jsonpath(&state, &format!("etcdmember/{host}"), "{.status.memberId}");
        assert!(!id.is_empty(), "{host} records its member id");
        let running = lab
            .exec_ok(
                host,
                "systemctl is-active etcd kubelet kube-apiserver 2>/dev/null; true",
            )
            .unwrap();
        let states: Vec<&str> = running.lines().collect();
        assert_eq!(states[0], "active", "{host}: etcd runs: {running}");
        assert!(
            states[1..].iter().all(|s| *s != "active"),
            "{host} runs nothing else: {running}"
        );
    }

    // ---- two masters with the External topology -------------------------------------
    let started = Instant::now();
    let yaml: Vec<String> = ["host5", "host6"]
        .iter()
        .map(|h| master_yaml(h, &address(h), "External"))
        .collect();
    apply(&state, &yaml.join("---\n"));
    for host in ["host5", "host6"] {
        wait_ready(
            &lab,
            &state,
            &format!("controlplanemember/{host}"),
            Duration::from_secs(900),
        );
    }
    let masters_seconds = started.elapsed().as_secs_f64();
    for host in ["host5", "host6"] {
        let ready = condition(&state, &format!("node/{host}"), "Ready").0;
        assert_eq!(ready, "True", "Node {host}");
        let servers = etcd_servers(&lab, host);
        for member in ["host1", "host2", "host3", "host4"] {
            assert!(
                servers.contains(&format!("https://{}:2379", address(member))),
                "{host}'s apiserver uses {member}: {servers}"
            );
        }
        let etcd = lab
            .exec(host, "systemctl is-active etcd; test -e /var/lib/etcd")
            .unwrap();
        assert!(!etcd.status.success(), "{host} runs no etcd");
        assert!(
            !exists(&state, &format!("etcdmember/{host}")),
            "an External master owns no EtcdMember"
        );
    }
    assert_eq!(
        etcd_members(&lab, "host1").len(),
        4,
        "masters added no member"
    );

    // ---- one etcd member leaves: the apiservers follow --------------------------------
    let started = Instant::now();
    kubectl_ok(&state, &["delete", "etcdmember", "host4", "--wait=false"]);
    let gone = format!("https://{}:2379", address("host4"));
    eventually_or_dump(
        &lab,
        &state,
        "host4 gone and the apiservers in step",
        Duration::from_secs(900),
        || {
            !exists(&state, "etcdmember/host4")
                && ["host5", "host6"]
                    .iter()
                    .all(|h| !etcd_servers(&lab, h).contains(&gone))
        },
    );
    let leave_seconds = started.elapsed().as_secs_f64();
    let members = etcd_members(&lab, "host1");
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(!members.iter().any(|(n, _)| n == "host4"), "{members:?}");
    let leftovers = lab
        .exec_ok(
            "host4",
            "systemctl is-active etcd 2>/dev/null; ls -d /etc/kubernetes /var/lib/etcd /var/lib/kubeseed 2>/dev/null; ls -d /var/lib/etcd.kubeseed-removed-*; true",
        )
        .unwrap();
    assert!(!leftovers.starts_with("active"), "{leftovers}");
    assert!(!leftovers.contains("/etc/kubernetes"), "{leftovers}");
    assert!(
        leftovers.contains("/var/lib/etcd.kubeseed-removed-"),
        "backup kept: {leftovers}"
    );
    for host in ["host5", "host6"] {
        wait_ready(
            &lab,
            &state,
            &format!("controlplanemember/{host}"),
            Duration::from_secs(300),
        );
    }

    let figures = serde_json::json!({
        "three_etcd_members_seconds": etcd_seconds,
        "two_external_masters_seconds": masters_seconds,
        "etcd_leave_and_apiservers_in_step_seconds": leave_seconds,
    });
    println!("EXTERNAL_ETCD_FIGURES {figures}");
    let report = lab.down().unwrap();
    assert!(report.left.is_empty(), "lab left: {:?}", report.left);
}
