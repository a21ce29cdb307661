//! `ControlPlaneMember`: a master running kube-apiserver, kube-controller-manager,
//! kube-scheduler and a kubelet, optionally with a stacked etcd member.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::etcd_member::{ETCD_CLIENT_PORT, ETCD_DATA_DIR, ETCD_PEER_PORT};
use super::formats;
use super::host::{HostSpec, port_or};
use super::status::{CommonStatus, ComponentVersions, ObservedHostKey};

/// A Kubernetes master provisioned over SSH: kube-apiserver, kube-controller-manager,
/// kube-scheduler, a container runtime and a kubelet registered with the
/// control-plane taint, as systemd units.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "kubeseed.io",
    version = "v1alpha1",
    kind = "ControlPlaneMember",
    status = "ControlPlaneMemberStatus",
    shortname = "cpm",
    category = "kubeseed",
    derive = "PartialEq",
    doc = "A Kubernetes master that kubeseed provisions over SSH.",
    printcolumn(
        name = "Host",
        type_ = "string",
        json_path = ".spec.host.address",
        description = "SSH address of the host"
    ),
    printcolumn(
        name = "Etcd",
        type_ = "string",
        json_path = ".spec.etcd.topology",
        description = "Stacked or External etcd"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Version",
        type_ = "string",
        json_path = ".status.versions.kubernetes"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("self.host.address == oldSelf.host.address")
    .message("host.address cannot be changed: create a new ControlPlaneMember for the other host and delete this one")
    .field_path(".host.address"))]
#[x_kube(validation = Rule::new("has(self.advertiseAddress) == has(oldSelf.advertiseAddress) && (!has(self.advertiseAddress) || self.advertiseAddress == oldSelf.advertiseAddress)")
    .message("advertiseAddress cannot be changed after creation: the cluster's certificates and etcd membership use it")
    .field_path(".advertiseAddress"))]
#[x_kube(validation = Rule::new("(has(self.etcd) ? self.etcd.topology : 'Stacked') == (has(oldSelf.etcd) ? oldSelf.etcd.topology : 'Stacked')")
    .message("etcd.topology cannot be changed after creation: create a new ControlPlaneMember with the other topology, then delete this one")
    .field_path(".etcd.topology"))]
#[x_kube(validation = Rule::new("(has(self.etcd) && has(self.etcd.dataDir)) == (has(oldSelf.etcd) && has(oldSelf.etcd.dataDir)) && (!(has(self.etcd) && has(self.etcd.dataDir)) || self.etcd.dataDir == oldSelf.etcd.dataDir)")
    .message("etcd.dataDir cannot be changed after creation: the stacked member's data lives there")
    .field_path(".etcd.dataDir"))]
#[x_kube(validation = Rule::new("!has(self.etcd) || self.etcd.topology != 'Stacked' || !((has(self.apiServer) && has(self.apiServer.bindPort) ? self.apiServer.bindPort : 6443) in [has(self.etcd.clientPort) ? self.etcd.clientPort : 2379, has(self.etcd.peerPort) ? self.etcd.peerPort : 2380])")
    .message("apiServer.bindPort must differ from the stacked etcd member's clientPort and peerPort (defaults 6443, 2379 and 2380)"))]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneMemberSpec {
    /// How to reach the host over SSH.
    pub host: HostSpec,

    /// Address kube-apiserver advertises to the cluster and puts in its certificate.
    /// Defaults to `host.address`. Cannot be changed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = formats::ip_address("10.213.0.12"))]
    #[schemars(length(min = 1, max = 45))]
    pub advertise_address: Option<String>,

    /// Where this master's etcd runs.
    #[serde(default)]
    pub etcd: EtcdPlacement,

    /// Kubernetes version for this master, such as `v1.35.0`. Defaults to the
    /// version the cluster was seeded with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^v?1\\\\.[0-9]+\\\\.[0-9]+$')").message("must be a Kubernetes version such as v1.35.0"))]
    #[schemars(length(max = 32))]
    pub kubernetes_version: Option<String>,

    /// kube-apiserver settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server: Option<ApiServerSpec>,

    /// kube-controller-manager settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_manager: Option<ComponentSpec>,

    /// kube-scheduler settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<ComponentSpec>,

    /// kubelet settings for this master's node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<super::KubeletSpec>,
}

