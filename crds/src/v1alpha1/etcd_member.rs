//! `EtcdMember`: one member of the cluster's etcd.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::formats;
use super::host::{HostSpec, port_or};
use super::status::{CommonStatus, ComponentVersions, ObservedHostKey};

/// One etcd member provisioned over SSH. It joins as a learner and is promoted
/// once caught up; on delete it is removed from the member list before its host
/// is cleaned, and a removal that would lose quorum is refused.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "kubeseed.io",
    version = "v1alpha1",
    kind = "EtcdMember",
    status = "EtcdMemberStatus",
    shortname = "etcdm",
    category = "kubeseed",
    derive = "PartialEq",
    doc = "An etcd member that kubeseed provisions over SSH.",
    printcolumn(
        name = "Host",
        type_ = "string",
        json_path = ".spec.host.address",
        description = "SSH address of the host"
    ),
    printcolumn(
        name = "Member ID",
        type_ = "string",
        json_path = ".status.memberId",
        description = "etcd member ID (hex)"
    ),
    printcolumn(name = "Learner", type_ = "boolean", json_path = ".status.isLearner"),
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
#[x_kube(validation = Rule::new("self.host.address == oldSelf.host.address")
    .message("host.address cannot be changed: add a new EtcdMember for the other host, then delete this one")
    .field_path(".host.address"))]
#[x_kube(validation = Rule::new("has(self.advertiseAddress) == has(oldSelf.advertiseAddress) && (!has(self.advertiseAddress) || self.advertiseAddress == oldSelf.advertiseAddress)")
    .message("advertiseAddress cannot be changed after creation: it is the member's peer URL in the etcd cluster")
    .field_path(".advertiseAddress"))]
#[x_kube(validation = Rule::new("(has(self.clientPort) ? self.clientPort : 2379) != (has(self.peerPort) ? self.peerPort : 2380)")
    .message("clientPort and peerPort must differ"))]
#[x_kube(validation = Rule::new("!has(oldSelf.dataDir) && !has(self.dataDir) || has(oldSelf.dataDir) && has(self.dataDir) && self.dataDir == oldSelf.dataDir")
    .message("dataDir cannot be changed after creation: the member's data lives there")
    .field_path(".dataDir"))]
#[serde(rename_all = "camelCase")]
pub struct EtcdMemberSpec {
    /// How to reach the host over SSH.
    pub host: HostSpec,

    /// Address etcd advertises to its peers and clients and puts in its certificates.
    /// Defaults to `host.address`. Cannot be changed after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = formats::ip_address("10.213.0.12"))]
    #[schemars(length(min = 1, max = 45))]
    pub advertise_address: Option<String>,

    /// Port etcd serves clients on. Defaults to 2379.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("must be a port number between 1 and 65535"))]
    pub client_port: Option<i32>,

    /// Port etcd talks to its peers on. Defaults to 2380.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("must be a port number between 1 and 65535"))]
    pub peer_port: Option<i32>,

    /// Directory etcd keeps its data in. Defaults to `/var/lib/etcd`. Cannot be
    /// changed after creation; deleting the member removes it, so it may not be
    /// a system directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = formats::absolute_path())]
    #[x_kube(validation = formats::data_dir_outside_system())]
    #[schemars(length(max = 4096))]
    pub data_dir: Option<String>,

    /// etcd version for this member, such as `v3.6.5`. Defaults to the version the
    /// cluster was seeded with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^v?3\\\\.[0-9]+\\\\.[0-9]+$')").message("must be an etcd version such as v3.6.5"))]
    #[schemars(length(max = 32))]
    pub etcd_version: Option<String>,

    /// Extra subject alternative names (DNS names or IP addresses) for the member's
    /// server and peer certificates.
    #[serde(default, rename = "extraSANs", skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "formats::extra_sans")]
    pub extra_sans: Vec<String>,

    /// Extra etcd command-line flags, without the leading `--`, such as
    /// `quota-backend-bytes: "8589934592"`. They override kubeseed's own flags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "formats::extra_args")]
    pub extra_args: BTreeMap<String, String>,
}

/// What kubeseed observed of an etcd member.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EtcdMemberStatus {
    /// Phase, conditions and observed generation.
    #[serde(flatten)]
    pub common: CommonStatus,

    /// The SSH host key the host presented.
    #[serde(flatten)]
    pub host_key: ObservedHostKey,

    /// The member's ID in the etcd cluster, in hex as `etcdctl member list` prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,

    /// Whether the member is still a learner (a non-voting member catching up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_learner: Option<bool>,

    /// Versions of the components running on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<ComponentVersions>,
}

/// etcd's client port when none is given.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// etcd's peer port when none is given.
pub const ETCD_PEER_PORT: u16 = 2380;
/// etcd's data directory when none is given.
pub const ETCD_DATA_DIR: &str = "/var/lib/etcd";

impl EtcdMemberSpec {
    /// The address etcd advertises, defaulted to the SSH address.
    pub fn advertise_address(&self) -> &str {
        self.advertise_address
            .as_deref()
            .unwrap_or(&self.host.address)
    }

    /// The client port, defaulted.
    pub fn client_port(&self) -> u16 {
        port_or(self.client_port, ETCD_CLIENT_PORT)
    }

    /// The peer port, defaulted.
    pub fn peer_port(&self) -> u16 {
        port_or(self.peer_port, ETCD_PEER_PORT)
    }

    /// The data directory, defaulted.
    pub fn data_dir(&self) -> &str {
        self.data_dir.as_deref().unwrap_or(ETCD_DATA_DIR)
    }
}
