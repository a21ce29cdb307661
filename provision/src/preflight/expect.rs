//! What the caller expects of a host: its role's ports and minimums, the
//! cluster it should belong to (if any), the nodes it must not duplicate.

use std::net::IpAddr;
use std::time::Duration;

use crate::cluster::{ETCD_CLIENT_PORT, ETCD_PEER_PORT};

/// kube-apiserver's secure port.
pub const APISERVER_PORT: u16 = 6443;
/// The kubelet's API.
pub const KUBELET_PORT: u16 = 10250;
/// kube-controller-manager's secure port.
pub const CONTROLLER_MANAGER_PORT: u16 = 10257;
/// kube-scheduler's secure port.
pub const SCHEDULER_PORT: u16 = 10259;

/// The ports a master needs free (or held by this cluster's own components).
pub const CONTROL_PLANE_PORTS: [u16; 6] = [
    APISERVER_PORT,
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    KUBELET_PORT,
    CONTROLLER_MANAGER_PORT,
    SCHEDULER_PORT,
];

/// The component that listens on `port` in a kubeseed cluster, as
/// `/proc/PID/comm` names it (truncated to 15 characters by the kernel).
pub fn component_for_port(port: u16) -> Option<&'static str> {
    match port {
        APISERVER_PORT => Some("kube-apiserver"),
        ETCD_CLIENT_PORT | ETCD_PEER_PORT => Some("etcd"),
        KUBELET_PORT => Some("kubelet"),
        CONTROLLER_MANAGER_PORT => Some("kube-controller-manager"),
        SCHEDULER_PORT => Some("kube-scheduler"),
        _ => None,
    }
}

/// Whether a process named `comm` (at most 15 characters) is `component`.
pub(crate) fn is_component(comm: &str, component: &str) -> bool {
    let truncated: String = component.chars().take(15).collect();
    comm == component || comm == truncated
}

/// What identifies a cluster on its hosts, from the workstation's state
/// directory or the cluster's Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterIdentity {
    /// The id kubeseed writes to /var/lib/kubeseed/cluster-id.
    pub cluster_id: String,
    /// [`super::certificate_fingerprint`] of the cluster CA.
    pub ca_fingerprint: Option<String>,
    /// [`super::certificate_fingerprint`] of the etcd CA.
    pub etcd_ca_fingerprint: Option<String>,
}

/// A node the host must not duplicate (hostname, machine-id, MACs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerIdentity {
    /// How messages name it (its member name or address).
    pub name: String,
    /// Its hostname (becomes its Node name).
    pub hostname: Option<String>,
    /// Its /etc/machine-id.
    pub machine_id: Option<String>,
    /// Its product_uuid.
    pub product_uuid: Option<String>,
    /// Its MAC addresses.
    pub macs: Vec<String>,
}

/// What the caller expects of the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectations {
    /// What the role is called in messages ("master", "worker", "etcd member").
    pub role: String,
    /// Ports that must be free, or held by this cluster's own component.
    pub ports: Vec<u16>,
    /// The cluster the host is joining (or resuming), when it exists
    /// already; `None` for the seed of a new cluster.
    pub cluster: Option<ClusterIdentity>,
    /// Whether cgroup v1 is acceptable (a Warn: kubeseed then sets
    /// `failCgroupV1: false`); otherwise it fails.
    pub allow_cgroup_v1: bool,
    /// Fewer CPUs is a Warn (kubeadm wants 2 on masters).
    pub min_cpus: u32,
    /// Less memory is a Warn (kubeadm wants 1700 MiB on masters; 0: no check).
    pub min_memory_mib: u64,
    /// The address the node's components will use; it must be on one of
    /// the host's links.
    pub advertise_address: Option<IpAddr>,
    /// The architecture of kubeseed's binaries (Go's name: amd64, arm64);
    /// `None`: amd64 and arm64 pass, others warn.
    pub arch: Option<String>,
    /// Nodes already in the cluster: the host must not share their
    /// hostname or machine-id (Fail) or MACs and product_uuid (Warn).
    pub peers: Vec<PeerIdentity>,
    /// A clock skew above this warns.
    pub clock_warn: Duration,
    /// A clock skew above this fails (certificates would not be valid yet,
    /// or already expired, on one side).
    pub clock_fail: Duration,
}

impl Expectations {
    /// A master: the six control-plane ports, 2 CPUs and 1700 MiB.
    pub fn control_plane() -> Self {
        Expectations {
            role: "master".into(),
            ports: CONTROL_PLANE_PORTS.to_vec(),
            cluster: None,
            allow_cgroup_v1: true,
            min_cpus: 2,
            min_memory_mib: 1700,
            advertise_address: None,
            arch: None,
            peers: Vec::new(),
            clock_warn: Duration::from_secs(2),
            clock_fail: Duration::from_secs(30),
        }
    }

    /// A master of the External topology: the control-plane ports but
    /// etcd's, which its own host does not serve.
    pub fn control_plane_without_etcd() -> Self {
        let mut expectations = Self::control_plane();
        expectations
            .ports
            .retain(|p| *p != ETCD_CLIENT_PORT && *p != ETCD_PEER_PORT);
        expectations
    }

    /// A worker: the kubelet's port, 1 CPU, no memory minimum.
    pub fn worker() -> Self {
        Expectations {
            role: "worker".into(),
            ports: vec![KUBELET_PORT],
            min_cpus: 1,
            min_memory_mib: 0,
            ..Self::control_plane()
        }
    }

    /// A separate etcd member: etcd's two ports.
    pub fn etcd() -> Self {
        Expectations {
            role: "etcd member".into(),
            ports: vec![ETCD_CLIENT_PORT, ETCD_PEER_PORT],
            min_cpus: 1,
            min_memory_mib: 0,
            ..Self::control_plane()
        }
    }

    /// The same, for a host of the cluster `identity`.
    pub fn in_cluster(mut self, identity: ClusterIdentity) -> Self {
        self.cluster = Some(identity);
        self
    }
}
