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
/// The operator can act on this kind. `False` with reason [`REASON_NOT_IMPLEMENTED`]
/// until the kind's controller logic has landed: no silent success.
pub const IMPLEMENTED: &str = "Implemented";

/// Reason: this version of the operator cannot provision this kind yet.
pub const REASON_NOT_IMPLEMENTED: &str = "NotImplemented";
/// Reason: the host presented an SSH host key other than the pinned or recorded one.
pub const REASON_HOST_KEY_MISMATCH: &str = "HostKeyMismatch";
/// Reason: the Secret with the SSH key is missing or malformed.
pub const REASON_SSH_KEY_SECRET_INVALID: &str = "SshKeySecretInvalid";
/// Reason: removing this member would cost the etcd cluster its quorum.
pub const REASON_QUORUM_AT_RISK: &str = "QuorumAtRisk";
