//! Condition types and reasons kubeseed writes, shared by the operator and tools
//! that read status (so a `kubectl wait --for=condition=Ready` has a fixed name).

/// The member does what its object asks and is healthy.
pub const READY: &str = "Ready";
/// SSH reached the host and its host key matched.
pub const HOST_REACHABLE: &str = "HostReachable";
/// The host passed the preflight checks (OS, ports, swap, kernel modules).
pub const PREFLIGHT_PASSED: &str = "PreflightPassed";
/// Certificates, binaries, configuration and units are in place on the host.
pub const PROVISIONED: &str = "Provisioned";
/// For an etcd member: it is a voting member (not a learner) of the cluster.
pub const ETCD_VOTING: &str = "EtcdVoting";
/// For a load balancer: this object's VIP is held by one of its hosts.
pub const VIP_HELD: &str = "VipHeld";
/// For a load balancer: the API answers `/readyz` through the VIP.
pub const VIP_SERVING: &str = "VipServing";
/// For a load balancer: the cluster's record names its VIP as the API
/// endpoint, so every apiserver certificate and `admin.conf` follow it.
pub const ENDPOINT_PUBLISHED: &str = "EndpointPublished";

/// For an etcd member: every member etcd lists is accounted for by an object.
pub const ETCD_MEMBERS_ACCOUNTED: &str = "EtcdMembersAccounted";

/// Reason: etcd lists a member that no `EtcdMember` (or joining master) accounts for.
pub const REASON_UNACCOUNTED_ETCD_MEMBER: &str = "UnaccountedEtcdMember";
/// Reason: the host presented an SSH host key other than the pinned or recorded one.
pub const REASON_HOST_KEY_MISMATCH: &str = "HostKeyMismatch";
/// Reason: the Secret with the SSH key is missing or malformed.
pub const REASON_SSH_KEY_SECRET_INVALID: &str = "SshKeySecretInvalid";
/// Reason: removing this member would cost the etcd cluster its quorum.
pub const REASON_QUORUM_AT_RISK: &str = "QuorumAtRisk";

/// A condition that holds, stamped now: what a writer records when it sets a
/// whole status at once (the seed recording its members, a master recording
/// the `EtcdMember` it owns).
pub fn met(
    type_: &str,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
        type_: type_.to_owned(),
        status: "True".to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation,
        last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ),
    }
}

/// Whether `conditions` has `type_` with status `True`.
pub fn holds(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    type_: &str,
) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}
