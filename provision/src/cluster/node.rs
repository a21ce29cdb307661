//! What the renderers need to know about one node besides the cluster:
//! facts observed on its host and the settings its object asks for.

use std::collections::BTreeMap;
use std::fmt;

/// The cgroup hierarchy a host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Legacy per-controller hierarchies; deprecated in Kubernetes 1.31, the
    /// kubelet refuses it unless told `failCgroupV1: false`.
    V1,
    /// The unified hierarchy.
    V2,
}

/// Which cgroup manager the kubelet and the container runtime use; they must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupDriver {
    /// systemd creates the cgroups (the default where systemd is init).
    Systemd,
    /// The runtime writes cgroupfs itself.
    Cgroupfs,
}

impl CgroupDriver {
    /// The name the kubelet and containerd use.
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupDriver::Systemd => "systemd",
            CgroupDriver::Cgroupfs => "cgroupfs",
        }
    }
}

/// What a host is like, as preflight observed it; renderers adapt to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostProfile {
    /// The host's cgroup hierarchy.
    pub cgroup_version: CgroupVersion,
    /// The cgroup driver to configure.
    pub cgroup_driver: CgroupDriver,
    /// Whether kernel sysctls the kubelet tunes (vm.overcommit_memory,
    /// kernel.panic...) are writable. Where they are not (a container host
    /// with a read-only /proc/sys), the kubelet must only check them
    /// (`protectKernelDefaults`).
    pub kernel_tunables_writable: bool,
    /// Whether the container runtime may lower OOM scores (false inside
    /// containers without CAP_SYS_RESOURCE: containerd must then not try).
    pub oom_score_adj_allowed: bool,
}

impl Default for HostProfile {
    fn default() -> Self {
        HostProfile {
            cgroup_version: CgroupVersion::V2,
            cgroup_driver: CgroupDriver::Systemd,
            kernel_tunables_writable: true,
            oom_score_adj_allowed: true,
        }
    }
}

/// A node taint, as the kubelet's `--register-with-taints` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taint {
    /// Key, such as `node-role.kubernetes.io/control-plane`.
    pub key: String,
    /// Optional value.
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute`.
    pub effect: String,
}

impl Taint {
    /// The taint kubeadm puts on masters.
    pub fn control_plane() -> Self {
        Taint {
            key: "node-role.kubernetes.io/control-plane".into(),
            value: None,
            effect: "NoSchedule".into(),
        }
    }
}

impl fmt::Display for Taint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={}:{}", self.key, v, self.effect),
            None => write!(f, "{}:{}", self.key, self.effect),
        }
    }
}

/// Whether a node is a master or a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// Runs the control plane; its kubelet talks to its own apiserver.
    ControlPlane,
    /// Runs workloads; its kubelet talks to the endpoint.
    Worker,
}

/// One node (master or worker) as its kubelet and kube-proxy see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// The Node's name (a DNS-1123 subdomain; usually the hostname).
    pub name: String,
    /// The address the node registers with (`--node-ip`); lab hosts have no
    /// default route, so it is always given explicitly.
    pub ip: std::net::IpAddr,
    /// Master or worker.
    pub role: NodeRole,
    /// Labels the kubelet registers the Node with.
    pub labels: BTreeMap<String, String>,
    /// Taints the kubelet registers the Node with.
    pub taints: Vec<Taint>,
    /// Extra kubelet flags, without `--`; they override kubeseed's.
    pub kubelet_extra_args: BTreeMap<String, String>,
    /// Extra kube-proxy flags, without `--`; they override kubeseed's.
    pub kube_proxy_extra_args: BTreeMap<String, String>,
    /// What the host is like.
    pub host: HostProfile,
}
