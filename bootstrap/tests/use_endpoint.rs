//! `bootstrap use-endpoint`, the binary, against a real etcd + kube-apiserver
//! (kubeseed-testenv; needs the toolchain from `bash e2e/toolchain/build.sh`,
//! found through KUBESEED_TOOLCHAIN or the build script's cache; fails, not
//! skips, without it).
//!
//! The state directory is what `bootstrap seed` leaves: a cluster.json and an
//! admin.conf in kubeseed's own layout, naming `https://localhost:PORT`. The
//! cluster's record is a real ConfigMap `kubeseed-system/kubeseed-cluster`.
//! A load balancer's VIP the apiserver's certificate does not name is played
//! by a TCP forwarder on 127.0.0.2 (as HAProxy in TCP mode would be), so the
//! name check fails against the real apiserver's real certificate.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use kubeseed_provision::cluster::{ClusterRecord, SeedRecord};
use kubeseed_provision::pki::state_dir::write_private_file;
use kubeseed_provision::pki::{Credentials, IssuedCert, KubeconfigSpec, render_kubeconfig};
use kubeseed_testenv::ControlPlane;

const NAMESPACE: &str = "kubeseed-system";
const CONFIG_MAP: &str = "kubeseed-cluster";

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit ok: {}\n--- stdout\n{}--- stderr\n{}",
            self.ok, self.stdout, self.stderr
        )
    }
}

async fn use_endpoint(state: &Path, extra: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .arg("use-endpoint")
        .arg("--state-dir")
        .arg(state)
        .args(extra)
        .env_remove("KUBESEED_STATE_DIR")
        .output()
        .await
        .unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The state directory's files, by name.
fn snapshot(state: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(state)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

async fn publish(client: &Client, record: &ClusterRecord) {
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), NAMESPACE);
    let map = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": NAMESPACE},
        "data": {
            "cluster.json": serde_json::to_string_pretty(record).unwrap(),
            "bundle-key": "test",
            "bundle-sha256": "0".repeat(64),
        },
    });
    maps.patch(
        CONFIG_MAP,
        &PatchParams::apply("use-endpoint-test").force(),
        &Patch::Apply(map),
    )
    .await
    .unwrap();
}

/// A TCP forwarder on `listen_ip` to `127.0.0.1:port`: a balancer's VIP.
async fn forwarder(listen_ip: &str, port: u16) -> u16 {
    let listener = TcpListener::bind((listen_ip, 0)).await.unwrap();
    let listening = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", port)).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    listening
}

