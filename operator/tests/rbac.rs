//! The chart installs into a real kube-apiserver, and its RBAC gives the
//! operator's ServiceAccount exactly what the operator needs: every call it
//! makes succeeds with a token minted for that account (TokenRequest), and
//! the calls it must not make are refused by the API server (403).
//!
//! Kind of test: real programs started by the test (etcd, kube-apiserver, helm).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Debug;

use common::operator::{NS, install_chart};
use common::{chart, run_ok};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestStatus,
};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, EvictParams, ListParams, Patch, PatchParams, PostParams, WatchParams,
};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, Resource};
use kubeseed_crds::v1alpha1::{ApiLoadBalancer, ControlPlaneMember, EtcdMember, WorkerNode};
use kubeseed_operator::controllers::{FINALIZER, write_status};
use kubeseed_operator::leader::{LeaderElector, LeaseConfig, Role};
use kubeseed_testenv::controlplane::ControlPlane;
use serde::de::DeserializeOwned;
use serde_json::json;

const SA: &str = "kubeseed";
const LEASE: &str = "kubeseed-operator";

fn obj<T: DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).unwrap()
}

#[track_caller]
fn allowed<T: Debug>(what: &str, r: Result<T, kube::Error>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: the operator's account was refused: {e}"),
    }
}

