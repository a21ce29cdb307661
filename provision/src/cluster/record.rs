//! What a cluster is, as recorded once at seed time: its name and id, its
//! ranges and versions, and its first master. The workstation keeps it as
//! `cluster.json` in the state directory; the cluster keeps the same JSON in
//! the operator's ConfigMap, so both build the same [`ClusterSpec`] from it.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::pki::{KeyAlgorithm, Validity};

use super::spec::{
    ApiEndpoint, ClusterSpec, DEFAULT_ETCD_VERSION, DEFAULT_KUBERNETES_VERSION, EtcdMember, Member,
    PodNetwork,
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
    /// Who configures the Pod network (absent in records of clusters seeded
    /// before it could be chosen: kubeseed's bridge).
    #[serde(default)]
    pub pod_network: PodNetwork,
    /// Cluster DNS domain.
    pub cluster_domain: String,
    /// The API endpoint clients use.
    pub endpoint_port: u16,
    /// The balancer's VIP clients use, once there is one. Every master's
    /// serving certificate names it, and `admin.conf` points at it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_vip: Option<IpAddr>,
    /// DNS names of the endpoint (the first is what kubeconfigs name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoint_dns_names: Vec<String>,
    /// The port the balancer listens on at the VIP, when it is not
    /// `endpoint_port` (the apiservers' own port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balancer_port: Option<u16>,
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
            pod_network: self.pod_network,
            kubernetes_version: self.kubernetes_version.clone(),
            etcd_version: self.etcd_version.clone(),
            control_plane,
            etcd,
            endpoint: ApiEndpoint {
                port: self.endpoint_port,
                vip: self.endpoint_vip,
                dns_names: self.endpoint_dns_names.clone(),
                balancer_port: self.balancer_port,
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
            pod_network: PodNetwork::default(),
            cluster_domain: "cluster.local".into(),
            endpoint_port: 6443,
            endpoint_vip: None,
            endpoint_dns_names: Vec::new(),
            balancer_port: None,
            seed,
        }
    }
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plans::cluster_inputs_digest;

    fn record() -> ClusterRecord {
        ClusterRecord::new(
            "lab",
            SeedRecord {
                address: "10.0.0.11".into(),
                port: 22,
                user: "root".into(),
                node_name: "host1".into(),
                advertise_address: "10.0.0.11".parse().unwrap(),
            },
        )
    }

    #[test]
    fn the_seed_and_the_operator_see_the_same_cluster_inputs() {
        // The seed records the digest from its spec; the operator composes
        // the seed's member from its objects. Equal, or the operator would
        // provision the seed again for nothing.
        let r = record();
        let seed = cluster_inputs_digest(&r.spec(), "host1").unwrap();
        let operator = r.spec_with(
            vec![Member::new("host1", r.seed.advertise_address)],
            vec![EtcdMember::new("host1", r.seed.advertise_address)],
        );
        assert_eq!(seed, cluster_inputs_digest(&operator, "host1").unwrap());
    }

    #[test]
    fn a_vip_or_endpoint_name_changes_the_cluster_inputs() {
        let mut r = record();
        let before = cluster_inputs_digest(&r.spec(), "host1").unwrap();
        r.endpoint_vip = Some("10.0.0.100".parse().unwrap());
        let with_vip = cluster_inputs_digest(&r.spec(), "host1").unwrap();
        assert_ne!(before, with_vip);
        r.endpoint_dns_names = vec!["api.lab.example".into()];
        let with_name = cluster_inputs_digest(&r.spec(), "host1").unwrap();
        assert_ne!(with_vip, with_name);
        r.balancer_port = Some(8443);
        assert_ne!(
            with_name,
            cluster_inputs_digest(&r.spec(), "host1").unwrap()
        );
        assert_eq!(
            r.spec().server_url().unwrap(),
            "https://api.lab.example:8443"
        );
        // An older cluster.json, without the fields, still reads.
        let mut json = serde_json::to_value(record()).unwrap();
        json.as_object_mut().unwrap().remove("endpointVip");
        let back: ClusterRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back.endpoint_vip, None);
    }
}
