//! What a cluster is, as recorded once at seed time: its name and id, its
//! ranges and versions, and its first master. The workstation keeps it as
//! `cluster.json` in the state directory; the cluster keeps the same JSON in
//! the operator's ConfigMap, so both build the same [`ClusterSpec`] from it.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::pki::{KeyAlgorithm, Validity};

use super::spec::{
    ApiEndpoint, ClusterSpec, DEFAULT_ETCD_VERSION, DEFAULT_KUBERNETES_VERSION, EtcdMember, Member,
};

/// What `cluster.json` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRecord {
    /// Cluster name (kubeconfigs, the state directory).
    pub name: String,
    /// A random id, written on the seed host too, that tells this cluster's
    /// hosts from another cluster's.
    pub id: String,
    /// Kubernetes version of the components.
    pub kubernetes_version: String,
    /// etcd version.
    pub etcd_version: String,
    /// Service range.
    pub service_cidr: String,
    /// Pod range.
    pub pod_cidr: String,
    /// Each node's slice of the pod range.
    pub node_cidr_mask: u8,
    /// Cluster DNS domain.
    pub cluster_domain: String,
    /// The API endpoint clients use.
    pub endpoint_port: u16,
    /// The seed host.
    pub seed: SeedRecord,
}

/// The first master, as it was seeded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedRecord {
    /// SSH address.
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// SSH user.
    pub user: String,
    /// Node and etcd member name.
    pub node_name: String,
    /// Address the components advertise.
    pub advertise_address: IpAddr,
}

impl ClusterRecord {
    /// The seed as a control-plane member.
    pub fn seed_member(&self) -> Member {
        Member::new(self.seed.node_name.clone(), self.seed.advertise_address)
    }

    /// The cluster description with the seed as its only member.
    pub fn spec(&self) -> ClusterSpec {
        let seed = self.seed_member();
        let etcd = EtcdMember::new(seed.name.clone(), self.seed.advertise_address);
        self.spec_with(vec![seed], vec![etcd])
    }

    /// The cluster description with the members it has now: the operator's
    /// view, where masters and etcd members come and go.
    pub fn spec_with(&self, control_plane: Vec<Member>, etcd: Vec<EtcdMember>) -> ClusterSpec {
        ClusterSpec {
            cluster_name: self.name.clone(),
            cluster_domain: self.cluster_domain.clone(),
            service_cidr: self.service_cidr.clone(),
            pod_cidr: self.pod_cidr.clone(),
            node_cidr_mask: self.node_cidr_mask,
            kubernetes_version: self.kubernetes_version.clone(),
            etcd_version: self.etcd_version.clone(),
            control_plane,
            etcd,
            endpoint: ApiEndpoint {
                port: self.endpoint_port,
                ..ApiEndpoint::default()
            },
            extra_sans: Vec::new(),
            key_algorithm: KeyAlgorithm::default(),
            validity: Validity::default(),
        }
    }

    /// Defaults for a new cluster seeded on `seed`.
    pub fn new(name: &str, seed: SeedRecord) -> Self {
        ClusterRecord {
            name: name.to_owned(),
            id: random_hex(16),
            kubernetes_version: DEFAULT_KUBERNETES_VERSION.into(),
            etcd_version: DEFAULT_ETCD_VERSION.into(),
            service_cidr: "10.96.0.0/12".into(),
            pod_cidr: "10.244.0.0/16".into(),
            node_cidr_mask: 24,
            cluster_domain: "cluster.local".into(),
            endpoint_port: 6443,
            seed,
        }
    }
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}
