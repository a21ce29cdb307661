//! Plans: which tasks, in which order, make a host what its role needs.
//!
//! `bootstrap seed` and the operator build their task lists here, from the
//! cluster description and the renderers, and run them with
//! [`crate::tasks::Runner`] on a [`crate::host::Host`]. Nothing host-related
//! is written anywhere else.

pub mod addons;
pub mod artifacts;
pub mod cni;
pub mod control_plane;
pub mod etcd_join;
pub mod etcd_node;
pub mod kubectl;
pub mod leave;
pub mod load_balancer;
pub mod master;
pub mod pod_routes;
pub mod worker;

pub use addons::{COREDNS_REPLICAS, addons, upstream_of};
pub use artifacts::{
    BUNDLE_ROOT, ImportImage, LinkInto, StageArtifacts, StagedArtifact, bundle_dir,
};
pub use cni::CniFromNode;
pub use control_plane::{
    BundleImage, BundleOnHost, CLUSTER_ID_FILE, ComponentSettings, ControlPlaneInput, EtcdHooks,
    EtcdPlan, control_plane, node_tasks,
};
pub use etcd_join::{AddLearner, PromoteLearner, initial_cluster_for};
pub use etcd_node::{ETCD_PROGRAMS, EtcdNodeInput, etcd_node};
pub use kubectl::{ADMIN_CONF, ApiAccess, FIELD_MANAGER, KubectlApply, SUPER_ADMIN_CONF, kubectl};
pub use leave::{ETCD_UNITS, MASTER_UNITS, teardown_etcd, teardown_master, teardown_worker};
pub use load_balancer::{
    KEEPALIVED_UNIT, LoadBalancerHostInput, load_balancer_host, load_balancer_inputs_digest,
    teardown_load_balancer,
};
pub use master::{
    ComposeError, MasterOrdinal, bundle_on_host, cluster_inputs_digest, etcd_member_pki,
    master_node, master_pki,
};
pub use pod_routes::{pod_routes, teardown_pod_routes};
pub use worker::{
    BOOTSTRAP_WINDOW, KUBELET_CLIENT_PEM, WORKER_PROGRAMS, WORKER_ROLE_LABEL, WorkerInput,
    WorkerPlanError, worker, worker_bundle, worker_inputs_digest, worker_node, worker_pki,
};
