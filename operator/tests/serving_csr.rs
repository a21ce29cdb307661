//! The kubelet serving certificate approver against a real kube-apiserver,
//! with the chart's RBAC (a token of its ServiceAccount, not admin): CSRs are
//! created as the kubelets create them (impersonating `system:node:<N>` in
//! group `system:nodes`, so `spec.username` is the API server's own record),
//! and each is approved, denied with its reason and an Event, or left alone.
//!
//! Kind of test: real programs started by the test (etcd, kube-apiserver,
//! helm); the approver runs in the test's process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::operator::{NS, install_chart};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestStatus,
};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kubeseed_crds::v1alpha1::WorkerNode;
use kubeseed_operator::context::{Context, Whereabouts};
use kubeseed_operator::csr_approval::{self, SIGNER};
use kubeseed_operator::metrics::Metrics;
use kubeseed_operator::shutdown::Latch;
use kubeseed_testenv::controlplane::ControlPlane;
use serde_json::json;

const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

/// A client that the API server takes for the kubelet of `node`.
async fn kubelet_client(cp: &ControlPlane, node: &str) -> Client {
    let kc = Kubeconfig::read_from(cp.kubeconfig_path()).unwrap();
    let mut config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.auth_info.impersonate = Some(format!("system:node:{node}"));
    config.auth_info.impersonate_groups = Some(vec!["system:nodes".into()]);
    Client::try_from(config).unwrap()
}

/// A CSR as the kubelet of `node` writes it.
fn csr(name: &str, signer: &str, node: &str, sans: &[&str]) -> CertificateSigningRequest {
    let usages: &[&str] = if signer == SIGNER {
        &["digital signature", "server auth"]
    } else {
        &["digital signature", "client auth"]
    };
    common::kubelet_csr(name, signer, node, sans, usages)
}

async fn create(client: &Client, csr: CertificateSigningRequest) {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    api.create(&PostParams::default(), &csr).await.unwrap();
}

fn conditions(csr: &CertificateSigningRequest) -> Vec<CertificateSigningRequestCondition> {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
}

/// Waits until `name` has a condition; returns (type, reason, message).
async fn decided(api: &Api<CertificateSigningRequest>, name: &str) -> (String, String, String) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = conditions(&api.get(name).await.unwrap());
        if let Some(c) = c.first() {
            assert_eq!(c.status, "True");
            return (
                c.type_.clone(),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            );
        }
        assert!(Instant::now() < deadline, "{name} was never decided");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Event with `reason` about `regarding` (kind/name) whose related
