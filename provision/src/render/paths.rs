//! Where rendered files live on a host: kubeadm's layout for Kubernetes
//! files, upstream's defaults for containerd and the CNI plugins.
//!
//! Certificates and kubeconfigs are the PKI's ([`crate::pki`]); the
//! kubeconfig paths here are the names the PKI writes them under, and a
//! test checks every path a rendered file names exists among the PKI's or
//! the renderers' files.

/// Where the bundle installs every program.
pub const BIN_DIR: &str = "/usr/local/bin";
/// Where units are installed (the administrator's directory, above the
/// distribution's `/usr/lib/systemd/system`).
pub const SYSTEMD_DIR: &str = "/etc/systemd/system";

/// kube-apiserver's encryption-at-rest configuration (it holds the key: 0600).
pub const ENCRYPTION_CONFIG: &str = "/etc/kubernetes/encryption-config.yaml";
/// kube-apiserver's audit policy.
pub const AUDIT_POLICY: &str = "/etc/kubernetes/audit-policy.yaml";
/// The directory of the audit log (kube-apiserver creates it).
pub const AUDIT_LOG_DIR: &str = "/var/log/kubernetes/audit";
/// kube-scheduler's KubeSchedulerConfiguration.
pub const SCHEDULER_CONFIG: &str = "/etc/kubernetes/scheduler-config.yaml";

/// kube-controller-manager's kubeconfig (made by the PKI).
pub const CONTROLLER_MANAGER_CONF: &str = "/etc/kubernetes/controller-manager.conf";
/// kube-scheduler's kubeconfig (made by the PKI).
pub const SCHEDULER_CONF: &str = "/etc/kubernetes/scheduler.conf";
/// The kubelet's kubeconfig: made by the PKI for a master, written by the
/// kubelet itself after TLS bootstrapping on a worker.
pub const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";
/// The kubelet's bootstrap-token kubeconfig (made by the PKI).
pub const BOOTSTRAP_KUBELET_CONF: &str = "/etc/kubernetes/bootstrap-kubelet.conf";
/// kube-proxy's kubeconfig (made by the PKI).
pub const KUBE_PROXY_CONF: &str = "/etc/kubernetes/kube-proxy.conf";

/// The kubelet's KubeletConfiguration (kubeadm's path).
pub const KUBELET_CONFIG: &str = "/var/lib/kubelet/config.yaml";
/// kube-proxy's KubeProxyConfiguration.
pub const KUBE_PROXY_CONFIG: &str = "/var/lib/kube-proxy/config.yaml";

/// containerd's configuration (its default path, so the unit passes no `--config`).
pub const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
/// containerd's CRI socket.
pub const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";
/// The runc binary containerd runs (installed by the bundle, not the distribution's).
pub const RUNC: &str = "/usr/local/bin/runc";

/// Where the CNI plugin binaries are.
pub const CNI_BIN_DIR: &str = "/opt/cni/bin";
/// Where CNI network configurations are.
pub const CNI_CONF_DIR: &str = "/etc/cni/net.d";
/// kubeseed's CNI network (first in name order, so containerd picks it).
pub const CNI_CONFLIST: &str = "/etc/cni/net.d/10-kubeseed.conflist";

/// Kernel modules loaded at boot.
pub const MODULES_LOAD: &str = "/etc/modules-load.d/kubeseed.conf";
/// Kernel parameters set at boot.
pub const SYSCTL: &str = "/etc/sysctl.d/99-kubeseed.conf";

/// `/etc/systemd/system/<name>.service`.
pub fn unit_path(name: &str) -> String {
    format!("{SYSTEMD_DIR}/{name}.service")
}

/// `/usr/local/bin/<program>`.
pub fn program(name: &str) -> String {
    format!("{BIN_DIR}/{name}")
}
