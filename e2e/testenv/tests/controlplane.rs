//! Tests against a real etcd and kube-apiserver from the toolchain
//! (`bash e2e/toolchain/build.sh` first; these fail, not skip, without it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, ResourceExt as _};
use kubeseed_testenv::ControlPlane;

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "kubeseed_testenv=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Running (a zombie waiting for a reaper counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

const HOLD_ENV: &str = "KUBESEED_TESTENV_HOLD";

/// Helper for `children_die_with_a_killed_test_process`: run by that test in
/// a child test process, which it then SIGKILLs.
#[tokio::test]
#[ignore = "helper: run by children_die_with_a_killed_test_process"]
async fn hold_control_plane_until_killed() {
    if std::env::var_os(HOLD_ENV).is_none() {
        return;
    }
    let cp = ControlPlane::start().await.unwrap();
    let (apiserver, etcd) = cp.pids();
    println!("PIDS {apiserver} {etcd} {}", cp.dir().display());
    tokio::time::sleep(std::time::Duration::from_secs(600)).await;
}

#[test]
fn children_die_with_a_killed_test_process() {
    use std::io::BufRead as _;
    let mut holder = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "hold_control_plane_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env(HOLD_ENV, "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(holder.stdout.take().unwrap());
    let line = out
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("PIDS "))
        .expect("the helper test printed no PIDS line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (apiserver, etcd): (u32, u32) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    assert!(alive(apiserver) && alive(etcd));
    // No unwinding, no Drop: only the kernel's parent-death signal is left.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    while (alive(apiserver) || alive(etcd)) && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A SIGKILLed process cannot remove its directory; this test does.
    std::fs::remove_dir_all(fields[3]).unwrap();
    assert!(
        !alive(apiserver),
        "kube-apiserver {apiserver} outlived its test process"
    );
    assert!(!alive(etcd), "etcd {etcd} outlived its test process");
}

#[tokio::test]
async fn starts_lists_namespaces_and_cleans_up() {
    init_tracing();
    let t0 = Instant::now();
    let cp = ControlPlane::start().await.unwrap();
    eprintln!(
        "control plane ready in {:.2}s at {}",
        t0.elapsed().as_secs_f64(),
        cp.server_url()
    );
    let ns: Api<Namespace> = Api::all(cp.client());
    let names: Vec<String> = ns
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    for want in ["default", "kube-system"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }

    // The toolchain's kubectl and both helms reach it through the admin kubeconfig.
    let out = cp
        .kubectl()
        .args(["get", "ns", "-o", "name"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("namespace/kube-system"));
    let out = cp
        .kubectl()
        .args(["version", "-o", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["serverVersion"]["gitVersion"],
        kubeseed_testenv::toolchain::K8S_VERSION
    );
    for mut helm in [cp.helm(), cp.helm3()] {
        let out = helm.args(["list", "-A"]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = cp.etcdctl().args(["endpoint", "health"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let (apiserver, etcd) = cp.pids();
    let dir = cp.dir().to_path_buf();
    assert!(alive(apiserver) && alive(etcd));
    let t1 = Instant::now();
    cp.stop();
    eprintln!("stopped in {:.2}s", t1.elapsed().as_secs_f64());
    assert!(
        !alive(apiserver),
        "kube-apiserver {apiserver} still running"
    );
    assert!(!alive(etcd), "etcd {etcd} still running");
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[tokio::test]
async fn service_account_tokens_are_subject_to_rbac() {
    init_tracing();
    let cp = ControlPlane::start().await.unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(cp.client(), "default");
    let sa = ServiceAccount {
        metadata: ObjectMeta {
            name: Some("reader".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    sas.create(&PostParams::default(), &sa).await.unwrap();
    let token = cp
        .service_account_token("default", "reader", 600)
        .await
        .unwrap();
    assert!(!token.is_empty());

    let as_sa = cp.client_for_token(&token).await.unwrap();
    let ns: Api<Namespace> = Api::all(as_sa.clone());
    let denied = ns.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(&denied, kube::Error::Api(s) if s.code == 403),
        "expected 403 Forbidden, got {denied}"
    );

    let roles: Api<ClusterRole> = Api::all(cp.client());
    roles
        .create(
            &PostParams::default(),
            &ClusterRole {
                metadata: ObjectMeta {
                    name: Some("ns-reader".into()),
                    ..Default::default()
                },
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec![String::new()]),
                    resources: Some(vec!["namespaces".into()]),
                    verbs: vec!["list".into()],
                    ..Default::default()
                }]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let bindings: Api<ClusterRoleBinding> = Api::all(cp.client());
    bindings
        .create(
            &PostParams::default(),
            &ClusterRoleBinding {
                metadata: ObjectMeta {
                    name: Some("ns-reader".into()),
                    ..Default::default()
                },
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: "ns-reader".into(),
                },
                subjects: Some(vec![Subject {
                    kind: "ServiceAccount".into(),
                    name: "reader".into(),
                    namespace: Some("default".into()),
                    ..Default::default()
                }]),
            },
        )
        .await
        .unwrap();
    // RBAC changes reach the authorizer through an informer: allow a moment.
    let mut listed = None;
    for _ in 0..50 {
        match ns.list(&ListParams::default()).await {
            Ok(l) => {
                listed = Some(l);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert!(listed.is_some(), "binding did not grant list namespaces");

    // kubectl with the token kubeconfig sees the same rights.
    let kc = cp.kubeconfig_for_token("reader", &token).unwrap();
    let out = cp
        .kubectl()
        .env("KUBECONFIG", &kc)
        .args(["auth", "can-i", "delete", "namespaces"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");
}

#[tokio::test]
async fn external_pki_and_extra_flags_are_used() {
    init_tracing();
    let pki = kubeseed_testenv::ControlPlanePki::generate().unwrap();
    let ca = pki.ca_cert_pem.clone();
    let cp = ControlPlane::builder()
        .pki(pki)
        .apiserver_arg("--event-ttl=5m")
        .start()
        .await
        .unwrap();
    assert_eq!(cp.pki().ca_cert_pem, ca);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", cp.pids().0)).unwrap();
    assert!(String::from_utf8_lossy(&cmdline).contains("--event-ttl=5m"));
}

#[tokio::test]
async fn a_panicking_test_leaves_nothing_behind() {
    init_tracing();
    let cp = ControlPlane::start().await.unwrap();
    let (apiserver, etcd) = cp.pids();
    let dir = cp.dir().to_path_buf();
    let joined = std::thread::spawn(move || {
        let _cp = cp;
        panic!("simulated test failure");
    })
    .join();
    assert!(joined.is_err());
    assert!(
        !alive(apiserver) && !alive(etcd),
        "processes survived a panic"
    );
    assert!(!dir.exists(), "{} survived a panic", dir.display());
}
