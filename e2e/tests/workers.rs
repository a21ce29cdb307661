//! `WorkerNode`s provisioned by the operator in the cluster, and a cluster
//! that runs a user's workload (kind: whole-system, real hosts).
//!
//! 1. host1 seeded: cluster DNS (CoreDNS from the bundle) comes up on it;
//! 2. bad input, nothing changed: host4 holding another cluster's kubelet
//!    state → `PreflightFailed`; a worker asking for the master's node name
//!    → `Conflict`;
//! 3. host2 and host3 applied at once → Ready Nodes, joined with bootstrap
//!    tokens, their serving certificates approved by the operator (a
//!    tampered request is denied: see operator/tests/serving_csr.rs);
//! 4. a Deployment of a locally built image (netcheck) spreads across the
//!    two workers; through the API server's pod proxy, a pod on host2 reaches
//!    a pod on host3, a pod on the master, and the Service by its DNS name,
//!    and resolves `kubernetes.default.svc.cluster.local`;
//! 5. host2's `WorkerNode` deleted while a PodDisruptionBudget forbids any
//!    eviction → `Drained=False` (`DrainStuck`), nothing removed; the budget
//!    relaxed → drained, host clean, Node gone, the pods rescheduled on host3.
//!
//! Needs what `control_plane.rs` needs, and Go for the netcheck image.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step must stop it

mod common;

use std::time::{Duration, Instant};

use common::cluster::{
    apply, assert_consistent, condition, eventually_or_dump, exists, jsonpath, wait_ready,
    worker_yaml,
};
use common::workload::{
    deploy_netcheck, netcheck_image, netcheck_on, pod_reaches, pods, worker_left,
};
use common::{kubectl, kubectl_ok, seeded_lab};

const NAME: &str = "wrktest";
const SUBNET: &str = "10.213.16.0/24";

