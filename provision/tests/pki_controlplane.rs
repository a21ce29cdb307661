//! Real etcd and kube-apiserver (started by kubeseed-testenv) running on
//! certificates made by kubeseed's PKI, and real kubectl using its kubeconfigs.
//!
//! Needs the toolchain (`bash e2e/toolchain/build.sh`); fails with
//! instructions when it is missing rather than skipping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use kubeseed_provision::cluster::{ClusterSpec, Member};
use kubeseed_provision::files::HostFiles;
use kubeseed_provision::pki::{
    BootstrapToken, ClusterCas, ClusterPki, Credentials, KeyAlgorithm, KubeconfigSpec,
    NODE_BOOTSTRAP_GROUP, profiles, render_kubeconfig,
};
use kubeseed_testenv::pki::{CertKey, ControlPlanePki, FrontProxyPki, SERVICE_CIDR};
use kubeseed_testenv::{ControlPlane, Toolchain};

fn file(files: &HostFiles, path: &str) -> String {
    files
        .get(path)
        .unwrap_or_else(|| panic!("{path} missing"))
        .to_owned()
}

fn pair(files: &HostFiles, stem: &str) -> CertKey {
    CertKey {
        cert_pem: file(files, &format!("/etc/kubernetes/pki/{stem}.crt")),
        key_pem: file(files, &format!("/etc/kubernetes/pki/{stem}.key")),
    }
}

/// The harness's view of a kubeseed control-plane host. The harness's own
/// client must be `system:masters`, so it gets super-admin; `admin.conf`
/// (kubeadm:cluster-admins) is tested separately below.
fn harness_pki(pki: &ClusterPki, host: &str) -> ControlPlanePki {
    let files = &pki.hosts[host];
    let super_admin = pki
        .cas
        .cluster
        .issue(
            &profiles::super_admin(),
            pki.spec.key_algorithm,
            &pki.spec.validity,
        )
        .unwrap();
    ControlPlanePki {
        ca_cert_pem: file(files, "/etc/kubernetes/pki/ca.crt"),
        // The harness never needs the CA key; kubeseed keeps it off hosts.
        ca_key_pem: None,
        apiserver: pair(files, "apiserver"),
        admin: CertKey {
            cert_pem: super_admin.cert_pem,
            key_pem: super_admin.key_pem,
        },
        etcd_ca_cert_pem: file(files, "/etc/kubernetes/pki/etcd/ca.crt"),
        etcd_server: pair(files, "etcd/server"),
        apiserver_etcd_client: pair(files, "apiserver-etcd-client"),
        service_account_key_pem: file(files, "/etc/kubernetes/pki/sa.key"),
        service_account_pub_pem: file(files, "/etc/kubernetes/pki/sa.pub"),
        front_proxy: Some(FrontProxyPki {
            ca_cert_pem: file(files, "/etc/kubernetes/pki/front-proxy-ca.crt"),
            client: pair(files, "front-proxy-client"),
        }),
    }
}

struct Kubectl<'a> {
    cp: &'a ControlPlane,
    dir: PathBuf,
}

