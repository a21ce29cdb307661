//! Taking a master off its host, once it is out of etcd and drained: its
//! units stopped and disabled, its containers killed, kube-proxy's rules
//! removed, its etcd data kept as a dated backup beside the data directory
//! (never deleted: it is the last copy if something went wrong), containerd
//! stopped, and everything kubeseed wrote removed: configuration,
//! certificates, units, the staged bundle and the links to it. The host is
//! then as a fresh one to preflight, so it can join again (or another
//! cluster).
//!
//! Every step checks first, so a leave killed half-way is finished by
//! running it again.

use std::time::Duration;

use crate::render::paths;
use crate::ssh::shell::quote;
use crate::tasks::{Shell, Task};

use super::control_plane::CLUSTER_ID_FILE;

/// The units a master runs, in the order they are stopped.
pub const MASTER_UNITS: [&str; 6] = [
    "kubelet.service",
    "kube-proxy.service",
    "kube-scheduler.service",
    "kube-controller-manager.service",
    "kube-apiserver.service",
    "etcd.service",
];

/// What a master leaves behind on its host, removed by [`teardown_master`].
const MASTER_PATHS: [&str; 8] = [
    "/etc/kubernetes",
    "/var/lib/kubelet",
    "/var/lib/kube-proxy",
    paths::CNI_CONFLIST,
    CLUSTER_ID_FILE,
    "/var/lib/kubeseed",
    "/etc/containerd",
    "/etc/systemd/system/containerd.service",
];

/// The units a worker runs, in the order they are stopped.
pub const WORKER_UNITS: [&str; 2] = ["kubelet.service", "kube-proxy.service"];

/// What a worker leaves behind on its host, removed by [`teardown_worker`]:
/// a master's files but etcd's, and host-local's address leases.
const WORKER_PATHS: [&str; 9] = [
    "/etc/kubernetes",
    "/var/lib/kubelet",
    "/var/lib/kube-proxy",
    "/var/lib/cni",
    paths::CNI_CONFLIST,
    CLUSTER_ID_FILE,
    "/var/lib/kubeseed",
    "/etc/containerd",
    "/etc/systemd/system/containerd.service",
];

/// The units a standalone etcd member runs.
pub const ETCD_UNITS: [&str; 1] = ["etcd.service"];

/// What a standalone etcd member leaves behind, removed by [`teardown_etcd`].
const ETCD_PATHS: [&str; 3] = ["/etc/kubernetes", CLUSTER_ID_FILE, "/var/lib/kubeseed"];

/// The tasks, in order. `etcd_data_dir` is the member's data directory
/// (moved aside, not deleted); `backup_suffix` tells backups apart (a UTC
/// timestamp such as `20261202T101500Z`).
pub fn teardown_master(etcd_data_dir: &str, backup_suffix: &str) -> Vec<Box<dyn Task>> {
    let mut tasks = vec![stop_units("master", &MASTER_UNITS)];
    tasks.extend(stop_node());
    tasks.extend(super::teardown_pod_routes());
    tasks.extend(clean_up(
        "master",
        &MASTER_UNITS,
        &MASTER_PATHS,
        Some((etcd_data_dir, backup_suffix)),
    ));
    tasks
}

/// A worker's host, once its Node is drained: the units stopped, the Pods'
/// containers killed, kube-proxy's rules and the Pod bridge removed,
/// kubeseed's files removed (nothing of a worker is worth a backup).
pub fn teardown_worker() -> Vec<Box<dyn Task>> {
    let mut tasks = vec![stop_units("worker", &WORKER_UNITS)];
    tasks.extend(stop_node());
    tasks.push(remove_pod_bridge());
    tasks.extend(super::teardown_pod_routes());
    tasks.extend(clean_up("worker", &WORKER_UNITS, &WORKER_PATHS, None));
    tasks
}

/// The CNI bridge the Pods were attached to (its address is the node's Pod
/// gateway; a host joining another cluster would get another range).
fn remove_pod_bridge() -> Box<dyn Task> {
    let bridge = crate::render::CNI_BRIDGE;
    Box::new(
        Shell::new(
            "leave/pod-bridge",
            format!("remove the Pods' bridge {bridge}"),
            format!("ip link delete {bridge} 2>/dev/null; true"),
        )
        .unless(
            format!("! ip link show {bridge} >/dev/null 2>&1"),
            "bridge present",
        ),
    )
}

/// A standalone etcd member's host, once the member is out of etcd: the
/// unit stopped, the data kept as a backup, kubeseed's files removed.
pub fn teardown_etcd(etcd_data_dir: &str, backup_suffix: &str) -> Vec<Box<dyn Task>> {
    let mut tasks = vec![stop_units("etcd member", &ETCD_UNITS)];
    tasks.extend(clean_up(
        "etcd member",
        &ETCD_UNITS,
        &ETCD_PATHS,
        Some((etcd_data_dir, backup_suffix)),
    ));
    tasks
}

fn stop_units(role: &str, units: &[&str]) -> Box<dyn Task> {
    let units = units.join(" ");
    Box::new(
        Shell::new(
            "leave/stop-units",
            format!("stop and disable the {role}'s units"),
            format!("systemctl disable --now {units} 2>/dev/null; systemctl reset-failed {units} 2>/dev/null; true"),
        )
        .unless(
            format!("! systemctl is-active --quiet {units} && ! systemctl is-enabled --quiet {units} 2>/dev/null"),
            "units still enabled or running",
        )
        .timeout(Duration::from_secs(120)),
    )
}

