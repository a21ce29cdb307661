//! The seed benchmark (printed, never asserted on time): `bootstrap seed`
//! next to what a user would otherwise run, on identical lab hosts in the
//! same run.
//!
//! - host1: `kubeadm init`, with its control-plane images built locally from
//!   the same binaries (`e2e/toolchain/kubeadm-images.sh`) and imported
//!   beforehand, as DESIGN.md's recipe does; the addons are skipped.
//! - host2: `bootstrap seed`, nothing on the host yet (the binaries travel).
//! - host3: `bootstrap seed` with the bundle already on the host; then the
//!   same units started by hand, in order, with the same files: the floor
//!   kubeseed's own overhead is measured against.
//!
//! kubeadm init ends when its control plane answers and the Node is
//! registered; the seed's figure for the same moment ("to registered") is
//! compared with it, the rest (CNI, kube-proxy, the operator) reported on
//! its own. A table goes to stderr and JSON to `target/bench/seed.json`.
//!
//! Needs what `seed.rs` needs, and `KUBEADM_IMAGES` (printed by
//! `bash e2e/toolchain/kubeadm-images.sh`; `e2e/test.sh` exports it).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step must stop it

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Seeder, bundle_dir, eventually, lab_for};
use kubeseed_e2e::Lab;
use kubeseed_provision::cluster::{CgroupDriver, CgroupVersion, HostProfile};
use kubeseed_provision::render::ContainerdInput;
use kubeseed_testenv::Toolchain;
use serde::Serialize;

const NAME: &str = "seedbch";
const SUBNET: &str = "10.213.11.0/24";

#[derive(Debug, Serialize)]
struct Figures {
    kubeadm_init_seconds: f64,
    seed_cold_seconds: f64,
    seed_cold_to_registered_seconds: f64,
    seed_warm_seconds: f64,
    seed_warm_to_registered_seconds: f64,
    by_hand_to_registered_seconds: f64,
    by_hand_to_ready_seconds: f64,
    ratio_seed_cold_to_kubeadm: f64,
    ratio_seed_warm_to_kubeadm: f64,
    ratio_seed_warm_to_by_hand: f64,
    slowest_tasks_cold: Vec<(String, f64)>,
    tasks_cold: Vec<(String, f64)>,
}

#[test]
fn seed_benchmark() {
    let bundle = bundle_dir();
    let images = kubeadm_images();
    let lab = lab_for(NAME, SUBNET, 3);
    let work = tempfile::tempdir().unwrap();
    let seeder = Seeder::new(&lab, &bundle, work.path());

    let kubeadm = kubeadm_init(&lab, "host1", &bundle, &images);

    let state = work.path().join("cold");
    let report = work.path().join("cold.json");
    let cold = seeder.seed(
        &lab,
        "host2",
        &state,
        &["--report", report.to_str().unwrap()],
    );
    assert!(cold.ok, "cold seed failed:\n{}", cold.text);
    let tasks_cold = task_seconds(&report);
    let cold_registered = to_registered(cold.seconds, &tasks_cold);
    let mut slow = tasks_cold.clone();
    slow.sort_by(|a, b| b.1.total_cmp(&a.1));

    stage_bundle(&lab, "host3", &bundle);
    let state = work.path().join("warm");
    let report = work.path().join("warm.json");
    let warm = seeder.seed(
        &lab,
        "host3",
        &state,
        &["--report", report.to_str().unwrap()],
    );
    assert!(warm.ok, "warm seed failed:\n{}", warm.text);
    let warm_registered = to_registered(warm.seconds, &task_seconds(&report));

    let (by_hand_registered, by_hand_ready) = by_hand(&lab, "host3");

    let f = Figures {
        kubeadm_init_seconds: kubeadm,
        seed_cold_seconds: cold.seconds,
        seed_cold_to_registered_seconds: cold_registered,
        seed_warm_seconds: warm.seconds,
        seed_warm_to_registered_seconds: warm_registered,
        by_hand_to_registered_seconds: by_hand_registered,
        by_hand_to_ready_seconds: by_hand_ready,
        ratio_seed_cold_to_kubeadm: cold_registered / kubeadm,
        ratio_seed_warm_to_kubeadm: warm_registered / kubeadm,
        ratio_seed_warm_to_by_hand: warm_registered / by_hand_registered,
        slowest_tasks_cold: slow.into_iter().take(6).collect(),
        tasks_cold,
    };
    print_figures(&f);
    let down = lab.down().unwrap();
    assert!(down.left.is_empty(), "down left: {:?}", down.left);
}

