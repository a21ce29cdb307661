//! Pure renderers: from the cluster description ([`crate::cluster`]) to every
//! configuration file and systemd unit a component needs. No I/O: each
//! renderer returns [`HostFiles`](crate::files::HostFiles) (absolute path →
//! text and mode: 0644 for configurations and units, 0600 for anything
//! secret), which one task writes and one check compares.
//!
//! | renderer | input | files |
//! |---|---|---|
//! | [`EtcdInput::render`] | member, initial cluster, state | `etcd.service` |
//! | [`ApiServerInput::render`] | cluster, master, etcd URLs, encryption key | `kube-apiserver.service`, `encryption-config.yaml` (0600), `audit-policy.yaml` |
//! | [`ControllerManagerInput::render`] | cluster | `kube-controller-manager.service` |
//! | [`SchedulerInput::render`] | — | `kube-scheduler.service`, `scheduler-config.yaml` |
//! | [`ContainerdInput::render`] | host profile, pause image | `config.toml`, `containerd.service` |
//! | [`KubeletInput::render`] | cluster, node, credentials | `/var/lib/kubelet/config.yaml`, `kubelet.service` |
//! | [`KubeProxyInput::render`] | cluster, node | `/var/lib/kube-proxy/config.yaml`, `kube-proxy.service` |
//! | [`CniInput::render`] | the node's pod range | `10-kubeseed.conflist` |
//! | [`kernel::render`] | — | `modules-load.d/kubeseed.conf`, `sysctl.d/99-kubeseed.conf` |
//! | [`LoadBalancerInput::render`] | proxy, VIP, interface, backends, VRRP, cluster CA | under `/etc/kubeseed/lb/`: `haproxy.cfg` or `nginx.conf`, `keepalived.conf` (each with its validator), `ca.crt`, `check-proxy.sh` and `vrrp-notify.sh` (0755); `kubeseed-haproxy.service` or `kubeseed-nginx.service`, `kubeseed-keepalived.service` |
//! | [`PodRoutesInput::render`] | the other nodes' pod ranges and addresses | `/etc/kubeseed/pod-routes`, `pod-routes.sh` (0755), `kubeseed-pod-routes.service` |
//!
//! Certificates and kubeconfigs come from [`crate::pki`]; the renderers only
//! name their paths ([`paths`]).
//!
//! Flags: kubeseed's own, in a fixed order, then the object's extra
//! arguments, which replace a flag of the same name ([`Flags`]). Names and
//! values that would break a unit are refused with a typed
//! [`RenderError`]. Every value reaches a file through [`escape`], the one
//! place that knows how systemd, TOML, YAML and JSON quote. Only modern
//! flags are used (Kubernetes v1.35, etcd v3.6): settings that have a
//! configuration-file field go into the file.
//!
//! The API load balancer ([`load_balancer`]: HAProxy or nginx `stream`, and
//! keepalived for the VIP) runs under kubeseed's own units; its configurations are [`CheckedFile`]s, each with the command that
//! makes its program check it (`haproxy -c`, `nginx -t`, `keepalived -t`).

mod audit_policy;
mod cluster_dns;
mod cni;
mod containerd;
mod encryption;
mod error;
pub mod escape;
mod etcd;
mod flags;
pub mod kernel;
mod kube_apiserver;
mod kube_controller_manager;
mod kube_proxy;
mod kube_scheduler;
mod kubelet;
pub mod load_balancer;
mod node_labels;
pub mod paths;
mod pod_routes;
mod unit;

use std::fmt;

use serde::Serialize;

