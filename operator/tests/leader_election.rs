//! The operator binary, run as child processes with the chart's ServiceAccount
//! token (not admin) against a real kube-apiserver: one replica leads and
//! reconciles, the others stand by; stopping the leader (SIGTERM, then a
//! SIGKILL crash) hands the Lease to a standby, which carries on reconciling.
//!
//! Kind of test: real programs started by the test (etcd, kube-apiserver,
//! helm, and the operator itself).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::operator::{Operator, install_chart, service_account_kubeconfig};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kubeseed_crds::v1alpha1::conditions::READY;
use kubeseed_crds::v1alpha1::{ApiLoadBalancer, Phase, WorkerNode};
use kubeseed_operator::controllers::FINALIZER;
use kubeseed_testenv::controlplane::ControlPlane;
use serde_json::json;

use common::operator::NS;
const LEASE: &str = "kubeseed-operator";
// Short timings so the test is quick; their relation is the chart's default.
const LEASE_DURATION: Duration = Duration::from_secs(3);

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt(LEASE)
        .await
        .unwrap()
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
}

/// Waits until `want` holds the Lease; returns how long that took.
async fn wait_holder(
    leases: &Api<Lease>,
    want: &str,
    within: Duration,
    logs: &[&Operator],
) -> Duration {
    let start = Instant::now();
    loop {
        if holder(leases).await.as_deref() == Some(want) {
            return start.elapsed();
        }
        if start.elapsed() > within {
            let logs: Vec<_> = logs
                .iter()
                .map(|o| format!("--- {}:\n{}", o.identity, o.log()))
                .collect();
            panic!(
                "{want} did not get the Lease within {within:?} (holder {:?})\n{}",
                holder(leases).await,
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_for<T>(what: &str, within: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn cond<'a>(
    conds: &'a [k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    t: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    conds.iter().find(|c| c.type_ == t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_reconciles_and_hands_over_when_stopped() {
    let cp = ControlPlane::start().await.expect("control plane");
    let admin = cp.client();
    install_chart(&cp);
    let kubeconfig = service_account_kubeconfig(&cp).await;
    let dir = tempfile::tempdir().unwrap();
    let leases: Api<Lease> = Api::namespaced(admin.clone(), NS);

    // A leads, B stands by; both are ready.
    let mut a = Operator::start("op-a", &kubeconfig, dir.path());
    a.wait_ready().await;
    wait_holder(&leases, "op-a", Duration::from_secs(20), &[&a]).await;
    let mut b = Operator::start("op-b", &kubeconfig, dir.path());
    b.wait_ready().await;
    wait_for(
        "A to report leadership",
        Duration::from_secs(10),
        async || {
            a.metrics()
                .await
                .contains("kubeseed_leader 1")
                .then_some(())
        },
    )
    .await;
    assert!(b.metrics().await.contains("kubeseed_leader 0"));
    assert_eq!(holder(&leases).await.as_deref(), Some("op-a"));

    // The leader reconciles: finalizer, a status saying why nothing was
    // done (no seed ran here, so there is no cluster record), Warning event.
    let workers: Api<WorkerNode> = Api::all(admin.clone());
    workers
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "kubeseed.io/v1alpha1", "kind": "WorkerNode",
                "metadata": {"name": "worker-1"},
                "spec": {"host": {"address": "10.213.0.12", "sshKeySecretRef": {"name": "kubeseed-ssh"}}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let lbs: Api<ApiLoadBalancer> = Api::all(admin.clone());
    lbs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"apiVersion": "kubeseed.io/v1alpha1", "kind": "ApiLoadBalancer",
            "metadata": {"name": "lb-1"},
            "spec": {"vip": "10.213.0.100/24", "hosts": [
                {"host": {"address": "10.213.0.31", "sshKeySecretRef": {"name": "kubeseed-ssh"}}},
                {"host": {"address": "10.213.0.32", "sshKeySecretRef": {"name": "kubeseed-ssh"}}}]}}))
        .unwrap(),
    )
    .await
    .unwrap();
    let w1 = wait_for("worker-1 status", Duration::from_secs(20), async || {
        let o = workers.get("worker-1").await.ok()?;
        let s = o.status.clone()?;
        (!s.common.conditions.is_empty()).then_some(o)
    })
    .await;
    assert!(
        w1.metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .contains(&FINALIZER.to_owned())
    );
    let s = w1.status.unwrap();
    assert_eq!(s.common.phase, Some(Phase::Failed));
    let ready = cond(&s.common.conditions, READY).expect("Ready condition");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ClusterMaterialInvalid")
    );
    assert!(
        ready.message.contains("nothing was done"),
        "{}",
        ready.message
    );
    let lb = wait_for("lb-1 status", Duration::from_secs(20), async || {
        lbs.get("lb-1")
            .await
            .ok()?
            .status
            .filter(|s| !s.common.conditions.is_empty())
    })
    .await;
    // Implemented now: without the cluster's record (no seed ran here) it
    // says so and touches no host.
    let ready = cond(&lb.common.conditions, READY).expect("Ready condition");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ClusterMaterialInvalid")
    );
    assert!(
        ready.message.contains("nothing was done"),
        "{}",
        ready.message
    );
    let events: Api<K8sEvent> = Api::namespaced(admin.clone(), "default");
    wait_for(
        "the ClusterMaterialInvalid event",
        Duration::from_secs(10),
        async || {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| {
                    e.reason.as_deref() == Some("ClusterMaterialInvalid")
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("worker-1")
                        && e.type_.as_deref() == Some("Warning")
                })
        },
    )
    .await;
    let m = a.metrics().await;
    assert!(
        m.contains("kubeseed_reconcile_total{kind=\"WorkerNode\"}"),
        "{m}"
    );
    assert!(
        m.contains("kubeseed_reconcile_total{kind=\"ApiLoadBalancer\"}"),
        "{m}"
    );
    // Every reconcile log line names the object and its host(s).
    let log = a.log();
    let line = log
        .lines()
        .find(|l| l.contains("reconcile failed") && l.contains("\"name\":\"worker-1\""))
        .unwrap_or_else(|| panic!("no reconcile line for worker-1:\n{log}"));
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["span"]["host"], "10.213.0.12", "{line}");
    assert_eq!(v["span"]["kind"], "WorkerNode", "{line}");
    assert!(
        log.contains("\"host\":\"10.213.0.31,10.213.0.32\""),
        "{log}"
    );
    // The standby did not reconcile anything.
    assert!(!b.metrics().await.contains("kubeseed_reconcile_total{"));

    // Graceful stop of the leader: it releases the Lease, B takes over at once.
    let t0 = Instant::now();
    a.sigterm();
    let handover = wait_holder(&leases, "op-b", Duration::from_secs(10), &[&a, &b]).await;
    let status = a.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "A exited with {status}:\n{}", a.log());
    eprintln!(
        "MEASURED graceful handover (SIGTERM to new holder): {:?}",
        t0.elapsed()
    );
    assert!(
        handover < Duration::from_secs(3),
        "graceful handover took {handover:?}"
    );
    assert!(a.log().contains("released the leader Lease"));

    // B reconciles now: a spec change is observed.
    workers
        .patch(
            "worker-1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"kubernetesVersion": "v1.35.8"}})),
        )
        .await
        .unwrap();
    wait_for(
        "B to observe generation 2",
        Duration::from_secs(20),
        async || {
            (workers
                .get("worker-1")
                .await
                .ok()?
                .status?
                .common
                .observed_generation
                == Some(2))
            .then_some(())
        },
    )
    .await;
    assert!(b.metrics().await.contains("kubeseed_leader 1"));

    // Crash of the leader: C takes over once the Lease expires.
    let mut c = Operator::start("op-c", &kubeconfig, dir.path());
    c.wait_ready().await;
    let t0 = Instant::now();
    b.child.kill().unwrap(); // SIGKILL to B's PID
    b.child.wait().unwrap();
    let last_renewal = leases
        .get(LEASE)
        .await
        .unwrap()
        .spec
        .unwrap()
        .renew_time
        .unwrap()
        .0;
    wait_holder(&leases, "op-c", Duration::from_secs(20), &[&b, &c]).await;
    let crash_handover = t0.elapsed();
    let acquired = leases
        .get(LEASE)
        .await
        .unwrap()
        .spec
        .unwrap()
        .acquire_time
        .unwrap()
        .0;
    let gap = acquired.duration_since(last_renewal).unsigned_abs();
    eprintln!(
        "MEASURED crash handover (lease 3s): SIGKILL to new holder {crash_handover:?}, \
         last renewal by B to acquisition by C {gap:?}"
    );
    // Safe: C waited a whole lease duration after B's last renewal (B, had it
    // been alive but cut off, would have stepped down after its 2s deadline).
    assert!(
        gap >= LEASE_DURATION,
        "took over a Lease renewed {gap:?} earlier"
    );
    assert!(
        crash_handover < LEASE_DURATION * 3,
        "crash handover took {crash_handover:?}"
    );

    // C runs the cleanup: deleting the member removes the finalizer.
    workers
        .delete("worker-1", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("worker-1 to be gone", Duration::from_secs(20), async || {
        workers
            .get_opt("worker-1")
            .await
            .ok()?
            .is_none()
            .then_some(())
    })
    .await;

    c.sigterm();
    assert!(
        c.wait_exit(Duration::from_secs(15)).success(),
        "{}",
        c.log()
    );
    assert_eq!(holder(&leases).await, None, "C released the Lease");

    // A single replica without election reconciles at once and stays ready
    // past the readiness window (3s here) without a Lease to renew.
    let mut d = Operator::start_with("op-d", &kubeconfig, dir.path(), &["--leader-elect=false"]);
    d.wait_ready().await;
    let wns: Api<WorkerNode> = Api::all(admin.clone());
    wns.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"apiVersion": "kubeseed.io/v1alpha1", "kind": "WorkerNode",
            "metadata": {"name": "wn-1"},
            "spec": {"host": {"address": "10.213.0.41", "sshKeySecretRef": {"name": "kubeseed-ssh"}}}}))
        .unwrap(),
    )
    .await
    .unwrap();
    wait_for("wn-1 status", Duration::from_secs(20), async || {
        wns.get("wn-1")
            .await
            .ok()?
            .status
            .filter(|s| !s.common.conditions.is_empty())
    })
    .await;
    tokio::time::sleep(LEASE_DURATION + Duration::from_secs(1)).await;
    assert_eq!(
        d.get("/readyz").await.map(|(c, _)| c),
        Some(200),
        "{}",
        d.log()
    );
    assert!(d.metrics().await.contains("kubeseed_leader 1"));
    assert_eq!(
        holder(&leases).await,
        None,
        "no election: the Lease is untouched"
    );
    d.sigterm();
    assert!(
        d.wait_exit(Duration::from_secs(15)).success(),
        "{}",
        d.log()
    );
}