fn kubeadm_images() -> PathBuf {
    let dir = std::env::var_os("KUBEADM_IMAGES")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "KUBEADM_IMAGES is not set: build them with `bash e2e/toolchain/kubeadm-images.sh` \
                 and export the KUBEADM_IMAGES=... line it prints (e2e/bench.sh does)"
            )
        });
    assert!(
        dir.join("images.txt").is_file(),
        "{} has no images.txt",
        dir.display()
    );
    dir
}

/// `(task id, seconds)` of a `--report` file.
fn task_seconds(report: &Path) -> Vec<(String, f64)> {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    doc["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["seconds"].as_f64().unwrap(),
            )
        })
        .collect()
}

/// The seed's time to the moment kubeadm init ends at: everything before
/// the tasks that come after the Node registered.
fn to_registered(total: f64, tasks: &[(String, f64)]) -> f64 {
    let after: f64 = tasks
        .iter()
        .skip_while(|(id, _)| id != "kubelet/registered")
        .skip(1)
        .map(|(_, s)| s)
        .sum();
    total - after
}

/// Runs `script` in `host` over SSH, feeding `stdin`; panics on failure.
fn ssh(lab: &Lab, host: &str, script: &str, stdin: Option<&mut dyn std::io::Read>) -> String {
    let mut c = lab.ssh_command(host).unwrap();
    c.arg(script).stdout(Stdio::piped()).stderr(Stdio::piped());
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = c.spawn().unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        std::io::copy(input, &mut pipe).unwrap();
        drop(pipe);
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script} on {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copies local files into `dir` on the host (a tar stream over SSH).
fn copy_in(lab: &Lab, host: &str, from: &Path, names: &[&str], dir: &str) {
    let mut tar = std::process::Command::new("tar")
        .arg("-C")
        .arg(from)
        .arg("-cf")
        .arg("-")
        .args(names)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stream = tar.stdout.take().unwrap();
    ssh(
        lab,
        host,
        &format!("mkdir -p {dir} && tar -C {dir} -xf -"),
        Some(&mut stream),
    );
    assert!(tar.wait().unwrap().success());
}

fn write_file(lab: &Lab, host: &str, path: &str, contents: &str) {
    let mut bytes = contents.as_bytes();
    ssh(
        lab,
        host,
        &format!("mkdir -p \"$(dirname {path})\" && cat > {path}"),
        Some(&mut bytes),
    );
}

/// The bundle on the host where a seed stages it.
fn stage_bundle(lab: &Lab, host: &str, bundle: &Path) {
    let key = bundle.file_name().unwrap().to_str().unwrap();
    copy_in(
        lab,
        host,
        bundle,
        &["."],
        &format!("/var/lib/kubeseed/bundle/{key}"),
    );
}

/// Prepares `host` as kubeadm's install guide does (runtime, kubelet and
/// kubeadm installed, images present), then times `kubeadm init`.
fn kubeadm_init(lab: &Lab, host: &str, bundle: &Path, images: &Path) -> f64 {
    let toolchain = Toolchain::locate().unwrap();
    let address = lab.host(host).unwrap().address;
    copy_in(
        lab,
        host,
        &bundle.join("bin"),
        &[
            "kubelet",
            "kubectl",
            "containerd",
            "containerd-shim-runc-v2",
            "ctr",
            "runc",
        ],
        "/usr/local/bin",
    );
    copy_in(
        lab,
        host,
        &bundle.join("cni"),
        &["bridge", "host-local", "loopback", "portmap"],
        "/opt/cni/bin",
    );
    copy_in(
        lab,
        host,
        toolchain.bin_dir(),
        &["kubeadm"],
        "/usr/local/bin",
    );
    copy_in(lab, host, images, &["."], "/root/kubeadm-images");

    // The lab host as preflight sees it: cgroup v1, read-only kernel
    // tunables, no CAP_SYS_RESOURCE.
    let profile = HostProfile {
        cgroup_version: CgroupVersion::V1,
        cgroup_driver: CgroupDriver::Cgroupfs,
        kernel_tunables_writable: false,
        oom_score_adj_allowed: false,
    };
    let containerd = ContainerdInput {
        host: &profile,
        sandbox_image: "registry.k8s.io/pause:3.10.1".into(),
    }
    .render()
    .unwrap();
    for (path, file) in containerd.iter() {
        write_file(lab, host, &path.display().to_string(), &file.contents);
    }
    write_file(
        lab,
        host,
        "/etc/systemd/system/kubelet.service",
        "[Unit]\nDescription=kubelet\nAfter=containerd.service\n[Service]\nExecStart=/usr/local/bin/kubelet\nRestart=always\nRestartSec=1\n[Install]\nWantedBy=multi-user.target\n",
    );
    // kubeadm's drop-in, as its packages install it.
    write_file(
        lab,
        host,
        "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        "[Service]\n\
         Environment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"\n\
         Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"\n\
         EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env\n\
         ExecStart=\n\
         ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS\n",
    );
    write_file(
        lab,
        host,
        "/root/kubeadm.yaml",
        &format!(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n\
             localAPIEndpoint: {{advertiseAddress: {address}, bindPort: 6443}}\n\
             nodeRegistration:\n  name: {host}\n  criSocket: unix:///run/containerd/containerd.sock\n\
             \x20 kubeletExtraArgs:\n  - {{name: node-ip, value: {address}}}\n\
             ---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: {}\n\
             networking: {{podSubnet: 10.244.0.0/16, serviceSubnet: 10.96.0.0/12}}\n\
             ---\napiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
             cgroupDriver: cgroupfs\nfailCgroupV1: false\nprotectKernelDefaults: true\n",
            kubeseed_testenv::toolchain::K8S_VERSION
        ),
    );
    ssh(
        lab,
        host,
        "systemctl disable --now containerd >/dev/null 2>&1; systemctl daemon-reload && systemctl enable --now containerd \
         && for i in $(seq 1 50); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done \
         && while read archive name; do ctr -n k8s.io images import /root/kubeadm-images/$archive >/dev/null; done < /root/kubeadm-images/images.txt \
         && systemctl enable kubelet >/dev/null 2>&1",
        None,
    );
    let started = Instant::now();
    ssh(
        lab,
        host,
        "kubeadm init --config /root/kubeadm.yaml --skip-phases=preflight,addon/coredns,addon/kube-proxy >/root/kubeadm-init.log 2>&1 \
         || { tail -30 /root/kubeadm-init.log >&2; exit 1; }",
        None,
    );
    let seconds = started.elapsed().as_secs_f64();
    let nodes = ssh(
        lab,
        host,
        "kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o name",
        None,
    );
    assert!(
        nodes.contains(host),
        "kubeadm's Node is not registered: {nodes}"
    );
    seconds
}

/// On a seeded host: stops every unit, forgets the cluster (etcd's data;
/// the kubelet finds its old Pods gone from the API and removes them), then starts the same units with the same files in
/// order, waiting for each as a person following a runbook would. Returns
/// (to registered, to Ready).
fn by_hand(lab: &Lab, host: &str) -> (f64, f64) {
    ssh(
        lab,
        host,
        "systemctl stop kubelet kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd \
         && rm -rf /var/lib/etcd/member && rm -f /etc/cni/net.d/10-kubeseed.conflist",
        None,
    );
    let kubectl = "kubectl --kubeconfig /etc/kubernetes/super-admin.conf";
    let etcd_health = "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \
                       --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key endpoint health";
    let wait = |probe: &str| format!("until {probe} >/dev/null 2>&1; do sleep 0.2; done");
    let started = Instant::now();
    ssh(
        lab,
        host,
        &format!(
            "systemctl start etcd && {} && systemctl start kube-apiserver && {} \
             && systemctl start kube-controller-manager kube-scheduler && systemctl start kubelet && {}",
            wait(etcd_health),
            wait(&format!("{kubectl} get --raw /readyz")),
            wait(&format!("{kubectl} get node {host}"))
        ),
        None,
    );
    let registered = started.elapsed().as_secs_f64();
    // The CNI configuration needs the Node's pod range, as the seed's does.
    let cidr_probe = format!("{kubectl} get node {host} -o jsonpath={{.spec.podCIDR}} | grep -q .");
    ssh(lab, host, &wait(&cidr_probe), None);
    let cidr = ssh(
        lab,
        host,
        &format!("{kubectl} get node {host} -o jsonpath={{.spec.podCIDR}}"),
        None,
    );
    let conflist = kubeseed_provision::render::CniInput {
        pod_cidr: kubeseed_provision::cluster::Cidr::parse(cidr.trim()).unwrap(),
    }
    .render()
    .unwrap();
    for (path, file) in conflist.iter() {
        write_file(lab, host, &path.display().to_string(), &file.contents);
    }
    ssh(lab, host, "systemctl start kube-proxy", None);
    eventually("the Node Ready by hand", Duration::from_secs(180), || {
        ssh(
            lab,
            host,
            &format!("{kubectl} get node {host} -o jsonpath='{{.status.conditions[?(@.type==\"Ready\")].status}}'"),
            None,
        )
        .trim()
            == "True"
    });
    (registered, started.elapsed().as_secs_f64())
}

fn print_figures(f: &Figures) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(
        e,
        "\nseed benchmark (seconds; identical lab hosts, same run)"
    );
    let _ = writeln!(e, "| {:<46} | {:>8} |", "measure", "seconds");
    let _ = writeln!(e, "|{:-<48}|{:->10}|", "", "");
    for (name, value) in [
        (
            "kubeadm init (images local, addons skipped)",
            f.kubeadm_init_seconds,
        ),
        (
            "seed, binaries travel: to Node registered",
            f.seed_cold_to_registered_seconds,
        ),
        (
            "seed, binaries travel: to operator Ready",
            f.seed_cold_seconds,
        ),
        (
            "seed, binaries on host: to Node registered",
            f.seed_warm_to_registered_seconds,
        ),
        (
            "seed, binaries on host: to operator Ready",
            f.seed_warm_seconds,
        ),
        (
            "same units by hand: to Node registered",
            f.by_hand_to_registered_seconds,
        ),
        (
            "same units by hand: to Node Ready",
            f.by_hand_to_ready_seconds,
        ),
    ] {
        let _ = writeln!(e, "| {name:<46} | {value:>8.1} |");
    }
    let _ = writeln!(
        e,
        "ratio seed (cold) / kubeadm init: {:.2} (target <= 0.5)",
        f.ratio_seed_cold_to_kubeadm
    );
    let _ = writeln!(
        e,
        "ratio seed (warm) / kubeadm init: {:.2}",
        f.ratio_seed_warm_to_kubeadm
    );
    let _ = writeln!(
        e,
        "ratio seed (warm) / by hand:      {:.2} (kubeseed's own overhead)",
        f.ratio_seed_warm_to_by_hand
    );
    let _ = writeln!(e, "slowest tasks (cold): {:?}", f.slowest_tasks_cold);
    let json = serde_json::to_string_pretty(f).unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("seed.json"), &json).unwrap();
    let _ = writeln!(e, "SEED_FIGURES {}", serde_json::to_string(f).unwrap());
}
