//! The cluster description every other part works from: the PKI issues
//! certificates from it, the renderers turn it into configuration files and
//! units, the plans into tasks. Pure data and checks, no I/O.

mod cidr;
mod node;
mod record;
mod spec;

pub use cidr::Cidr;
pub use node::{CgroupDriver, CgroupVersion, HostProfile, NodeRole, NodeSpec, Taint};
pub use record::{ClusterRecord, SeedRecord};
pub use spec::{
    ApiEndpoint, ClusterSpec, DEFAULT_ETCD_VERSION, DEFAULT_KUBERNETES_VERSION, ETCD_CLIENT_PORT,
    ETCD_DATA_DIR, ETCD_PEER_PORT, EtcdMember, Member, PodNetwork, url_for,
};