fn state_dir(root: &Path) -> PathBuf {
    use std::os::unix::fs::DirBuilderExt as _;
    let dir = root.join("state");
    std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_endpoint_switches_only_to_an_endpoint_that_serves_the_api() {
    let cp = ControlPlane::start().await.unwrap();
    let port: u16 = cp.server_url().rsplit(':').next().unwrap().parse().unwrap();
    let client = cp.client();

    // ---- the workstation's state, as `bootstrap seed` leaves it ---------------
    let tmp = tempfile::tempdir().unwrap();
    let state = state_dir(tmp.path());
    let mut local = ClusterRecord::new(
        "kubernetes",
        SeedRecord {
            address: "127.0.0.1".into(),
            port: 22,
            user: "root".into(),
            node_name: "host1".into(),
            advertise_address: "127.0.0.1".parse().unwrap(),
        },
    );
    local.endpoint_port = port;
    write_private_file(
        &state.join("cluster.json"),
        &serde_json::to_vec_pretty(&local).unwrap(),
    )
    .unwrap();
    let old_server = format!("https://localhost:{port}");
    let admin = IssuedCert {
        cert_pem: cp.pki().admin.cert_pem.clone(),
        key_pem: cp.pki().admin.key_pem.clone(),
    };
    let admin_conf = render_kubeconfig(&KubeconfigSpec {
        cluster_name: "kubernetes",
        server: &old_server,
        ca_pem: &cp.pki().ca_cert_pem,
        user_name: "kubernetes-admin",
        credentials: Credentials::ClientCert(&admin),
    })
    .unwrap();
    write_private_file(&state.join("admin.conf"), admin_conf.as_bytes()).unwrap();

    // ---- the cluster's record ---------------------------------------------------
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": NAMESPACE}})).unwrap(),
        )
        .await
        .unwrap();

    // No balancer yet: refused, nothing changed.
    publish(&client, &local).await;
    let before = snapshot(&state);
    let run = use_endpoint(&state, &[]).await;
    assert!(!run.ok, "{run}");
    assert!(
        run.stderr.contains(
            "no ApiLoadBalancer has published a VIP yet: apply one; see docs/examples/load-balancer-pair.yaml"
        ),
        "{run}"
    );
    assert_eq!(snapshot(&state), before);

    // Another cluster's record (another id): refused, nothing changed.
    let mut other = ClusterRecord::new("kubernetes", local.seed.clone());
    other.endpoint_port = port;
    other.endpoint_vip = Some("127.0.0.1".parse().unwrap());
    publish(&client, &other).await;
    let run = use_endpoint(&state, &[]).await;
    assert!(!run.ok, "{run}");
    assert!(run.stderr.contains("wrong cluster"), "{run}");
    assert!(run.stderr.contains(&other.id), "{run}");
    assert_eq!(snapshot(&state), before);

    // A VIP the apiserver's certificate does not name (its SANs: 127.0.0.1,
    // localhost, 10.0.0.1, kubernetes…): a real TLS name mismatch through a
    // balancer on 127.0.0.2. Refused with what to do, nothing changed.
    let balancer_port = forwarder("127.0.0.2", port).await;
    let mut cluster = local.clone();
    cluster.endpoint_vip = Some("127.0.0.2".parse().unwrap());
    cluster.balancer_port = Some(balancer_port);
    publish(&client, &cluster).await;
    let run = use_endpoint(&state, &[]).await;
    assert!(!run.ok, "{run}");
    assert!(
        run.stderr.contains(
            "the apiservers' certificates do not name 127.0.0.2 yet: wait until every \
             ControlPlaneMember shows Provisioned=True (kubectl get controlplanemembers) and run \
             this again"
        ),
        "{run}"
    );
    assert!(
        run.stderr
            .contains(&format!("https://127.0.0.2:{balancer_port}")),
        "{run}"
    );
    assert_eq!(snapshot(&state), before);

    // Nothing listening at the endpoint: the URL and the cause, nothing changed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    cluster.endpoint_vip = Some("127.0.0.1".parse().unwrap());
    cluster.balancer_port = Some(closed);
    publish(&client, &cluster).await;
    let run = use_endpoint(&state, &[]).await;
    assert!(!run.ok, "{run}");
    assert!(
        run.stderr.contains(&format!(
            "https://127.0.0.1:{closed} does not serve the API"
        )),
        "{run}"
    );
    assert_eq!(snapshot(&state), before);

    // The VIP 127.0.0.1, which the certificate names, at the apiserver's port.
    let new_server = format!("https://127.0.0.1:{port}");
    cluster.balancer_port = Some(port);
    publish(&client, &cluster).await;

    // A dry run says what would change and writes nothing.
    let run = use_endpoint(&state, &["--dry-run"]).await;
    assert!(run.ok, "{run}");
    assert!(
        run.stdout
            .contains(&format!("admin kubeconfig: {old_server} -> {new_server}")),
        "{run}"
    );
    assert!(run.stdout.contains("dry run"), "{run}");
    assert_eq!(snapshot(&state), before);

    // The switch.
    let run = use_endpoint(&state, &[]).await;
    assert!(run.ok, "{run}");
    assert!(
        run.stdout
            .contains(&format!("admin kubeconfig: {old_server} -> {new_server}")),
        "{run}"
    );
    assert!(
        run.stdout
            .contains(&state.join("admin.conf").display().to_string()),
        "{run}"
    );
    let after = std::fs::read_to_string(state.join("admin.conf")).unwrap();
    // Only the server changed, byte for byte.
    assert_eq!(after, admin_conf.replace(&old_server, &new_server));
    let recorded: ClusterRecord =
        serde_json::from_slice(&std::fs::read(state.join("cluster.json")).unwrap()).unwrap();
    let mut want = local.clone();
    want.endpoint_vip = Some("127.0.0.1".parse().unwrap());
    want.balancer_port = Some(port);
    assert_eq!(recorded, want);
    {
        use std::os::unix::fs::PermissionsExt as _;
        for name in ["admin.conf", "cluster.json"] {
            let mode = std::fs::metadata(state.join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
    let names: BTreeSet<String> = snapshot(&state).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        BTreeSet::from(["admin.conf".to_owned(), "cluster.json".to_owned()]),
        "no temporary file is left behind"
    );

    // The kubeconfig works at its new server.
    let mut kubectl = cp.kubectl();
    kubectl.env("KUBECONFIG", state.join("admin.conf")).args([
        "get",
        "configmap",
        "-n",
        NAMESPACE,
        CONFIG_MAP,
        "-o",
        "name",
    ]);
    let kubectl = tokio::process::Command::from(kubectl)
        .output()
        .await
        .unwrap();
    assert!(
        kubectl.status.success(),
        "{}",
        String::from_utf8_lossy(&kubectl.stderr)
    );

    // Twice is once.
    let switched = snapshot(&state);
    let run = use_endpoint(&state, &[]).await;
    assert!(run.ok, "{run}");
    assert!(
        run.stdout
            .contains(&format!("already points at {new_server}")),
        "{run}"
    );
    assert_eq!(snapshot(&state), switched);
}
