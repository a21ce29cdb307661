//! The control plane grown and shrunk by the operator running in the
//! cluster (kind: whole-system, real hosts): `kubectl apply` of
//! `ControlPlaneMember`s after `bootstrap seed`.
//!
//! 1. host1 seeded; host2 and host3 applied with first-seen host keys →
//!    three voting etcd members, three Ready control-plane Nodes, each
//!    member's host key recorded in its status;
//! 2. a second object naming host2 gets `Conflict` and changes nothing;
//! 3. with host3's etcd stopped, deleting host2 is refused (`QuorumAtRisk`)
//!    and the object stays; once etcd is back the deletion proceeds;
//! 4. host2 leaves: two members, its Node gone, its host clean (no units,
//!    etcd data kept as a backup); applied again → three again.
//!
//! Prints the apply-to-Ready time of each join (`CONTROL_PLANE_FIGURES`).
//!
//! Needs root, the toolchain, a bundle (`KUBESEED_BUNDLE`) and the
//! `bootstrap` binary (`e2e/test.sh` provides all three).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step must stop it

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Seeder, bundle_dir, eventually, kubectl_ok, lab_for};
use kubeseed_e2e::Lab;

const NAME: &str = "cptest";
const SUBNET: &str = "10.213.12.0/24";

fn member_yaml(name: &str, address: &str) -> String {
    format!(
        "apiVersion: kubeseed.io/v1alpha1\nkind: ControlPlaneMember\nmetadata:\n  name: {name}\nspec:\n  host:\n    address: {address}\n    sshKeySecretRef:\n      name: kubeseed-ssh\n  etcd:\n    topology: Stacked\n"
    )
}

fn apply(state: &Path, yaml: &str) {
    let file = state.join("member.yaml");
    std::fs::write(&file, yaml).unwrap();
    kubectl_ok(state, &["apply", "-f", file.to_str().unwrap()]);
}

