//! Status pieces every kind shares.

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
