//! Status pieces every kind shares.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where a member is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Accepted; the operator has not started on the host yet.
    Pending,
    /// The operator is preparing the host: certificates, binaries, units, membership.
    Provisioning,
    /// The host runs what the object asks for, and it is healthy.
    Ready,
    /// Provisioned, but a health check fails; the conditions say which.
    Degraded,
    /// The operator stopped because of an error a person must fix; the conditions say what.
    Failed,
    /// The object is being deleted and the operator is undoing its work on the host.
    Deleting,
}

/// Versions of the components observed running on a host.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentVersions {
    /// Kubernetes version of the kubelet and, on masters, the control-plane components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<String>,
    /// etcd version, on hosts that run etcd.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<String>,
    /// Container runtime and its version, such as `containerd://1.6.20`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_runtime: Option<String>,
    /// Load-balancer software and its version, such as `haproxy 2.6.12`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<String>,
    /// keepalived version, on load-balancer hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keepalived: Option<String>,
}

/// What every kind's status starts with: where the object is in its life, its
/// conditions and the generation they describe.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonStatus {
    /// Where the object is in its life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// The latest observations of the object's state, one per type (`Ready`,
    /// `HostReachable`, `PreflightPassed`, `Provisioned`, `EtcdVoting`, `VipHeld`,
    /// `Implemented`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,

    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The SSH identity a host presented.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservedHostKey {
    /// SHA256 fingerprint of the host key the host presented, such as `SHA256:...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_key_fingerprint: Option<String>,

    /// The host key first seen, in `authorized_keys` form; enforced on every later
    /// connection when the spec pins no `hostKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_host_key: Option<String>,

    /// SHA256 fingerprint of the host key the bastion presented, when the host is
    /// reached through one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bastion_host_key_fingerprint: Option<String>,

    /// The bastion's host key first seen, in `authorized_keys` form; enforced on
    /// every later connection through it when the spec pins no `bastion.hostKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_bastion_host_key: Option<String>,
}
