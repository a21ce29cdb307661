//! A leader cut off from the API server steps down before a standby may take
//! over: the kube-apiserver (started by this test's harness) is frozen with
//! SIGSTOP, the leader's renewals hang, and it must stop its controllers and
//! exit non-zero within its renew deadline, even though no request fails.
//!
//! Kind of test: real programs started by the test (etcd, kube-apiserver,
//! helm, the operator).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::operator::{NS, Operator, install_chart, service_account_kubeconfig};
use common::run_ok;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use kubeseed_testenv::controlplane::ControlPlane;

/// Resumes the frozen apiserver even when an assertion fails, so the harness
/// can stop it.
struct Frozen(u32);

impl Frozen {
    fn freeze(pid: u32) -> Frozen {
        run_ok(Command::new("kill").args(["-STOP", &pid.to_string()]));
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_steps_down_when_the_api_server_stops_answering() {
    let cp = ControlPlane::start().await.expect("control plane");
    install_chart(&cp);
    let kubeconfig = service_account_kubeconfig(&cp).await;
    let dir = tempfile::tempdir().unwrap();
    let leases: Api<Lease> = Api::namespaced(cp.client(), NS);

    let mut a = Operator::start("op-a", &kubeconfig, dir.path());
    a.wait_ready().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while leases
        .get_opt("kubeseed-operator")
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .as_deref()
        != Some("op-a")
    {
        assert!(Instant::now() < deadline, "op-a never led:\n{}", a.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let (apiserver, _etcd) = cp.pids();
    let t0 = Instant::now();
    let frozen = Frozen::freeze(apiserver);
    // Renew deadline 2s (see Operator::start); controllers then stop gracefully.
    let status = a.wait_exit(Duration::from_secs(15));
    let stepped_down = t0.elapsed();
    drop(frozen);
    eprintln!("MEASURED step-down after the API server froze: {stepped_down:?}");
    assert!(
        !status.success(),
        "a leader that lost its Lease exits non-zero"
    );
    let log = a.log();
    assert!(log.contains("giving up leadership"), "{log}");
    assert!(log.contains("lost the leader Lease"), "{log}");
    // The safety property: the leader gave up before a standby could take
    // over, i.e. less than the lease duration (3s) after its last renewal.
    let last_renewal = leases
        .get("kubeseed-operator")
        .await
        .unwrap()
        .spec
        .unwrap()
        .renew_time
        .unwrap()
        .0;
    let line = log
        .lines()
        .find(|l| l.contains("giving up leadership"))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    let gave_up: k8s_openapi::jiff::Timestamp = v["timestamp"].as_str().unwrap().parse().unwrap();
    let gap = gave_up.duration_since(last_renewal);
    eprintln!("MEASURED last renewal to giving up: {gap:?}");
    assert!(
        gap < k8s_openapi::jiff::SignedDuration::from_secs(3),
        "gave up {gap:?} after the last renewal; a standby could already lead"
    );
}
