//! `WorkerNode`: a node running a container runtime, kubelet and kube-proxy.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Taint;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::formats;
use super::host::HostSpec;
use super::status::{CommonStatus, ComponentVersions, ObservedHostKey};

/// A worker provisioned over SSH: containerd, kubelet and kube-proxy, joined with
/// a bootstrap token and TLS bootstrapping.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "kubeseed.io",
    version = "v1alpha1",
    kind = "WorkerNode",
    status = "WorkerNodeStatus",
    shortname = "wn",
    category = "kubeseed",
    derive = "PartialEq",
    doc = "A Kubernetes worker node that kubeseed provisions over SSH.",
    printcolumn(
        name = "Host",
        type_ = "string",
        json_path = ".spec.host.address",
        description = "SSH address of the host"
    ),
    printcolumn(
        name = "Node",
        type_ = "string",
        json_path = ".status.nodeName",
        description = "The Node it registered as"
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
    .message("host.address cannot be changed: create a new WorkerNode for the other host and delete this one")
    .field_path(".host.address"))]
#[x_kube(validation = Rule::new("has(self.advertiseAddress) == has(oldSelf.advertiseAddress) && (!has(self.advertiseAddress) || self.advertiseAddress == oldSelf.advertiseAddress)")
    .message("advertiseAddress cannot be changed after creation: the node's kubelet certificate uses it")
    .field_path(".advertiseAddress"))]
#[serde(rename_all = "camelCase")]
pub struct WorkerNodeSpec {
    /// How to reach the host over SSH.
    pub host: HostSpec,

    /// Node IP the kubelet reports. Defaults to `host.address`. Cannot be changed
    /// after creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = formats::ip_address("10.213.0.21"))]
    #[schemars(length(min = 1, max = 45))]
    pub advertise_address: Option<String>,

    /// Kubernetes version of the kubelet and kube-proxy, such as `v1.35.0`.
    /// Defaults to the control plane's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^v?1\\\\.[0-9]+\\\\.[0-9]+$')").message("must be a Kubernetes version such as v1.35.0"))]
    #[schemars(length(max = 32))]
    pub kubernetes_version: Option<String>,

    /// kubelet settings: node name, labels, taints and extra flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<KubeletSpec>,

    /// Extra kube-proxy command-line flags, without the leading `--`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "formats::extra_args")]
    pub kube_proxy_extra_args: BTreeMap<String, String>,
}

/// kubelet settings of one node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeletSpec {
    /// Name the node registers as (a DNS-1123 subdomain, such as `worker-1`).
    /// Defaults to the host's hostname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = formats::node_name())]
    #[schemars(length(min = 1, max = 253))]
    pub node_name: Option<String>,

    /// Labels the node registers with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "formats::labels")]
    pub labels: BTreeMap<String, String>,

    /// Taints the node registers with. On a master, the default is the
    /// `node-role.kubernetes.io/control-plane:NoSchedule` taint; set an empty list to
    /// schedule workloads there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "formats::taints")]
    pub taints: Option<Vec<Taint>>,

    /// Extra kubelet command-line flags, without the leading `--`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(schema_with = "formats::extra_args")]
    pub extra_args: BTreeMap<String, String>,
}

/// What kubeseed observed of a worker.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerNodeStatus {
    /// Phase, conditions and observed generation.
    #[serde(flatten)]
    pub common: CommonStatus,

    /// The SSH host key the host presented.
    #[serde(flatten)]
    pub host_key: ObservedHostKey,

    /// Name of the Node the kubelet registered as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_name: Option<String>,

    /// Versions of the components running on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<ComponentVersions>,

    /// Digest of what the worker's configuration took from the cluster (the
    /// endpoint its kubelet and kube-proxy talk to) when it was last
    /// provisioned; when the cluster's differs, it is provisioned again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
}

impl WorkerNodeSpec {
    /// The node IP, defaulted to the SSH address.
    pub fn advertise_address(&self) -> &str {
        self.advertise_address
            .as_deref()
            .unwrap_or(&self.host.address)
    }
}