fn jsonpath(state: &Path, kind_name: &str, path: &str) -> String {
    let out = common::kubectl(state)
        .args(["get", kind_name, "-o", &format!("jsonpath={path}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn condition(state: &Path, kind_name: &str, type_: &str) -> (String, String) {
    (
        jsonpath(
            state,
            kind_name,
            &format!("{{.status.conditions[?(@.type==\"{type_}\")].status}}"),
        ),
        jsonpath(
            state,
            kind_name,
            &format!("{{.status.conditions[?(@.type==\"{type_}\")].reason}}"),
        ),
    )
}

/// `etcdctl member list` on `host`: (name, is learner) per member.
fn etcd_members(lab: &Lab, host: &str) -> Vec<(String, bool)> {
    let out = lab
        .exec_ok(
            host,
            "ETCDCTL_API=3 /usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 \
             --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt \
             --key=/etc/kubernetes/pki/etcd/healthcheck-client.key member list -w simple",
        )
        .unwrap();
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            (f[2].to_owned(), f[5] == "true")
        })
        .collect()
}

/// The operator's view, printed when a step does not happen in time.
fn dump(lab: &Lab, state: &Path, what: &str) {
    let out = |args: &[&str]| {
        let o = common::kubectl(state).args(args).output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    eprintln!(
        "---- {what}: members ----\n{}",
        out(&["get", "cpm,etcdmembers,nodes,pods", "-A", "-o", "wide"])
    );
    eprintln!(
        "---- status ----\n{}",
        out(&[
            "get",
            "cpm",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.conditions}{\"\\n\"}{end}"
        ])
    );
    eprintln!(
        "---- operator logs ----\n{}",
        out(&[
            "-n",
            "kubeseed-system",
            "logs",
            "-l",
            "app.kubernetes.io/name=kubeseed",
            "--tail=40",
            "--prefix"
        ])
    );
    eprintln!("---- etcd ----\n{:?}", etcd_members(lab, "host1"));
}

/// [`eventually`], with the operator's view printed before failing.
fn eventually_or_dump(
    lab: &Lab,
    state: &Path,
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + limit;
    while !f() {
        if Instant::now() > deadline {
            dump(lab, state, what);
            panic!("{what} did not happen in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn join(lab: &Lab, state: &Path, host: &str) -> f64 {
    let address = lab.host(host).unwrap().address.to_string();
    let started = Instant::now();
    apply(state, &member_yaml(host, &address));
    let kind_name = format!("controlplanemember/{host}");
    eventually(&format!("{host} Ready"), Duration::from_secs(600), || {
        let (ready, reason) = condition(state, &kind_name, "Ready");
        assert!(
            !matches!(
                reason.as_str(),
                "Conflict" | "PreflightFailed" | "HostKeyMismatch"
            ),
            "{host}: {reason}"
        );
        ready == "True"
    });
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{host}: apply to Ready in {seconds:.1} s");
    seconds
}

#[test]
fn the_operator_grows_and_shrinks_the_control_plane() {
    let bundle = bundle_dir();
    let lab = lab_for(NAME, SUBNET, 3);
    let work = tempfile::tempdir().unwrap();
    let seeder = Seeder::new(&lab, &bundle, work.path());
    let state = work.path().join("cluster");
    let out = seeder.seed(&lab, "host1", &state, &[]);
    assert!(out.ok, "seed of host1 failed:\n{}", out.text);

    // ---- grow: two joins ----------------------------------------------------------
    let host2_seconds = join(&lab, &state, "host2");
    let host3_seconds = join(&lab, &state, "host3");
    let members = etcd_members(&lab, "host1");
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(members.iter().all(|(_, learner)| !learner), "{members:?}");
    for host in ["host1", "host2", "host3"] {
        let ready = jsonpath(
            &state,
            &format!("node/{host}"),
            "{.status.conditions[?(@.type==\"Ready\")].status}",
        );
        assert_eq!(ready, "True", "Node {host}");
        let recorded = jsonpath(
            &state,
            &format!("controlplanemember/{host}"),
            "{.status.observedHostKey}",
        );
        let actual = lab
            .exec_ok(host, "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub")
            .unwrap();
        assert_eq!(recorded, actual.trim(), "{host}'s first-seen host key");
    }
    assert_eq!(
        jsonpath(&state, "etcdmember/host2", "{.status.isLearner}"),
        "false"
    );

    // ---- a second object on host2's address: Conflict, nothing touched ----------
    let address2 = lab.host("host2").unwrap().address.to_string();
    apply(&state, &member_yaml("host2-again", &address2));
    eventually("Conflict on host2-again", Duration::from_secs(60), || {
        condition(&state, "controlplanemember/host2-again", "Ready").1 == "Conflict"
    });
    kubectl_ok(
        &state,
        &["delete", "controlplanemember", "host2-again", "--wait=true"],
    );
    assert_eq!(etcd_members(&lab, "host1").len(), 3);

    // ---- a leave that would lose quorum is refused --------------------------------
    lab.exec_ok("host3", "systemctl stop etcd").unwrap();
    kubectl_ok(
        &state,
        &["delete", "controlplanemember", "host2", "--wait=false"],
    );
    eventually_or_dump(
        &lab,
        &state,
        "QuorumAtRisk on host2",
        Duration::from_secs(120),
        || condition(&state, "controlplanemember/host2", "Ready").1 == "QuorumAtRisk",
    );
    assert_eq!(etcd_members(&lab, "host1").len(), 3, "nothing removed");
    lab.exec_ok("host3", "systemctl start etcd").unwrap();

    // ---- the leave proceeds once etcd is whole again -----------------------------
    eventually_or_dump(&lab, &state, "host2 gone", Duration::from_secs(600), || {
        !common::kubectl(&state)
            .args(["get", "controlplanemember", "host2"])
            .output()
            .unwrap()
            .status
            .success()
    });
    let members = etcd_members(&lab, "host1");
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(!members.iter().any(|(n, _)| n == "host2"), "{members:?}");
    assert!(
        !common::kubectl(&state)
            .args(["get", "node", "host2"])
            .output()
            .unwrap()
            .status
            .success(),
        "Node host2 deleted"
    );
    let leftovers = lab
        .exec_ok(
            "host2",
            "systemctl is-active etcd kube-apiserver kubelet 2>/dev/null; ls -d /etc/kubernetes /var/lib/etcd 2>/dev/null; ls -d /var/lib/etcd.kubeseed-removed-* ; true",
        )
        .unwrap();
    assert!(!leftovers.contains("\nactive"), "{leftovers}");
    assert!(!leftovers.contains("/etc/kubernetes"), "{leftovers}");
    assert!(
        leftovers.contains("/var/lib/etcd.kubeseed-removed-"),
        "backup kept: {leftovers}"
    );

    // ---- and joins again ------------------------------------------------------------
    let rejoin_seconds = join(&lab, &state, "host2");
    assert_eq!(etcd_members(&lab, "host1").len(), 3);

    let figures = serde_json::json!({
        "join_seconds": {"host2": host2_seconds, "host3": host3_seconds, "host2_again": rejoin_seconds},
    });
    println!("CONTROL_PLANE_FIGURES {figures}");
    let report = lab.down().unwrap();
    assert!(report.left.is_empty(), "lab left: {:?}", report.left);
}
