//! `ApiLoadBalancer`: a layer-4 load balancer in front of the kube-apiservers,
//! with keepalived holding a virtual IP.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::formats;
use super::host::HostSpec;
use super::status::{CommonStatus, ComponentVersions, ObservedHostKey};

/// A TCP load balancer for the Kubernetes API on one or more hosts (HAProxy or
/// nginx `stream`), with keepalived (VRRP) moving a virtual IP between them.
/// Backends follow the Ready control-plane members unless set statically.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "kubeseed.io",
    version = "v1alpha1",
    kind = "ApiLoadBalancer",
    status = "ApiLoadBalancerStatus",
    shortname = "apilb",
    category = "kubeseed",
    derive = "PartialEq",
    doc = "A load balancer with a virtual IP in front of the Kubernetes API, provisioned over SSH.",
    printcolumn(
        name = "VIP",
        type_ = "string",
        json_path = ".spec.vip",
        description = "The virtual IP"
    ),
    printcolumn(
        name = "Holder",
        type_ = "string",
        json_path = ".status.vipHolder",
        description = "The host that holds the VIP now"
    ),
    printcolumn(
        name = "Hosts",
        type_ = "string",
        json_path = ".spec.hosts[*].host.address",
        description = "SSH addresses of the load-balancer hosts"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("!isCIDR(self.vip) || self.hosts.all(h, !isIP(h.host.address) || !cidr(self.vip.split('/')[0] + (cidr(self.vip).ip().family() == 4 ? '/32' : '/128')).containsIP(h.host.address))")
    .message("vip must differ from the address of every load-balancer host: keepalived moves it between them")
    .field_path(".vip"))]
#[serde(rename_all = "camelCase")]
pub struct ApiLoadBalancerSpec {
    /// The hosts that run the load balancer and keepalived. The one with the highest
    /// priority holds the VIP while it is healthy.
    #[x_kube(validation = Rule::new("size(self) >= 1").message("an ApiLoadBalancer needs at least one host in hosts"))]
    #[x_kube(validation = Rule::new("self.all(h, self.exists_one(o, o.host.address == h.host.address))")
        .message("hosts must be distinct: the same host.address is listed twice"))]
    #[schemars(length(max = 8))]
    pub hosts: Vec<LoadBalancerHost>,

    /// The virtual IP with its prefix length, such as `10.213.0.100/24`. The load
    /// balancer listens on it, and its address goes into the apiserver certificates.
    #[x_kube(validation = Rule::new("isCIDR(self)")
        .message("vip must be an IP address with a prefix length, such as 10.213.0.100/24"))]
    // Comparing two IP values is too expensive for the API server's cost
    // estimate; `containsIP` on a one-address CIDR is the same test. The
    // IPv4 broadcast address (the last of a prefix) is not caught.
    #[x_kube(validation = Rule::new("!isCIDR(self) || (cidr(self).ip().isGlobalUnicast() && (cidr(self).prefixLength() >= (cidr(self).ip().family() == 4 ? 31 : 127) || !cidr(self.split('/')[0] + (cidr(self).ip().family() == 4 ? '/32' : '/128')).containsIP(cidr(self).masked().ip())))")
        .message("vip must be one host address with the prefix length of its network, such as 10.213.0.100/24: not a network address such as 10.213.0.0/24 or 0.0.0.0/0, and not a loopback, link-local or multicast address"))]
    #[schemars(length(min = 1, max = 49))]
    pub vip: String,

    /// Network interface keepalived puts the VIP on, such as `eth0`. Defaults to the
    /// interface of each host's route to the VIP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = formats::interface())]
    #[schemars(length(min = 1, max = 15))]
    pub interface: Option<String>,

    /// TCP port the load balancer listens on for the Kubernetes API. Defaults to 6443.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("must be a port number between 1 and 65535"))]
    pub port: Option<i32>,

    /// Which proxy to run: `HAProxy` (the default) or `Nginx` (the `stream` module).
    #[serde(default)]
    pub implementation: LoadBalancerImplementation,

    /// VRRP virtual router ID shared by the hosts (1-255). Must be unique on the
    /// network segment. Defaults to a value derived from this object's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 255").message("virtualRouterId must be between 1 and 255"))]
    pub virtual_router_id: Option<i32>,

    /// DNS names that resolve to the VIP. They are added to the apiserver certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "formats::vip_dns_names")]
    pub dns_names: Vec<String>,

    /// Fixed backends. When empty (the default), the backends follow the Ready
    /// `ControlPlaneMember`s automatically.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub backends: Vec<LoadBalancerBackend>,
}

/// One load-balancer host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerHost {
    /// How to reach the host over SSH.
    pub host: HostSpec,

    /// VRRP priority (1-254): the healthy host with the highest priority holds the
    /// VIP. Defaults to 100 for the first host and 10 less for each next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 254").message("VRRP priority must be between 1 and 254"))]
    pub priority: Option<i32>,
}

/// A fixed load-balancer backend.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerBackend {
    /// Address of a kube-apiserver: an IP address or a DNS name.
    #[x_kube(validation = formats::address())]
    #[schemars(length(min = 1, max = 253))]
    pub address: String,

    /// Port of that kube-apiserver. Defaults to 6443.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("must be a port number between 1 and 65535"))]
    pub port: Option<i32>,
}

/// The TCP proxies kubeseed can run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LoadBalancerImplementation {
    /// HAProxy in TCP mode, with `/readyz` health checks over TLS.
    #[default]
    #[serde(rename = "HAProxy")]
    HaProxy,
    /// nginx with the `stream` module.
    Nginx,
}

/// What kubeseed observed of a load balancer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiLoadBalancerStatus {
    /// Phase, conditions and observed generation.
    #[serde(flatten)]
    pub common: CommonStatus,

    /// SSH address of the host that held the VIP when last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vip_holder: Option<String>,

    /// The backends (`address:port`) the load balancer forwards to now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<String>,

    /// Per host, what was observed on it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<LoadBalancerHostStatus>,
}

/// What kubeseed observed on one load-balancer host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoadBalancerHostStatus {
    /// SSH address of the host.
    pub address: String,

    /// The SSH host key the host presented.
    #[serde(flatten)]
    pub host_key: ObservedHostKey,

    /// Versions of the proxy and keepalived on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<ComponentVersions>,

    /// keepalived's VRRP state on the host: `MASTER` (it holds the VIP),
    /// `BACKUP`, or `FAULT` (its proxy failed the health check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vrrp_state: Option<String>,

    /// Each backend's health as this host's proxy sees it (HAProxy's own
    /// TLS checks of `/readyz`; for nginx, the operator's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<BackendHealth>,

    /// The host's address on the VIP's subnet: its VRRP unicast source, and
    /// a peer of the other hosts (kept so they can be configured while this
    /// one is down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unicast_source: Option<String>,

    /// Digest of everything provisioned on the host; a change provisions it
    /// again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
}

/// One backend's health.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackendHealth {
    /// The backend, `address:port`.
    pub address: String,

    /// Whether it passes the health check.
    pub healthy: bool,

    /// What the check said, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ApiLoadBalancerSpec {
    /// The port the load balancer listens on, defaulted.
    pub fn port(&self) -> u16 {
        self.port
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(6443)
    }
}
