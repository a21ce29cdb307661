//! A failing reconcile is visible without reading logs: a Warning event whose
//! reason names the error kind, and `kubeseed_reconcile_errors_total` with
//! the error label. The failure is real: the admin takes the status
//! permissions out of the chart's ClusterRole, so the operator's status write
//! is refused by the API server.
//!
//! Kind of test: real programs started by the test (etcd, kube-apiserver,
//! helm, the operator).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::operator::{NS, Operator, install_chart, service_account_kubeconfig};
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, ListParams, PostParams};
use kubeseed_crds::v1alpha1::WorkerNode;
use kubeseed_operator::controllers::FINALIZER;
use kubeseed_testenv::controlplane::ControlPlane;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_status_write_raises_a_warning_event_and_counts_the_error() {
    let cp = ControlPlane::start().await.expect("control plane");
    let admin = cp.client();
    install_chart(&cp);
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let mut role = roles.get("kubeseed").await.unwrap();
    let rules = role.rules.take().unwrap_or_default();
    role.rules = Some(
        rules
            .into_iter()
            .filter(|r| {
                !r.resources
                    .iter()
                    .flatten()
                    .any(|res| res.ends_with("/status"))
            })
            .collect(),
    );
    roles
        .replace("kubeseed", &PostParams::default(), &role)
        .await
        .unwrap();

    // The authorizer caches roles: wait until it refuses the status write.
    let reviews: Api<SubjectAccessReview> = Api::all(admin.clone());
    let review: SubjectAccessReview = serde_json::from_value(json!({"spec": {
        "user": format!("system:serviceaccount:{NS}:kubeseed"),
        "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{NS}"), "system:authenticated"],
        "resourceAttributes": {"group": "kubeseed.io", "resource": "workernodes",
            "subresource": "status", "verb": "patch", "name": "worker-err"}}}))
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while reviews
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .is_some_and(|s| s.allowed)
    {
        assert!(Instant::now() < deadline, "status patch still allowed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let kubeconfig = service_account_kubeconfig(&cp).await;
    let dir = tempfile::tempdir().unwrap();
    let mut op = Operator::start_with("op-err", &kubeconfig, dir.path(), &["--leader-elect=false"]);
    op.wait_ready().await;

    let members: Api<WorkerNode> = Api::all(admin.clone());
    members
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "kubeseed.io/v1alpha1", "kind": "WorkerNode",
                "metadata": {"name": "worker-err"},
                "spec": {"host": {"address": "10.213.0.51", "sshKeySecretRef": {"name": "kubeseed-ssh"}}}}))
            .unwrap(),
        )
        .await
        .unwrap();

    let events: Api<K8sEvent> = Api::namespaced(admin.clone(), "default");
    let deadline = Instant::now() + Duration::from_secs(20);
    let event = loop {
        let found = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("worker-err"));
        if let Some(e) = found {
            break e;
        }
        assert!(
            Instant::now() < deadline,
            "no event for worker-err:\n{}",
            op.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.reason.as_deref(), Some("ApiCallFailed"), "{event:?}");
    assert!(
        event
            .note
            .as_deref()
            .unwrap_or_default()
            .contains("forbidden"),
        "{event:?}"
    );

    let metrics = op.metrics().await;
    assert!(
        metrics.contains("kubeseed_reconcile_errors_total{kind=\"WorkerNode\",error=\"kube_api\"}"),
        "{metrics}"
    );
    // The finalizer went on before the status write failed: cleanup stays owed.
    let m = members.get("worker-err").await.unwrap();
    assert!(
        m.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&FINALIZER.to_owned())
    );
    assert!(m.status.is_none());
    let log = op.log();
    assert!(
        log.lines().any(|l| l.contains("reconcile failed")
            && l.contains("\"name\":\"worker-err\"")
            && l.contains("\"host\":\"10.213.0.51\"")),
        "{log}"
    );

    op.sigterm();
    assert!(
        op.wait_exit(Duration::from_secs(15)).success(),
        "{}",
        op.log()
    );
}