pub use cluster_dns::{ClusterDnsInput, Upstream};
pub use cni::{CNI_BRIDGE, CniInput};
pub use containerd::ContainerdInput;
pub use encryption::{EncryptionConfig, EncryptionKey, EncryptionProvider, KEY_LEN};
pub use error::{RenderError, Result};
pub use etcd::{EtcdInput, InitialClusterState};
pub use flags::{ExtraArgs, Flags};
pub use kube_apiserver::ApiServerInput;
pub use kube_controller_manager::ControllerManagerInput;
pub use kube_proxy::{FLAGS_HONOURED_WITH_CONFIG, KubeProxyInput};
pub use kube_scheduler::SchedulerInput;
pub use kubelet::{KubeletCredentials, KubeletInput};
pub use load_balancer::{
    Backend, CheckedFile, DEFAULT_ADVERT_INTERVAL_MS, HAPROXY_STATS_SOCKET, LB_DIR,
    LoadBalancerInput, Programs, Proxy, RenderedLoadBalancer, TRANSITIONS_LOG, VRRP_STATE_FILE,
    Vrrp, master_down_interval,
};
pub use node_labels::{api_only_labels, kubelet_may_set};
pub use pod_routes::{
    POD_ROUTES_FILE, POD_ROUTES_PROTO, POD_ROUTES_SCRIPT, POD_ROUTES_UNIT, PodRoute, PodRoutesInput,
};

/// What a file is rendered for; errors name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// etcd.
    Etcd,
    /// kube-apiserver.
    KubeApiserver,
    /// kube-controller-manager.
    KubeControllerManager,
    /// kube-scheduler.
    KubeScheduler,
    /// containerd.
    Containerd,
    /// The kubelet.
    Kubelet,
    /// kube-proxy.
    KubeProxy,
    /// The node's CNI network configuration.
    Cni,
    /// Kernel modules and sysctls.
    Kernel,
    /// The API load balancer: HAProxy or nginx, and keepalived (units named
    /// by [`Proxy::unit`] and [`load_balancer::KEEPALIVED_UNIT`]).
    LoadBalancer,
    /// Cluster DNS (CoreDNS, a Deployment in the cluster).
    ClusterDns,
    /// Routes to the other nodes' pod ranges (unit named by
    /// [`POD_ROUTES_UNIT`]).
    PodRoutes,
}

impl Component {
    /// Every component of a master or worker node, in start order (not the
    /// API load balancer, which is provisioned on its own).
    pub const ALL: [Component; 9] = [
        Component::Kernel,
        Component::Containerd,
        Component::Cni,
        Component::Etcd,
        Component::KubeApiserver,
        Component::KubeControllerManager,
        Component::KubeScheduler,
        Component::Kubelet,
        Component::KubeProxy,
    ];

    /// The program's name (also its unit's), or what the files are for.
    pub fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::KubeApiserver => "kube-apiserver",
            Component::KubeControllerManager => "kube-controller-manager",
            Component::KubeScheduler => "kube-scheduler",
            Component::Containerd => "containerd",
            Component::Kubelet => "kubelet",
            Component::KubeProxy => "kube-proxy",
            Component::Cni => "cni",
            Component::Kernel => "kernel",
            Component::LoadBalancer => "load-balancer",
            Component::ClusterDns => "cluster-dns",
            Component::PodRoutes => "pod-routes",
        }
    }

    /// The systemd unit that runs it (`etcd.service`), if it is a program.
    /// `None` for the load balancer too: its units depend on the proxy
    /// ([`Proxy::unit`]).
    pub fn unit_name(self) -> Option<String> {
        match self {
            Component::Cni
            | Component::Kernel
            | Component::LoadBalancer
            | Component::ClusterDns
            | Component::PodRoutes => None,
            other => Some(format!("{}.service", other.name())),
        }
    }
}

/// The first line of every rendered file that allows comments (all but JSON).
pub(crate) const HEADER: &str =
    "# Written by kubeseed; local changes are overwritten. Change the cluster's objects instead.";

/// A YAML configuration file: the header, then `value` by the serializer.
pub(crate) fn yaml_file<T: Serialize>(
    component: Component,
    what: &'static str,
    value: &T,
) -> Result<String> {
    let body = escape::yaml(value).map_err(|reason| RenderError::Serialize {
        component,
        what,
        reason,
    })?;
    Ok(format!("{HEADER}\n{body}"))
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
