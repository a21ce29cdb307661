//! Version `v1alpha1` of the `kubeseed.io` API.

// kube's derive takes one `printcolumn(...)` per column, and clippy reads the
// repeated attribute name as a mistake; the columns are all distinct.
#![allow(clippy::duplicated_attributes)]

mod api_load_balancer;
pub mod conditions;
mod control_plane_member;
mod etcd_member;
mod formats;
mod host;
mod host_object;
mod status;
mod worker_node;

pub use api_load_balancer::{
    ApiLoadBalancer, ApiLoadBalancerSpec, ApiLoadBalancerStatus, BackendHealth,
    LoadBalancerBackend, LoadBalancerHost, LoadBalancerHostStatus, LoadBalancerImplementation,
};
pub use control_plane_member::{
    ApiServerSpec, ComponentSpec, ControlPlaneMember, ControlPlaneMemberSpec,
    ControlPlaneMemberStatus, EtcdPlacement, EtcdTopology,
};
pub use etcd_member::{
    ETCD_CLIENT_PORT, ETCD_DATA_DIR, ETCD_PEER_PORT, EtcdMember, EtcdMemberSpec, EtcdMemberStatus,
};
pub use host::{Bastion, HostSpec, SecretRef};
pub use host_object::{HostObject, SingleHostObject};
pub use status::{CommonStatus, ComponentVersions, ObservedHostKey, Phase};
pub use worker_node::{KubeletSpec, WorkerNode, WorkerNodeSpec, WorkerNodeStatus};

/// The version string of this API.
pub const VERSION: &str = "v1alpha1";