/// The node's runtime: the Pods' containers, containerd, kube-proxy's rules.
fn stop_node() -> Vec<Box<dyn Task>> {
    let ctr = format!(
        "{}/ctr --address {} -n k8s.io",
        paths::BIN_DIR,
        paths::CONTAINERD_SOCKET
    );
    vec![
        // containerd's shims outlive the kubelet: the Pods' containers keep
        // running (and holding ports) until they are killed.
        Box::new(
            Shell::new(
                "leave/containers",
                "kill the Pods' containers",
                format!(
                    "for t in $({ctr} task ls -q 2>/dev/null); do {ctr} task kill -s SIGKILL \"$t\" 2>/dev/null; done; \
                     sleep 1; for t in $({ctr} task ls -q 2>/dev/null); do {ctr} task delete -f \"$t\" 2>/dev/null; done; \
                     for c in $({ctr} container ls -q 2>/dev/null); do {ctr} container delete \"$c\" 2>/dev/null; done; true"
                ),
            )
            .unless(
                format!("[ ! -S {} ] || [ -z \"$({ctr} task ls -q 2>/dev/null)\" ]", paths::CONTAINERD_SOCKET),
                "containers running",
            )
            .timeout(Duration::from_secs(120)),
        ),
        Box::new(
            Shell::new(
                "leave/containerd",
                "stop and disable containerd",
                "systemctl disable --now containerd.service 2>/dev/null; true",
            )
            .unless(
                "! systemctl is-active --quiet containerd.service && ! systemctl is-enabled --quiet containerd.service 2>/dev/null",
                "containerd enabled or running",
            )
            .timeout(Duration::from_secs(120)),
        ),
        Box::new(
            Shell::new(
                "leave/kube-proxy-rules",
                "remove kube-proxy's iptables rules",
                format!("{}/kube-proxy --cleanup >/dev/null 2>&1 || true", paths::BIN_DIR),
            )
            .unless(
                "! iptables-save 2>/dev/null | grep -q KUBE-",
                "kube-proxy rules present",
            ),
        ),
    ]
}

/// The etcd data (`(data directory, backup suffix)`) moved aside, and
/// kubeseed's files, units and links removed.
fn clean_up(
    role: &str,
    units: &[&str],
    removable: &[&str],
    etcd_data: Option<(&str, &str)>,
) -> Vec<Box<dyn Task>> {
    let unit_files: Vec<String> = units
        .iter()
        .map(|u| quote(&paths::unit_path(u.trim_end_matches(".service"))))
        .collect();
    let removable: Vec<String> = removable.iter().map(|p| quote(p)).collect();
    // The programs were installed as links into the staged bundle.
    let links = format!(
        "find {} {} -maxdepth 1 -lname '{}/*' 2>/dev/null",
        paths::BIN_DIR,
        paths::CNI_BIN_DIR,
        super::artifacts::BUNDLE_ROOT
    );
    let mut tasks: Vec<Box<dyn Task>> = Vec::new();
    if let Some((etcd_data_dir, backup_suffix)) = etcd_data {
        let data = quote(etcd_data_dir);
        let backup = quote(&format!("{etcd_data_dir}.kubeseed-removed-{backup_suffix}"));
        tasks.push(Box::new(
            Shell::new(
                "leave/etcd-data",
                format!("keep etcd's data as a backup ({etcd_data_dir} moved aside)"),
                format!("mv {data} {backup}"),
            )
            .unless(format!("[ ! -e {data} ]"), "data directory present"),
        ));
    }
    tasks.push(
        Box::new(
            Shell::new(
                "leave/files",
                format!("remove the {role}'s configuration, certificates and units"),
                format!(
                    "{links} -delete; rm -rf {paths} {units} && systemctl daemon-reload",
                    paths = removable.join(" "),
                    units = unit_files.join(" ")
                ),
            )
            .unless(
                format!(
                    "for p in {paths} {units}; do [ ! -e \"$p\" ] || exit 1; done; [ -z \"$({links} -print)\" ]",
                    paths = removable.join(" "),
                    units = unit_files.join(" ")
                ),
                "files present",
            ),
        ),
    );
    tasks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_data_is_moved_aside_never_removed() {
        let tasks = teardown_master("/var/lib/etcd", "20261202T101500Z");
        let ids: Vec<&str> = tasks.iter().map(|t| t.id()).collect();
        assert_eq!(
            ids,
            [
                "leave/stop-units",
                "leave/containers",
                "leave/containerd",
                "leave/kube-proxy-rules",
                "pod-routes/stop",
                "pod-routes/routes",
                "pod-routes/files",
                "leave/etcd-data",
                "leave/files"
            ]
        );
        let all = format!("{tasks:?}");
        assert!(
            all.contains("mv '/var/lib/etcd' '/var/lib/etcd.kubeseed-removed-20261202T101500Z'"),
            "{all}"
        );
        assert!(!all.contains("rm -rf '/var/lib/etcd'"));
    }
}
