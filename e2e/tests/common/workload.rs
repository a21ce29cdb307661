//! A user's workload on the lab's workers: the locally built netcheck image,
//! its Deployment and Service (e2e/images/netcheck/manifests.yaml), and the
//! checks that pods reach each other, the master and the Service by name.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use kubeseed_e2e::Lab;

use super::cluster::{apply, eventually_or_dump, exists};
use super::{kubectl, kubectl_ok};

/// The netcheck image (built from e2e/images/netcheck, cached): its archive
/// and name.
pub fn netcheck_image() -> (PathBuf, String) {
    let out = Command::new("bash")
        .arg("images/netcheck/build.sh")
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "netcheck image build failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("KUBESEED_NETCHECK_IMAGE="))
        .expect("build.sh printed KUBESEED_NETCHECK_IMAGE=");
    let (path, name) = line.split_once(' ').unwrap();
    (PathBuf::from(path), name.to_owned())
}

/// Imports an OCI archive into `host`'s containerd (what a registry would
/// do for a user: nothing here can pull).
pub fn import_image(lab: &Lab, host: &str, archive: &Path) {
    let file = std::fs::File::open(archive).unwrap();
    let mut c = lab.ssh_command(host).unwrap();
    c.arg(
        "ctr --address /run/containerd/containerd.sock -n k8s.io images import --all-platforms -",
    )
    .stdin(file);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "import into {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Deployment (4 replicas over the workers), its Service and the Pod
/// pinned to host1, for `image`.
pub fn netcheck_manifests(image: &str) -> String {
    include_str!("../../images/netcheck/manifests.yaml").replace("@IMAGE@", image)
}

/// Imports `image` (what [`netcheck_image`] returned) into `nodes`,
/// applies the manifests and waits until the Deployment's pods run on every
/// one of `workers` and the master's Pod runs.
pub fn deploy_netcheck(
    lab: &Lab,
    state: &Path,
    (archive, name): &(PathBuf, String),
    nodes: &[&str],
    workers: &[&str],
) {
    for host in nodes {
        import_image(lab, host, archive);
    }
    apply(state, &netcheck_manifests(name));
    eventually_or_dump(
        lab,
        state,
        "netcheck pods Running on the workers and the master",
        Duration::from_secs(300),
        || {
            let p = pods(state, "app=netcheck");
            p.len() == 4
                && workers.iter().all(|w| p.iter().any(|(_, n, _)| n == w))
                && pods(state, "app=netcheck-master").len() == 1
        },
    );
}

/// GET through the API server's proxy to `pod`'s port 8080.
pub fn pod_get(state: &Path, pod: &str, path: &str) -> Result<String, String> {
    let out = kubectl(state)
        .args([
            "get",
            "--raw",
            &format!("/api/v1/namespaces/default/pods/{pod}:8080/proxy{path}"),
        ])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `(name, node, podIP)` of the Running pods matching `selector`.
pub fn pods(state: &Path, selector: &str) -> Vec<(String, String, String)> {
    let out = kubectl_ok(
        state,
        &[
            "get",
            "pods",
            "-l",
            selector,
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName} {.status.podIP}{\"\\n\"}{end}",
        ],
    );
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 3).then(|| (f[0].to_owned(), f[1].to_owned(), f[2].to_owned()))
        })
        .collect()
}

/// A netcheck pod on `node`: `(name, podIP)`.
pub fn netcheck_on(state: &Path, node: &str) -> (String, String) {
    pods(state, "app=netcheck")
        .into_iter()
        .find(|(_, n, _)| n == node)
        .map(|(name, _, ip)| (name, ip))
        .unwrap_or_else(|| panic!("no Running netcheck pod on {node}"))
}

/// Asks `pod` for `path` until the answer contains `want` (30 tries a
/// second apart: routes and DNS settle after a node comes back).
pub fn pod_reaches(state: &Path, pod: &str, what: &str, path: &str, want: &str) {
    let mut last = String::new();
    let reached = (0..30).any(|_| {
        match pod_get(state, pod, path) {
            Ok(body) if body.contains(want) => return true,
            Ok(body) => last = body,
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_secs(1));
        false
    });
    assert!(reached, "{pod} → {what} ({path}): {last}");
    eprintln!("{pod} reached {what}");
}

/// The workload serves across nodes: a pod on `from` reaches a pod on `to`
/// and the Service by its DNS name.
pub fn serves_across(state: &Path, from: &str, to: &str) {
    let (a, _) = netcheck_on(state, from);
    let (_, b_ip) = netcheck_on(state, to);
    pod_reaches(
        state,
        &a,
        &format!("a pod on {to}"),
        &format!("/fetch?url=http://{b_ip}:8080/"),
        to,
    );
    pod_reaches(
        state,
        &a,
        "the Service by name",
        "/fetch?url=http://netcheck.default.svc.cluster.local:8080/",
        "podIP",
    );
}

/// A worker whose `WorkerNode` was deleted leaves: the object and its Node
/// go, its services stop, its Kubernetes files and pod bridge are removed,
/// and the Deployment's four pods all run on `remaining`.
pub fn worker_left(lab: &Lab, state: &Path, host: &str, remaining: &str) {
    eventually_or_dump(
        lab,
        state,
        &format!("{host}'s WorkerNode and Node gone"),
        Duration::from_secs(400),
        || !exists(state, &format!("workernode/{host}")) && !exists(state, &format!("node/{host}")),
    );
    let left = lab
        .exec_ok(
            host,
            "systemctl is-active kubelet kube-proxy containerd 2>/dev/null; \
             ls -d /etc/kubernetes /var/lib/kubelet /var/lib/kubeseed 2>/dev/null; ip link show cni0 2>/dev/null; true",
        )
        .unwrap();
    assert!(
        left.lines().all(|l| l != "active"),
        "services still running on {host}: {left}"
    );
    assert!(!left.contains("/etc/kubernetes"), "{left}");
    assert!(!left.contains("cni0"), "{left}");
    eventually_or_dump(
        lab,
        state,
        &format!("netcheck all on {remaining}"),
        Duration::from_secs(300),
        || {
            let p = pods(state, "app=netcheck");
            p.len() == 4 && p.iter().all(|(_, n, _)| n == remaining)
        },
    );
}