/// Where a master's etcd member runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.topology == 'Stacked' || (!has(self.clientPort) && !has(self.peerPort) && !has(self.dataDir))")
    .message("clientPort, peerPort and dataDir apply only to the Stacked topology: with External, set them on the EtcdMembers"))]
#[x_kube(validation = Rule::new("self.topology != 'Stacked' || (has(self.clientPort) ? self.clientPort : 2379) != (has(self.peerPort) ? self.peerPort : 2380)")
    .message("clientPort and peerPort must differ"))]
pub struct EtcdPlacement {
    /// `Stacked` (the default) runs an etcd member on this host: the operator creates
    /// and owns an `EtcdMember` named after this object. `External` uses the
    /// cluster's separate `EtcdMember`s.
    #[serde(default)]
    pub topology: EtcdTopology,

    /// etcd client port of the stacked member. Defaults to 2379.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("must be a port number between 1 and 65535"))]
    pub client_port: Option<i32>,

    /// etcd peer port of the stacked member. Defaults to 2380.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("must be a port number between 1 and 65535"))]
    pub peer_port: Option<i32>,

    /// Data directory of the stacked member. Defaults to `/var/lib/etcd`. Cannot be
    /// changed after creation; deleting the member removes it, so it may not be a
    /// system directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = formats::absolute_path())]
    #[x_kube(validation = formats::data_dir_outside_system())]
    #[schemars(length(max = 4096))]
    pub data_dir: Option<String>,
}

/// The two etcd topologies of kubeadm's high-availability guide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum EtcdTopology {
    /// etcd runs on the master itself.
    #[default]
    Stacked,
    /// etcd runs on separate hosts, each an `EtcdMember`.
    External,
}

/// kube-apiserver settings of one master.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiServerSpec {
    /// Port kube-apiserver listens on. Defaults to 6443.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub bind_port: Option<i32>,

    /// Extra subject alternative names (DNS names or IP addresses) for the serving
    /// certificate, besides the addresses kubeseed adds itself.
    #[serde(default, rename = "extraSANs", skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "formats::extra_sans")]
    pub extra_sans: Vec<String>,

    /// Extra command-line flags, without the leading `--`, such as
    /// `audit-log-maxage: "30"`. They override kubeseed's own flags of the same name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "formats::extra_args")]
    pub extra_args: BTreeMap<String, String>,
}

/// Settings of a control-plane component that takes only extra flags.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// Extra command-line flags, without the leading `--`. They override kubeseed's
    /// own flags of the same name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "formats::extra_args")]
    pub extra_args: BTreeMap<String, String>,
}

/// What kubeseed observed of a master.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ControlPlaneMemberStatus {
    /// Phase, conditions and observed generation.
    #[serde(flatten)]
    pub common: CommonStatus,

    /// The SSH host key the host presented.
    #[serde(flatten)]
    pub host_key: ObservedHostKey,

    /// Name of the Node this master registered as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,

    /// Versions of the components running on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<ComponentVersions>,

    /// Name of the `EtcdMember` this master owns, with the Stacked topology.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd_member: Option<String>,

    /// Digest of what the master's configuration takes from the cluster (the
    /// endpoint, its VIP and names, the etcd members its apiserver uses) when it
    /// was last provisioned. When the cluster's differ, the operator provisions
    /// the master again, one master at a time: new serving certificates, and
    /// one apiserver restarted after another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_inputs: Option<String>,
}

impl ControlPlaneMemberSpec {
    /// The address the cluster components advertise, defaulted to the SSH address.
    pub fn advertise_address(&self) -> &str {
        self.advertise_address
            .as_deref()
            .unwrap_or(&self.host.address)
    }
}

impl EtcdPlacement {
    /// The stacked member's client port, defaulted.
    pub fn client_port(&self) -> u16 {
        port_or(self.client_port, ETCD_CLIENT_PORT)
    }

    /// The stacked member's peer port, defaulted.
    pub fn peer_port(&self) -> u16 {
        port_or(self.peer_port, ETCD_PEER_PORT)
    }

    /// The stacked member's data directory, defaulted.
    pub fn data_dir(&self) -> &str {
        self.data_dir.as_deref().unwrap_or(ETCD_DATA_DIR)
    }
}