#[test]
fn workers_join_run_workloads_and_leave() {
    let netcheck = netcheck_image();
    let (lab, _work, state) = seeded_lab(NAME, SUBNET, 4);
    let address = |host: &str| lab.host(host).unwrap().address.to_string();

    // ---- cluster DNS on the master -------------------------------------------------
    eventually_or_dump(
        &lab,
        &state,
        "CoreDNS available",
        Duration::from_secs(300),
        || {
            let out = kubectl(&state)
                .args([
                    "-n",
                    "kube-system",
                    "get",
                    "deployment/coredns",
                    "-o",
                    "jsonpath={.status.availableReplicas}",
                ])
                .output()
                .unwrap();
            !String::from_utf8_lossy(&out.stdout).trim().is_empty()
        },
    );

    // ---- bad input: nothing changes ----------------------------------------------------
    // host4 holds a kubelet of another cluster (another CA).
    lab.exec_ok(
        "host4",
        "mkdir -p /etc/kubernetes/pki /var/lib/kubelet && \
         openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
           -subj /CN=other-cluster-ca -keyout /root/other-ca.key -out /etc/kubernetes/pki/ca.crt 2>/dev/null && \
         echo 'apiVersion: v1' > /etc/kubernetes/kubelet.conf",
    )
    .unwrap();
    apply(&state, &worker_yaml("host4", &address("host4"), ""));
    eventually_or_dump(
        &lab,
        &state,
        "host4 refused",
        Duration::from_secs(180),
        || condition(&state, "workernode/host4", "Ready").1 == "PreflightFailed",
    );
    let why = jsonpath(
        &state,
        "workernode/host4",
        "{.status.conditions[?(@.type==\"PreflightPassed\")].message}",
    );
    assert!(why.contains("another cluster"), "{why}");
    assert_eq!(
        lab.exec_ok(
            "host4",
            "ls /etc/systemd/system/kubelet.service 2>/dev/null; ls /etc/kubernetes/pki"
        )
        .unwrap()
        .trim(),
        "ca.crt",
        "host4 was changed"
    );
    kubectl_ok(&state, &["delete", "workernode/host4", "--wait=true"]);
    lab.exec_ok(
        "host4",
        "rm -rf /etc/kubernetes /var/lib/kubelet /root/other-ca.key",
    )
    .unwrap();
    // A worker registering as the master's Node.
    apply(
        &state,
        &worker_yaml(
            "taken",
            &address("host4"),
            "  kubelet:\n    nodeName: host1\n",
        ),
    );
    eventually_or_dump(
        &lab,
        &state,
        "taken refused",
        Duration::from_secs(60),
        || condition(&state, "workernode/taken", "Ready").1 == "Conflict",
    );
    assert!(
        lab.exec_ok("host4", "ls /var/lib/kubeseed 2>/dev/null; true")
            .unwrap()
            .trim()
            .is_empty(),
        "host4 was changed"
    );
    kubectl_ok(&state, &["delete", "workernode/taken", "--wait=true"]);

    // ---- two workers at once -------------------------------------------------------------
    let started = Instant::now();
    let yaml = [
        worker_yaml("host2", &address("host2"), ""),
        worker_yaml(
            "host3",
            &address("host3"),
            "  kubelet:\n    labels:\n      tier: web\n",
        ),
    ];
    apply(&state, &yaml.join("---\n"));
    for host in ["host2", "host3"] {
        wait_ready(
            &lab,
            &state,
            &format!("workernode/{host}"),
            Duration::from_secs(600),
        );
    }
    eprintln!(
        "MEASURED two workers apply → Ready: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for host in ["host2", "host3"] {
        let ready = condition(&state, &format!("node/{host}"), "Ready").0;
        assert_eq!(ready, "True", "Node {host}");
        let role = jsonpath(
            &state,
            &format!("node/{host}"),
            "{.metadata.labels.node-role\\.kubernetes\\.io/worker}",
        );
        assert!(exists(&state, &format!("node/{host}")), "{role}");
        // The kubelet holds its own certificate; no token is left on the host.
        let files = lab
            .exec_ok(
                host,
                "ls /var/lib/kubelet/pki/kubelet-client-current.pem /var/lib/kubelet/pki/kubelet-server-current.pem; \
                 ls /etc/kubernetes/bootstrap-kubelet.conf 2>/dev/null; ls /etc/kubernetes/pki",
            )
            .unwrap();
        assert!(!files.contains("bootstrap-kubelet.conf"), "{files}");
        assert!(
            !files.contains(".key"),
            "a key in /etc/kubernetes/pki: {files}"
        );
    }
    assert_eq!(
        jsonpath(&state, "node/host3", "{.metadata.labels.tier}"),
        "web"
    );
    // Every kubelet serving CSR of the two was approved by the operator.
    let csrs = kubectl_ok(
        &state,
        &[
            "get",
            "csr",
            "-o",
            "jsonpath={range .items[?(@.spec.signerName==\"kubernetes.io/kubelet-serving\")]}{.spec.username} {.status.conditions[0].type}{\"\\n\"}{end}",
        ],
    );
    for host in ["host2", "host3"] {
        assert!(
            csrs.contains(&format!("system:node:{host} Approved")),
            "{csrs}"
        );
    }

    // ---- a workload across the workers ---------------------------------------------------
    deploy_netcheck(
        &lab,
        &state,
        &netcheck,
        &["host1", "host2", "host3"],
        &["host2", "host3"],
    );
    let (a, _) = netcheck_on(&state, "host2");
    let (_, b_ip) = netcheck_on(&state, "host3");
    let (_, _, m_ip) = pods(&state, "app=netcheck-master")[0].clone();
    let checks = [
        (
            "a pod on host3",
            format!("/fetch?url=http://{b_ip}:8080/"),
            "host3",
        ),
        (
            "the pod on the master",
            format!("/fetch?url=http://{m_ip}:8080/"),
            "host1",
        ),
        (
            "the Service by name",
            "/fetch?url=http://netcheck.default.svc.cluster.local:8080/".to_owned(),
            "podIP",
        ),
        (
            "the API's name",
            "/resolve?name=kubernetes.default.svc.cluster.local".to_owned(),
            "10.96.0.1",
        ),
    ];
    for (what, path, want) in checks {
        pod_reaches(&state, &a, what, &path, want);
    }

    // ---- leave, blocked by a budget, then not ----------------------------------------------
    apply(
        &state,
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: netcheck\nspec:\n  minAvailable: 4\n  selector:\n    matchLabels: {app: netcheck}\n",
    );
    kubectl_ok(&state, &["delete", "workernode/host2", "--wait=false"]);
    eventually_or_dump(
        &lab,
        &state,
        "the drain of host2 stuck",
        Duration::from_secs(300),
        || {
            condition(&state, "workernode/host2", "Drained")
                == ("False".into(), "DrainStuck".into())
        },
    );
    assert!(exists(&state, "node/host2"));
    assert_eq!(
        lab.exec_ok("host2", "systemctl is-active kubelet")
            .unwrap()
            .trim(),
        "active"
    );
    let cordoned = jsonpath(&state, "node/host2", "{.spec.unschedulable}");
    assert_eq!(cordoned, "true");
    kubectl_ok(&state, &["delete", "pdb/netcheck"]);
    worker_left(&lab, &state, "host2", "host3");
    assert_consistent(&lab, &state, "host1", None);
    lab.down().unwrap();
}