impl Kubectl<'_> {
    fn write(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, yaml).unwrap();
        path
    }

    fn run(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd: Command = self.cp.kubectl();
        cmd.arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    fn whoami(&self, kubeconfig: &Path) -> (String, Vec<String>) {
        let out = self.run(kubeconfig, &["auth", "whoami", "-o", "json"], None);
        assert!(
            out.status.success(),
            "whoami with {}: {}",
            kubeconfig.display(),
            text(&out)
        );
        let review: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let user = &review["status"]["userInfo"];
        let groups = user["groups"]
            .as_array()
            .map(|g| g.iter().map(|g| g.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        (user["username"].as_str().unwrap().to_owned(), groups)
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}

async fn run_control_plane(alg: KeyAlgorithm) {
    let toolchain = Toolchain::locate().unwrap();
    let mut spec = ClusterSpec::stacked(Member::new("master-1", "127.0.0.1".parse().unwrap()));
    // The harness runs kube-apiserver with its own service range.
    spec.service_cidr = SERVICE_CIDR.to_owned();
    spec.key_algorithm = alg;
    let generated = Instant::now();
    let pki = ClusterPki::generate(spec).unwrap();
    eprintln!("{alg}: cluster PKI generated in {:?}", generated.elapsed());

    let cp = ControlPlane::builder()
        .toolchain(toolchain)
        .pki(harness_pki(&pki, "master-1"))
        .apiserver_arg("--enable-bootstrap-token-auth=true")
        .start()
        .await
        .unwrap();
    // Ready means kube-apiserver served with kubeseed's serving certificate
    // and reached etcd over mutual TLS (etcd runs with --client-cert-auth)
    // using kubeseed's etcd server and apiserver-etcd-client certificates.
    eprintln!("{alg}: control plane ready in {:?}", cp.startup_time());

    // Kubeconfigs now that the harness chose the port.
    let mut spec = pki.spec.clone();
    spec.endpoint.port = port_of(cp.server_url());
    let tmp = tempfile::tempdir().unwrap();
    let k = Kubectl {
        cp: &cp,
        dir: tmp.path().to_path_buf(),
    };
    let mut host = pki.cas.control_plane_files(&spec, "master-1").unwrap();
    host.extend(pki.cas.super_admin_files(&spec).unwrap());
    let kc = |name: &str| k.write(name, &file(&host, &format!("/etc/kubernetes/{name}")));
    let (admin, super_admin) = (kc("admin.conf"), kc("super-admin.conf"));
    assert!(file(&host, "/etc/kubernetes/admin.conf").contains(cp.server_url()));

    // super-admin (system:masters) can do anything at once.
    let out = k.run(&super_admin, &["get", "namespaces", "-o", "name"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("namespace/kube-system"),
        "{}",
        text(&out)
    );

    // admin (kubeadm:cluster-admins) authenticates but has no rights until
    // the binding exists, exactly as with kubeadm ≥ 1.29.
    let (user, groups) = k.whoami(&admin);
    assert_eq!(user, "kubernetes-admin");
    assert!(
        groups.contains(&"kubeadm:cluster-admins".to_owned()),
        "{groups:?}"
    );
    assert!(!groups.contains(&"system:masters".to_owned()), "{groups:?}");
    let out = k.run(&admin, &["get", "namespaces"], None);
    assert!(
        !out.status.success() && text(&out).contains("Forbidden"),
        "{}",
        text(&out)
    );
    let out = k.run(
        &super_admin,
        &["apply", "-f", "-"],
        Some(profiles::CLUSTER_ADMINS_BINDING),
    );
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = k.run(&admin, &["get", "namespaces", "-o", "name"], None);
        if out.status.success() {
            assert!(text(&out).contains("namespace/default"), "{}", text(&out));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "admin still refused: {}",
            text(&out)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Each component kubeconfig authenticates as its component.
    for (name, want_user, want_group) in [
        (
            "controller-manager.conf",
            "system:kube-controller-manager",
            None,
        ),
        ("scheduler.conf", "system:kube-scheduler", None),
        ("kubelet.conf", "system:node:master-1", Some("system:nodes")),
    ] {
        let (user, groups) = k.whoami(&kc(name));
        assert_eq!(user, want_user, "{name}");
        if let Some(g) = want_group {
            assert!(groups.contains(&g.to_owned()), "{name}: {groups:?}");
        }
    }

    // The kubelet bootstrap kubeconfig works once its token Secret exists.
    let token = BootstrapToken::generate();
    let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let mut secret_args = vec![
        "create".to_owned(),
        "secret".to_owned(),
        "generic".to_owned(),
        format!("bootstrap-token-{}", token.id()),
        "--namespace=kube-system".to_owned(),
        "--type=bootstrap.kubernetes.io/token".to_owned(),
    ];
    for (key, value) in token.secret_data(expires) {
        secret_args.push(format!(
            "--from-literal={key}={}",
            String::from_utf8(value).unwrap()
        ));
    }
    let args: Vec<&str> = secret_args.iter().map(String::as_str).collect();
    let out = k.run(&super_admin, &args, None);
    assert!(out.status.success(), "{}", text(&out));
    let boot = pki.cas.bootstrap_kubelet_files(&spec, &token).unwrap();
    let boot = k.write(
        "bootstrap-kubelet.conf",
        &file(&boot, "/etc/kubernetes/bootstrap-kubelet.conf"),
    );
    let (user, groups) = k.whoami(&boot);
    assert_eq!(user, format!("system:bootstrap:{}", token.id()));
    assert!(
        groups.contains(&NODE_BOOTSTRAP_GROUP.to_owned()),
        "{groups:?}"
    );

    // Service-account tokens are signed with kubeseed's sa.key and verified with sa.pub.
    // (No controller-manager runs here, so the account is created by hand.)
    let out = k.run(
        &super_admin,
        &[
            "create",
            "serviceaccount",
            "pki-test",
            "--namespace=default",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    let sa_token = cp
        .service_account_token("default", "pki-test", 600)
        .await
        .unwrap();
    let sa_kc = cp.kubeconfig_for_token("sa", &sa_token).unwrap();
    let (user, _) = k.whoami(&sa_kc);
    assert_eq!(user, "system:serviceaccount:default:pki-test");

    // etcd accepts kubeseed's health-check client certificate.
    let etcd_files = &pki.hosts["master-1"];
    let hc_crt = k.write(
        "hc.crt",
        &file(
            etcd_files,
            "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
        ),
    );
    let hc_key = k.write(
        "hc.key",
        &file(
            etcd_files,
            "/etc/kubernetes/pki/etcd/healthcheck-client.key",
        ),
    );
    let out = cp
        .etcdctl()
        .env("ETCDCTL_CERT", &hc_crt)
        .env("ETCDCTL_KEY", &hc_key)
        .args(["endpoint", "health"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && text(&out).contains("is healthy"),
        "{}",
        text(&out)
    );

    // A client certificate from another cluster's CA is refused, even one
    // claiming system:masters. The server is still trusted via the real CA,
    // so the refusal is about the client certificate alone.
    let other = ClusterCas::generate(KeyAlgorithm::EcdsaP256, &Default::default()).unwrap();
    let forged = other
        .cluster
        .issue(
            &profiles::super_admin(),
            KeyAlgorithm::EcdsaP256,
            &Default::default(),
        )
        .unwrap();
    let forged_kc = k.write(
        "forged.conf",
        &render_kubeconfig(&KubeconfigSpec {
            cluster_name: "kubernetes",
            server: cp.server_url(),
            ca_pem: pki.cas.cluster.cert_pem(),
            user_name: "kubernetes-super-admin",
            credentials: Credentials::ClientCert(&forged),
        })
        .unwrap(),
    );
    let out = k.run(&forged_kc, &["get", "namespaces"], None);
    assert!(
        !out.status.success(),
        "forged client accepted: {}",
        text(&out)
    );
    assert!(
        text(&out).contains("Unauthorized") || text(&out).contains("must be logged in"),
        "{}",
        text(&out)
    );
    // ... and etcd refuses the other cluster's etcd client certificate.
    let forged_etcd = other
        .etcd
        .issue(
            &profiles::apiserver_etcd_client(),
            KeyAlgorithm::EcdsaP256,
            &Default::default(),
        )
        .unwrap();
    let fe_crt = k.write("fe.crt", &forged_etcd.cert_pem);
    let fe_key = k.write("fe.key", &forged_etcd.key_pem);
    let out = cp
        .etcdctl()
        .env("ETCDCTL_CERT", &fe_crt)
        .env("ETCDCTL_KEY", &fe_key)
        .env("ETCDCTL_DIAL_TIMEOUT", "3s")
        .env("ETCDCTL_COMMAND_TIMEOUT", "5s")
        .args(["get", "/registry/namespaces/default"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "forged etcd client accepted: {}",
        text(&out)
    );
}

#[tokio::test]
async fn apiserver_and_etcd_run_on_kubeseed_ecdsa_certificates() {
    run_control_plane(KeyAlgorithm::EcdsaP256).await;
}

#[tokio::test]
async fn apiserver_and_etcd_run_on_kubeseed_rsa_certificates() {
    run_control_plane(KeyAlgorithm::Rsa2048).await;
}