#[track_caller]
fn refused<T: Debug>(what: &str, r: Result<T, kube::Error>) {
    match r {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

/// Refused by the chart's ValidatingAdmissionPolicy (not by RBAC): 403 with
/// the policy's message.
#[track_caller]
fn refused_by_policy<T: Debug>(what: &str, r: Result<T, kube::Error>) {
    match r {
        Err(kube::Error::Api(s))
            if s.code == 403
                && s.message
                    .contains("may only create bootstrap-token Secrets") => {}
        other => panic!("{what}: expected the bootstrap-token policy to refuse it, got {other:?}"),
    }
}

async fn can_list_and_watch<K>(sa: &Client, what: &str)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let api: Api<K> = Api::all(sa.clone());
    allowed(
        &format!("list {what}"),
        api.list(&ListParams::default()).await,
    );
    allowed(
        &format!("watch {what}"),
        api.watch(&WatchParams::default().timeout(1), "0")
            .await
            .map(|_| ()),
    );
}

fn csr(name: &str, signer: &str, usages: &[&str]) -> CertificateSigningRequest {
    common::kubelet_csr(name, signer, "node-a", &["node-a"], usages)
}

/// Approves `name` the way the operator does: PUT on the approval subresource.
async fn approve(api: &Api<CertificateSigningRequest>, name: &str) -> Result<(), kube::Error> {
    let mut c = api.get(name).await?;
    c.status = Some(CertificateSigningRequestStatus {
        conditions: Some(vec![CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some("KubeseedApproved".into()),
            message: Some("approved by the kubeseed RBAC test".into()),
            ..Default::default()
        }]),
        ..Default::default()
    });
    api.replace_subresource("approval", name, &PostParams::default(), &c)
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_rbac_allows_what_the_operator_needs_and_nothing_more() {
    let cp = ControlPlane::start().await.expect("control plane");
    let admin = cp.client();

    // helm install (Helm 4), into a namespace it creates.
    install_chart(&cp);
    let status = run_ok(cp.helm().args(["status", "kubeseed", "--namespace", NS]));
    assert!(status.contains("STATUS: deployed"), "{status}");
    // Helm 3 installs the same chart as a second release (CRDs already there).
    run_ok(cp.helm3().args(["install", "other"]).arg(chart()).args([
        "--namespace",
        "kubeseed-h3",
        "--create-namespace",
    ]));
    run_ok(
        cp.helm3()
            .args(["uninstall", "other", "--namespace", "kubeseed-h3"]),
    );

    // The Deployment's Pod template is a Pod the API server admits (field
    // validation and admission, server-side dry run; no kubelet runs here).
    let deploy = Api::<Deployment>::namespaced(admin.clone(), NS)
        .get("kubeseed")
        .await
        .unwrap();
    let template = deploy.spec.unwrap().template;
    let pod = Pod {
        metadata: kube::api::ObjectMeta {
            name: Some("kubeseed-template-check".into()),
            labels: template.metadata.and_then(|m| m.labels),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    };
    Api::<Pod>::namespaced(admin.clone(), NS)
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &pod,
        )
        .await
        .expect("the chart's Pod template is admitted");
    // Host networking is what Pod Security "baseline" forbids; the chart's
    // README says to label the namespace privileged for this reason.
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let label = |level: &str| {
        Patch::Merge(json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": level}}}))
    };
    namespaces
        .patch(NS, &PatchParams::default(), &label("baseline"))
        .await
        .unwrap();
    // Pod Security reads namespaces from an informer: the new label takes a
    // moment to apply.
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let pods_admin: Api<Pod> = Api::namespaced(admin.clone(), NS);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let err = loop {
        match pods_admin.create(&dry_run, &pod).await {
            Err(e) => break e,
            Ok(_) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Ok(_) => panic!("Pod Security baseline admitted hostNetwork"),
        }
    };
    assert!(err.to_string().contains("hostNetwork"), "{err}");
    namespaces
        .patch(NS, &PatchParams::default(), &label("privileged"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while let Err(e) = pods_admin.create(&dry_run, &pod).await {
        assert!(
            std::time::Instant::now() < deadline,
            "privileged still refuses: {e}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let token = cp.service_account_token(NS, SA, 3600).await.unwrap();
    let sa = cp.client_for_token(&token).await.unwrap();

    // --- its own kinds: list/watch, finalizers, status, owned EtcdMembers ---
    can_list_and_watch::<ControlPlaneMember>(&sa, "ControlPlaneMembers").await;
    can_list_and_watch::<EtcdMember>(&sa, "EtcdMembers").await;
    can_list_and_watch::<ApiLoadBalancer>(&sa, "ApiLoadBalancers").await;
    can_list_and_watch::<WorkerNode>(&sa, "WorkerNodes").await;

    let spec =
        json!({"host": {"address": "10.213.0.12", "sshKeySecretRef": {"name": "kubeseed-ssh"}}});
    let cpm_admin: Api<ControlPlaneMember> = Api::all(admin.clone());
    cpm_admin
        .create(
            &PostParams::default(),
            &obj(
                json!({"apiVersion": "kubeseed.io/v1alpha1", "kind": "ControlPlaneMember",
                "metadata": {"name": "cp-rbac"}, "spec": spec}),
            ),
        )
        .await
        .unwrap();
    let cpm: Api<ControlPlaneMember> = Api::all(sa.clone());
    allowed(
        "add finalizer",
        cpm.patch(
            "cp-rbac",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": [FINALIZER]}})),
        )
        .await,
    );
    allowed(
        "status by server-side apply",
        write_status::<ControlPlaneMember>(&cpm, "cp-rbac", json!({"phase": "Pending"}))
            .await
            .map_err(|e| match e {
                kubeseed_operator::Error::Kube(k) => k,
                other => panic!("{other}"),
            }),
    );
    assert_eq!(
        cpm_admin
            .get_status("cp-rbac")
            .await
            .unwrap()
            .status
            .unwrap()
            .common
            .phase,
        Some(kubeseed_crds::v1alpha1::Phase::Pending)
    );
    refused(
        "create a ControlPlaneMember",
        cpm.create(
            &PostParams::default(),
            &obj(
                json!({"apiVersion": "kubeseed.io/v1alpha1", "kind": "ControlPlaneMember",
                "metadata": {"name": "cp-forbidden"}, "spec": spec}),
            ),
        )
        .await,
    );
    refused(
        "delete a ControlPlaneMember",
        cpm.delete("cp-rbac", &DeleteParams::default()).await,
    );
    let etcd: Api<EtcdMember> = Api::all(sa.clone());
    allowed(
        "create the EtcdMember a Stacked master owns",
        etcd.create(
            &PostParams::default(),
            &obj(
                json!({"apiVersion": "kubeseed.io/v1alpha1", "kind": "EtcdMember",
                "metadata": {"name": "cp-rbac"}, "spec": spec}),
            ),
        )
        .await,
    );
    refused(
        "delete an EtcdMember",
        etcd.delete("cp-rbac", &DeleteParams::default()).await,
    );
    let crds: Api<CustomResourceDefinition> = Api::all(sa.clone());
    refused(
        "delete a CRD",
        crds.delete("controlplanemembers.kubeseed.io", &DeleteParams::default())
            .await,
    );

    // --- Secrets: read its namespace, write only its own by name ---
    let admin_own: Api<Secret> = Api::namespaced(admin.clone(), NS);
    for name in ["kubeseed-cluster", "kubeseed-ssh", "someone-elses"] {
        admin_own
            .create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": name}, "stringData": {"k": "v"}})),
            )
            .await
            .unwrap();
    }
    let own: Api<Secret> = Api::namespaced(sa.clone(), NS);
    allowed(
        "get a Secret in its namespace (a member's SSH key)",
        own.get("kubeseed-ssh").await,
    );
    allowed(
        "list Secrets in its namespace",
        own.list(&ListParams::default()).await,
    );
    allowed(
        "patch the Secret it owns (kubeseed-cluster)",
        own.patch(
            "kubeseed-cluster",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await,
    );
    let mut owned = own.get("kubeseed-cluster").await.unwrap();
    owned.metadata.annotations = Some([("a".to_owned(), "b".to_owned())].into());
    allowed(
        "update the Secret it owns",
        own.replace("kubeseed-cluster", &PostParams::default(), &owned)
            .await,
    );
    for name in ["kubeseed-ssh", "someone-elses"] {
        refused(
            &format!("patch Secret {name}, which it does not own"),
            own.patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"stringData": {"k": "changed"}})),
            )
            .await,
        );
    }
    refused(
        "create a Secret in its namespace",
        own.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "kubeseed-ca"}, "stringData": {"ca.crt": "x"}})),
        )
        .await,
    );
    refused(
        "delete a Secret in its namespace",
        own.delete("kubeseed-cluster", &DeleteParams::default())
            .await,
    );
    let all_secrets: Api<Secret> = Api::all(sa.clone());
    refused(
        "list Secrets cluster-wide",
        all_secrets.list(&ListParams::default()).await,
    );

    // kube-system: bootstrap tokens only. RBAC allows the create; the chart's
    // ValidatingAdmissionPolicy refuses any other name or type. The policy
    // takes effect once the API server's informer has seen it.
    let kube_system: Api<Secret> = Api::namespaced(sa.clone(), "kube-system");
    let dry_run = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let not_a_token = obj::<Secret>(json!({"metadata": {"name": "kubeseed-loot"},
        "stringData": {"token": "x"}}));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while kube_system.create(&dry_run, &not_a_token).await.is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "the bootstrap-token ValidatingAdmissionPolicy never took effect"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let token = |name: &str, type_: &str| {
        obj::<Secret>(json!({"metadata": {"name": name}, "type": type_,
            "stringData": {"token-id": "abcdef", "token-secret": "0123456789abcdef",
                "usage-bootstrap-authentication": "true"}}))
    };
    for (what, secret) in [
        ("an Opaque Secret", not_a_token.clone()),
        (
            "a bootstrap-token name with another type",
            token("bootstrap-token-abcdef", "Opaque"),
        ),
        (
            "the bootstrap-token type under another name",
            token("kubeseed-token", "bootstrap.kubernetes.io/token"),
        ),
        (
            "a bootstrap-token name that is not bootstrap-token-<6 characters>",
            token("bootstrap-token-abcdefg", "bootstrap.kubernetes.io/token"),
        ),
        (
            "a ServiceAccount token",
            obj::<Secret>(json!({"metadata": {"name": "bootstrap-token-sa0001",
                "annotations": {"kubernetes.io/service-account.name": "default"}},
                "type": "kubernetes.io/service-account-token"})),
        ),
    ] {
        refused_by_policy(
            &format!("create {what} in kube-system"),
            kube_system.create(&PostParams::default(), &secret).await,
        );
    }
    allowed(
        "create a bootstrap token in kube-system",
        kube_system
            .create(
                &PostParams::default(),
                &token("bootstrap-token-abcdef", "bootstrap.kubernetes.io/token"),
            )
            .await,
    );
    // The policy is about the operator only: an administrator still may.
    Api::<Secret>::namespaced(admin.clone(), "kube-system")
        .create(&dry_run, &not_a_token)
        .await
        .expect("the policy must not apply to other users");
    refused(
        "read a Secret in kube-system",
        kube_system.get("bootstrap-token-abcdef").await,
    );
    refused(
        "list Secrets in kube-system",
        kube_system.list(&ListParams::default()).await,
    );
    let default_secrets: Api<Secret> = Api::namespaced(sa.clone(), "default");
    refused(
        "create a Secret in default",
        default_secrets
            .create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": "x"}})),
            )
            .await,
    );
    let cms: Api<ConfigMap> = Api::namespaced(sa.clone(), "kube-system");
    refused(
        "list ConfigMaps in kube-system",
        cms.list(&ListParams::default()).await,
    );

    // --- the cluster's record: updated by name (a published VIP), no other ---
    let admin_cms: Api<ConfigMap> = Api::namespaced(admin.clone(), NS);
    for name in ["kubeseed-cluster", "someone-elses"] {
        admin_cms
            .create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": name}, "data": {"k": "v"}})),
            )
            .await
            .unwrap();
    }
    let own_cms: Api<ConfigMap> = Api::namespaced(sa.clone(), NS);
    let mut record = own_cms.get("kubeseed-cluster").await.unwrap();
    record
        .data
        .get_or_insert_default()
        .insert("k".into(), "w".into());
    allowed(
        "update the cluster's record (kubeseed-cluster)",
        own_cms
            .replace("kubeseed-cluster", &PostParams::default(), &record)
            .await,
    );
    let mut other = admin_cms.get("someone-elses").await.unwrap();
    other
        .data
        .get_or_insert_default()
        .insert("k".into(), "w".into());
    refused(
        "update another ConfigMap in its namespace",
        own_cms
            .replace("someone-elses", &PostParams::default(), &other)
            .await,
    );
    refused(
        "delete the cluster's record",
        own_cms
            .delete("kubeseed-cluster", &DeleteParams::default())
            .await,
    );

    // --- the leader Lease: its own by name; no other Lease ---
    let mut elector = LeaderElector::new(
        sa.clone(),
        LeaseConfig {
            name: LEASE.into(),
            namespace: NS.into(),
            identity: "rbac-test".into(),
            lease_duration: std::time::Duration::from_secs(15),
            renew_deadline: std::time::Duration::from_secs(10),
            retry_period: std::time::Duration::from_secs(2),
        },
    );
    assert_eq!(
        allowed("acquire the Lease", elector.try_acquire_or_renew().await),
        Role::Leader
    );
    assert_eq!(
        allowed("renew the Lease", elector.try_acquire_or_renew().await),
        Role::Leader
    );
    allowed("release the Lease", elector.release().await);
    let admin_leases: Api<Lease> = Api::namespaced(admin.clone(), NS);
    admin_leases
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "someone-else"}})),
        )
        .await
        .unwrap();
    let leases: Api<Lease> = Api::namespaced(sa.clone(), NS);
    refused("read another Lease", leases.get("someone-else").await);
    refused(
        "update another Lease",
        leases
            .replace(
                "someone-else",
                &PostParams::default(),
                &obj(
                    json!({"metadata": {"name": "someone-else"}, "spec": {"holderIdentity": "me"}}),
                ),
            )
            .await,
    );
    refused(
        "read Leases in kube-system",
        Api::<Lease>::namespaced(sa.clone(), "kube-system")
            .list(&ListParams::default())
            .await,
    );

    // --- Events about its objects ---
    let recorder = Recorder::new(
        sa.clone(),
        Reporter {
            controller: "kubeseed-operator".into(),
            instance: Some("rbac-test".into()),
        },
    );
    let cp_obj = cpm_admin.get("cp-rbac").await.unwrap();
    let ev = Event {
        type_: EventType::Warning,
        reason: "RbacTest".into(),
        note: Some("from the RBAC test".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    allowed(
        "publish an Event",
        recorder.publish(&ev, &cp_obj.object_ref(&())).await,
    );
    allowed(
        "publish it again (patch of the series)",
        recorder.publish(&ev, &cp_obj.object_ref(&())).await,
    );
    let events: Api<K8sEvent> = Api::namespaced(admin.clone(), "default");
    assert!(
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("RbacTest"))
    );

    // --- drain: nodes, pods, eviction ---
    let admin_nodes: Api<Node> = Api::all(admin.clone());
    admin_nodes
        .create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "node-a"}})),
        )
        .await
        .unwrap();
    let nodes: Api<Node> = Api::all(sa.clone());
    can_list_and_watch::<Node>(&sa, "Nodes").await;
    allowed(
        "cordon a Node",
        nodes
            .patch(
                "node-a",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"unschedulable": true}})),
            )
            .await,
    );
    refused(
        "patch a Node's status",
        nodes
            .patch_status(
                "node-a",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"phase": "Running"}})),
            )
            .await,
    );
    refused(
        "create a Node",
        nodes
            .create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": "node-b"}})),
            )
            .await,
    );
    allowed(
        "delete a Node",
        nodes.delete("node-a", &DeleteParams::default()).await,
    );

    // The ServiceAccount admission plugin needs default/default, which only
    // kube-controller-manager (not running here) would create.
    let admin_sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    if admin_sas.get_opt("default").await.unwrap().is_none() {
        admin_sas
            .create(
                &PostParams::default(),
                &obj(json!({"metadata": {"name": "default"}})),
            )
            .await
            .unwrap();
    }
    let pod = json!({"metadata": {"name": "workload"}, "spec": {
        "automountServiceAccountToken": false,
        "containers": [{"name": "c", "image": "registry.invalid/pause:1"}]}});
    Api::<Pod>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &obj(pod.clone()))
        .await
        .unwrap();
    can_list_and_watch::<Pod>(&sa, "Pods").await;
    let pods: Api<Pod> = Api::namespaced(sa.clone(), "default");
    allowed(
        "evict a Pod",
        pods.evict("workload", &EvictParams::default()).await,
    );
    refused(
        "create a Pod",
        pods.create(&PostParams::default(), &obj(pod)).await,
    );
    refused(
        "delete a Pod directly",
        pods.delete("workload", &DeleteParams::default()).await,
    );

    // --- CSR approval: kubelet signers only ---
    let admin_csrs: Api<CertificateSigningRequest> = Api::all(admin.clone());
    admin_csrs
        .create(
            &PostParams::default(),
            &csr(
                "kubelet-serving",
                "kubernetes.io/kubelet-serving",
                &["digital signature", "server auth"],
            ),
        )
        .await
        .unwrap();
    admin_csrs
        .create(
            &PostParams::default(),
            &csr(
                "client-cert",
                "kubernetes.io/kube-apiserver-client",
                &["digital signature", "client auth"],
            ),
        )
        .await
        .unwrap();
    can_list_and_watch::<CertificateSigningRequest>(&sa, "CSRs").await;
    let csrs: Api<CertificateSigningRequest> = Api::all(sa.clone());
    allowed(
        "approve a kubelet-serving CSR",
        approve(&csrs, "kubelet-serving").await,
    );
    let approved = admin_csrs.get("kubelet-serving").await.unwrap();
    assert!(
        approved
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Approved")
    );
    refused(
        "approve a kube-apiserver-client CSR (arbitrary client certificates)",
        approve(&csrs, "client-cert").await,
    );
    refused(
        "delete a CSR",
        csrs.delete("kubelet-serving", &DeleteParams::default())
            .await,
    );

    // --- no way to widen its own rights ---
    let deployments: Api<Deployment> = Api::namespaced(sa.clone(), NS);
    refused(
        "patch its own Deployment",
        deployments
            .patch(
                "kubeseed",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 5}})),
            )
            .await,
    );
    let crbs: Api<ClusterRoleBinding> = Api::all(sa.clone());
    refused(
        "bind itself to cluster-admin",
        crbs.create(
            &PostParams::default(),
            &obj(json!({"metadata": {"name": "escalate"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": SA, "namespace": NS}]})),
        )
        .await,
    );
}