/// object is `related`, if any.
async fn event(
    events: &Api<K8sEvent>,
    reason: &str,
    regarding: (&str, &str),
    related: Option<&str>,
) -> K8sEvent {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some(regarding.0)
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(regarding.1)
                    && e.related.as_ref().and_then(|r| r.name.as_deref()) == related
            });
        if let Some(e) = found {
            return e;
        }
        assert!(
            Instant::now() < deadline,
            "no {reason} Event about {regarding:?} related to {related:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_serving_csrs_are_approved_and_the_others_denied_or_left_alone() {
    let cp = ControlPlane::start().await.expect("control plane");
    let admin = cp.client();
    install_chart(&cp);

    // --- the workers kubeseed provisions ---
    let workers: Api<WorkerNode> = Api::all(admin.clone());
    let worker = |name: &str, spec: serde_json::Value| -> WorkerNode {
        serde_json::from_value(
            json!({"apiVersion": "kubeseed.io/v1alpha1", "kind": "WorkerNode",
            "metadata": {"name": name}, "spec": spec}),
        )
        .unwrap()
    };
    // w1 asks for its node name; w2 registered under its host's name and is
    // reached by a DNS name.
    workers
        .create(
            &PostParams::default(),
            &worker(
                "w1",
                json!({"host": {"address": "10.213.0.21", "sshKeySecretRef": {"name": "ssh"}},
                    "kubelet": {"nodeName": "worker-1"}}),
            ),
        )
        .await
        .unwrap();
    workers
        .create(
            &PostParams::default(),
            &worker(
                "w2",
                json!({"host": {"address": "worker-2.lab.test", "sshKeySecretRef": {"name": "ssh"}},
                    "advertiseAddress": "10.213.0.22"}),
            ),
        )
        .await
        .unwrap();
    workers
        .patch_status(
            "w2",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"nodeName": "worker-2"}})),
        )
        .await
        .unwrap();

    let worker_1 = kubelet_client(&cp, "worker-1").await;
    let worker_2 = kubelet_client(&cp, "worker-2").await;
    let stranger = kubelet_client(&cp, "stranger").await;
    let admin_csrs: Api<CertificateSigningRequest> = Api::all(admin.clone());

    // Before the approver runs (as after a restart): one to approve, and
    // one an administrator denied already, which must stay as it is.
    create(
        &worker_1,
        csr("w1-early", SIGNER, "worker-1", &["worker-1", "10.213.0.21"]),
    )
    .await;
    create(
        &worker_1,
        csr("w1-denied-by-admin", SIGNER, "worker-1", &["worker-1"]),
    )
    .await;
    let mut by_admin = admin_csrs.get("w1-denied-by-admin").await.unwrap();
    by_admin.status = Some(CertificateSigningRequestStatus {
        conditions: Some(vec![CertificateSigningRequestCondition {
            type_: "Denied".into(),
            status: "True".into(),
            reason: Some("ByHand".into()),
            message: Some("denied by an administrator".into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    admin_csrs
        .replace_subresource(
            "approval",
            "w1-denied-by-admin",
            &PostParams::default(),
            &by_admin,
        )
        .await
        .unwrap();
    assert_eq!(
        admin_csrs
            .get("w1-early")
            .await
            .unwrap()
            .spec
            .username
            .as_deref(),
        Some("system:node:worker-1"),
        "the API server records the impersonated kubelet as the requester"
    );

    // --- the approver, with the chart's RBAC ---
    let token = cp
        .service_account_token(NS, "kubeseed", 3600)
        .await
        .unwrap();
    let sa = cp.client_for_token(&token).await.unwrap();
    let start = |id: &str| {
        let ctx = Arc::new(Context::new(
            sa.clone(),
            id,
            Metrics::new(),
            kubeseed_provision::ssh::Limits::default(),
            NS,
            std::env::temp_dir(),
            Whereabouts::default(),
        ));
        let stop = Latch::new();
        let task = tokio::spawn(csr_approval::run(ctx, stop.wait()));
        (stop, task)
    };
    let (stop, running) = start("serving-csr-test");

    create(
        &worker_2,
        csr(
            "w2-serving",
            SIGNER,
            "worker-2",
            &["worker-2", "worker-2.lab.test", "10.213.0.22"],
        ),
    )
    .await;
    create(
        &worker_1,
        csr(
            "w1-extra-ip",
            SIGNER,
            "worker-1",
            &["worker-1", "10.213.0.21", "10.0.0.99"],
        ),
    )
    .await;
    create(
        &stranger,
        csr("stranger-serving", SIGNER, "stranger", &["stranger"]),
    )
    .await;
    create(&worker_1, csr("w1-client", CLIENT_SIGNER, "worker-1", &[])).await;
    // Someone else's credentials, a worker's name.
    create(
        &admin,
        csr("admin-serving", SIGNER, "worker-1", &["worker-1"]),
    )
    .await;

    let (t, reason, message) = decided(&admin_csrs, "w1-early").await;
    assert_eq!(
        (t.as_str(), reason.as_str()),
        ("Approved", "KubeseedApproved"),
        "{message}"
    );
    assert!(message.contains("WorkerNode w1"), "{message}");
    let (t, reason, message) = decided(&admin_csrs, "w2-serving").await;
    assert_eq!(
        (t.as_str(), reason.as_str()),
        ("Approved", "KubeseedApproved"),
        "{message}"
    );
    let (t, reason, message) = decided(&admin_csrs, "w1-extra-ip").await;
    assert_eq!(
        (t.as_str(), reason.as_str()),
        ("Denied", "UnexpectedSan"),
        "{message}"
    );
    assert!(message.contains("IP:10.0.0.99"), "{message}");
    let (t, reason, message) = decided(&admin_csrs, "stranger-serving").await;
    assert_eq!(
        (t.as_str(), reason.as_str()),
        ("Denied", "UnknownNode"),
        "{message}"
    );
    assert!(message.contains("stranger"), "{message}");
    let (t, reason, message) = decided(&admin_csrs, "admin-serving").await;
    assert_eq!(
        (t.as_str(), reason.as_str()),
        ("Denied", "RequesterMismatch"),
        "{message}"
    );

    // --- Events: on the WorkerNode (the CSR related), else on the CSR ---
    let events: Api<K8sEvent> = Api::namespaced(admin.clone(), "default");
    let e = event(
        &events,
        "ServingCertificateApproved",
        ("WorkerNode", "w1"),
        Some("w1-early"),
    )
    .await;
    assert_eq!(e.type_.as_deref(), Some("Normal"));
    event(
        &events,
        "ServingCertificateApproved",
        ("WorkerNode", "w2"),
        Some("w2-serving"),
    )
    .await;
    let e = event(
        &events,
        "ServingCertificateDenied",
        ("WorkerNode", "w1"),
        Some("w1-extra-ip"),
    )
    .await;
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    let note = e.note.unwrap_or_default();
    assert!(
        note.contains("UnexpectedSan") && note.contains("10.0.0.99"),
        "{note}"
    );
    let e = event(
        &events,
        "ServingCertificateDenied",
        ("CertificateSigningRequest", "stranger-serving"),
        None,
    )
    .await;
    assert!(e.note.unwrap_or_default().contains("UnknownNode"));
    event(
        &events,
        "ServingCertificateDenied",
        ("CertificateSigningRequest", "admin-serving"),
        None,
    )
    .await;

    // --- a restarted approver touches nothing decided, nor another signer's ---
    stop.trigger();
    tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("the approver stops")
        .unwrap();
    let (stop, running) = start("serving-csr-test-2");
    create(
        &worker_1,
        csr("w1-later", SIGNER, "worker-1", &["worker-1", "10.213.0.21"]),
    )
    .await;
    let (t, _, _) = decided(&admin_csrs, "w1-later").await;
    assert_eq!(t, "Approved");
    // The restarted approver saw the whole list before this one's watch
    // event; give it a moment more anyway.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for name in [
        "w1-early",
        "w2-serving",
        "w1-extra-ip",
        "stranger-serving",
        "admin-serving",
        "w1-later",
    ] {
        let c = conditions(&admin_csrs.get(name).await.unwrap());
        assert_eq!(c.len(), 1, "{name} was decided more than once: {c:?}");
    }
    let by_admin = conditions(&admin_csrs.get("w1-denied-by-admin").await.unwrap());
    assert_eq!(by_admin.len(), 1, "{by_admin:?}");
    assert_eq!(by_admin[0].reason.as_deref(), Some("ByHand"));
    let client = admin_csrs.get("w1-client").await.unwrap();
    assert!(
        conditions(&client).is_empty(),
        "a client CSR was touched: {:?}",
        client.status
    );
    stop.trigger();
    tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("the approver stops")
        .unwrap();
}
