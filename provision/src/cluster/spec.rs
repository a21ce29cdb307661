//! The typed description of a cluster: what its certificates are made from
//! and what every component's configuration is rendered from.

use std::net::{IpAddr, Ipv4Addr};

use crate::pki::{KeyAlgorithm, PkiError, Result, SubjectAltName, Validity};
use crate::pki::{check_object_name, first_service_ip, push_unique};

use super::cidr::Cidr;

/// Who gives Pods their network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PodNetwork {
    /// kubeseed: the containernetworking `bridge` and `host-local` plugins
    /// with each node's slice of the pod range, and routes between nodes.
    #[default]
    Bridge,
    /// Nobody yet: the user installs a CNI (Calico, Cilium, flannel...).
    /// Nodes stay NotReady and CoreDNS Pending until it is there; node
    /// ranges are still allocated, for CNIs that use them.
    None,
}

impl PodNetwork {
    /// Whether kubeseed configures the nodes' Pod network itself.
    pub fn by_kubeseed(self) -> bool {
        self == PodNetwork::Bridge
    }
}

/// A host that holds certificates: its node/member name and the addresses
/// others reach it on (the first is the advertise address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Node name (control plane, workers) or etcd member name.
    pub name: String,
    /// Addresses of the host; the first one is advertised.
    pub addresses: Vec<IpAddr>,
}

impl Member {
    /// A member with one address.
    pub fn new(name: impl Into<String>, address: IpAddr) -> Self {
        Self {
            name: name.into(),
            addresses: vec![address],
        }
    }

    /// The address the member advertises (its first).
    pub fn advertise_address(&self) -> Result<IpAddr> {
        self.addresses
            .first()
            .copied()
            .ok_or_else(|| PkiError::InvalidSpec(format!("member {:?} has no address", self.name)))
    }

    fn check(&self, what: &'static str) -> Result<()> {
        check_object_name(what, &self.name)?;
        if self.addresses.is_empty() {
            return Err(PkiError::InvalidSpec(format!(
                "{what} {:?} has no address; give at least the address it advertises",
                self.name
            )));
        }
        Ok(())
    }
}

/// etcd's default client port.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// etcd's default peer port.
pub const ETCD_PEER_PORT: u16 = 2380;
/// etcd's default data directory.
pub const ETCD_DATA_DIR: &str = "/var/lib/etcd";

/// One etcd member: who it is and where it listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    /// Name and addresses (the first is advertised).
    pub member: Member,
    /// Port clients (kube-apiserver, etcdctl) connect to.
    pub client_port: u16,
    /// Port the other members connect to.
    pub peer_port: u16,
    /// Where the member keeps its data.
    pub data_dir: String,
}

impl EtcdMember {
    /// A member with etcd's default ports and data directory.
    pub fn new(name: impl Into<String>, address: IpAddr) -> Self {
        Self {
            member: Member::new(name, address),
            client_port: ETCD_CLIENT_PORT,
            peer_port: ETCD_PEER_PORT,
            data_dir: ETCD_DATA_DIR.into(),
        }
    }

    /// The member's name.
    pub fn name(&self) -> &str {
        &self.member.name
    }

    /// `https://address:client_port`.
    pub fn client_url(&self) -> Result<String> {
        Ok(url_for(self.member.advertise_address()?, self.client_port))
    }

    /// `https://address:peer_port`.
    pub fn peer_url(&self) -> Result<String> {
        Ok(url_for(self.member.advertise_address()?, self.peer_port))
    }

    fn check(&self) -> Result<()> {
        self.member.check("etcd member")?;
        if self.client_port == 0 || self.peer_port == 0 || self.client_port == self.peer_port {
            return Err(PkiError::InvalidSpec(format!(
                "etcd member {:?}: client port {} and peer port {} must be distinct, non-zero ports",
                self.member.name, self.client_port, self.peer_port
            )));
        }
        if !self.data_dir.starts_with('/') || self.data_dir.split('/').any(|c| c == "..") {
            return Err(PkiError::InvalidSpec(format!(
                "etcd member {:?}: data directory {:?} must be an absolute path without `..`",
                self.member.name, self.data_dir
            )));
        }
        Ok(())
    }
}

/// Where clients reach the API: the load balancer's VIP and DNS names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiEndpoint {
    /// The keepalived VIP in front of the API servers, if any.
    pub vip: Option<IpAddr>,
    /// DNS names of the endpoint; the first is used in kubeconfigs.
    pub dns_names: Vec<String>,
    /// The apiservers' port (6443), which clients dial when there is no
    /// balancer.
    pub port: u16,
    /// The port the balancer listens on at the VIP and DNS names, when it
    /// differs from `port` (a balancer on a master's host).
    pub balancer_port: Option<u16>,
}

impl ApiEndpoint {
    /// The port in the endpoint's URL: the balancer's once there is a VIP
    /// or a DNS name, else the apiservers'.
    pub fn client_port(&self) -> u16 {
        if self.vip.is_some() || !self.dns_names.is_empty() {
            self.balancer_port.unwrap_or(self.port)
        } else {
            self.port
        }
    }
}

impl Default for ApiEndpoint {
    fn default() -> Self {
        Self {
            vip: None,
            dns_names: Vec::new(),
            port: 6443,
            balancer_port: None,
        }
    }
}

/// The Kubernetes version kubeseed builds and tests with by default.
pub const DEFAULT_KUBERNETES_VERSION: &str = "v1.35.8";
/// The etcd version kubeseed builds and tests with by default.
pub const DEFAULT_ETCD_VERSION: &str = "v3.6.16";

/// Everything the cluster's certificates and component configurations depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Cluster name in kubeconfigs (kubeadm: `kubernetes`).
    pub cluster_name: String,
    /// Cluster DNS domain (`cluster.local`).
    pub cluster_domain: String,
    /// kube-apiserver's `--service-cluster-ip-range`.
    pub service_cidr: String,
    /// The range every Pod address comes from (`--cluster-cidr`); each node
    /// gets a slice of it.
    pub pod_cidr: String,
    /// Prefix length of each node's slice of `pod_cidr` (24: 254 Pods a node).
    pub node_cidr_mask: u8,
    /// Who configures the Pod network.
    pub pod_network: PodNetwork,
    /// Kubernetes version of every component, such as `v1.35.8`.
    pub kubernetes_version: String,
    /// etcd version, such as `v3.6.16`.
    pub etcd_version: String,
    /// Control-plane members (masters). At least one.
    pub control_plane: Vec<Member>,
    /// etcd members; for a stacked topology the same names and addresses as
    /// the control plane.
    pub etcd: Vec<EtcdMember>,
    /// The load-balanced API endpoint.
    pub endpoint: ApiEndpoint,
    /// More names or addresses for the API serving certificate.
    pub extra_sans: Vec<String>,
    /// Key algorithm of every generated key.
    pub key_algorithm: KeyAlgorithm,
    /// Certificate lifetimes.
    pub validity: Validity,
}

impl ClusterSpec {
    /// A stacked single-master cluster with kubeadm's defaults; add members,
    /// the endpoint and SANs by editing the fields.
    pub fn stacked(first: Member) -> Self {
        let etcd = EtcdMember {
            member: first.clone(),
            client_port: ETCD_CLIENT_PORT,
            peer_port: ETCD_PEER_PORT,
            data_dir: ETCD_DATA_DIR.into(),
        };
        Self {
            cluster_name: "kubernetes".into(),
            cluster_domain: "cluster.local".into(),
            service_cidr: "10.96.0.0/12".into(),
            pod_cidr: "10.244.0.0/16".into(),
            node_cidr_mask: 24,
            pod_network: PodNetwork::default(),
            kubernetes_version: DEFAULT_KUBERNETES_VERSION.into(),
            etcd_version: DEFAULT_ETCD_VERSION.into(),
            control_plane: vec![first],
            etcd: vec![etcd],
            endpoint: ApiEndpoint::default(),
            extra_sans: Vec::new(),
            key_algorithm: KeyAlgorithm::default(),
            validity: Validity::default(),
        }
    }

    /// Checks every input, naming the first bad one.
    pub fn check(&self) -> Result<()> {
        check_object_name("cluster name", &self.cluster_name)?;
        check_object_name("cluster domain", &self.cluster_domain)?;
        first_service_ip(&self.service_cidr)?;
        self.validity.check()?;
        check_version("Kubernetes", &self.kubernetes_version, 1)?;
        check_version("etcd", &self.etcd_version, 3)?;
        let pods = Cidr::parse(&self.pod_cidr).map_err(|reason| {
            PkiError::InvalidSpec(format!(
                "pod CIDR {:?}: {reason}; give a range such as 10.244.0.0/16",
                self.pod_cidr
            ))
        })?;
        let max = if pods.is_ipv4() { 30 } else { 126 };
        if self.node_cidr_mask < pods.prefix() || self.node_cidr_mask > max {
            return Err(PkiError::InvalidSpec(format!(
                "node CIDR mask /{} must lie between the pod CIDR's /{} and /{max}",
                self.node_cidr_mask,
                pods.prefix()
            )));
        }
        if let Ok(services) = Cidr::parse(self.service_cidr.split(',').next().unwrap_or_default())
            && services.overlaps(&pods)
        {
            return Err(PkiError::InvalidSpec(format!(
                "the pod CIDR {} overlaps the service CIDR {}; pick ranges that do not overlap",
                self.pod_cidr, self.service_cidr
            )));
        }
        if self.control_plane.is_empty() {
            return Err(PkiError::InvalidSpec(
                "no control-plane member; give at least the seed host".into(),
            ));
        }
        if self.etcd.is_empty() {
            return Err(PkiError::InvalidSpec(
                "no etcd member; a stacked control plane lists its masters as etcd members too"
                    .into(),
            ));
        }
        for (i, m) in self.control_plane.iter().enumerate() {
            m.check("control-plane member")?;
            if self.control_plane[..i].iter().any(|o| o.name == m.name) {
                return Err(PkiError::InvalidSpec(format!(
                    "control-plane member {:?} is listed twice; names must be unique",
                    m.name
                )));
            }
        }
        for (i, m) in self.etcd.iter().enumerate() {
            m.check()?;
            if self.etcd[..i].iter().any(|o| o.name() == m.name()) {
                return Err(PkiError::InvalidSpec(format!(
                    "etcd member {:?} is listed twice; names must be unique",
                    m.name()
                )));
            }
        }
        for name in &self.endpoint.dns_names {
            SubjectAltName::dns(name)?;
        }
        for extra in &self.extra_sans {
            extra.parse::<SubjectAltName>()?;
        }
        Ok(())
    }

    /// The `kubernetes` Service's ClusterIP.
    pub fn kubernetes_service_ip(&self) -> Result<IpAddr> {
        first_service_ip(&self.service_cidr)
    }

    /// The cluster DNS Service's ClusterIP: the tenth address of the service
    /// range, as kubeadm picks it.
    pub fn dns_service_ip(&self) -> Result<IpAddr> {
        let primary = self.service_cidr.split(',').next().unwrap_or_default();
        let cidr = Cidr::parse(primary).map_err(|reason| PkiError::InvalidServiceCidr {
            value: self.service_cidr.clone(),
            reason,
        })?;
        Ok(cidr.nth(10))
    }

    /// kube-apiserver's `--etcd-servers`: every member's client URL.
    pub fn etcd_servers(&self) -> Result<String> {
        let urls: Result<Vec<String>> = self.etcd.iter().map(EtcdMember::client_url).collect();
        Ok(urls?.join(","))
    }

    /// etcd's `--initial-cluster`: `name=peer-url` of every member.
    pub fn etcd_initial_cluster(&self) -> Result<String> {
        let pairs: Result<Vec<String>> = self
            .etcd
            .iter()
            .map(|m| Ok(format!("{}={}", m.name(), m.peer_url()?)))
            .collect();
        Ok(pairs?.join(","))
    }

    /// The etcd member called `name`.
    pub fn etcd_member(&self, name: &str) -> Result<&EtcdMember> {
        self.etcd.iter().find(|m| m.name() == name).ok_or_else(|| {
            PkiError::InvalidSpec(format!(
                "etcd member {name:?} is not in the cluster description (known: {})",
                self.etcd
                    .iter()
                    .map(EtcdMember::name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// The control-plane member called `name`.
    pub fn control_plane_member(&self, name: &str) -> Result<&Member> {
        self.control_plane
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| {
                PkiError::InvalidSpec(format!(
                    "control-plane member {name:?} is not in the cluster description (known: {})",
                    self.control_plane
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })
    }

    /// SANs of the API serving certificate for control-plane member `member`:
    /// its own name and addresses, the service IP and names, loopback, the
    /// endpoint's VIP and names, and the extra SANs. Other masters'
    /// addresses are left out on purpose: a member joining must not make
    /// every other apiserver's certificate stale.
    pub fn apiserver_sans(&self, member: &str) -> Result<Vec<SubjectAltName>> {
        let mut sans = Vec::new();
        let own = self.control_plane.iter().find(|m| m.name == member);
        if let Some(m) = own {
            push_unique(&mut sans, SubjectAltName::Dns(m.name.clone()));
        }
        for name in [
            "kubernetes".to_owned(),
            "kubernetes.default".to_owned(),
            "kubernetes.default.svc".to_owned(),
            format!("kubernetes.default.svc.{}", self.cluster_domain),
            "localhost".to_owned(),
        ] {
            push_unique(&mut sans, SubjectAltName::dns(&name)?);
        }
        push_unique(&mut sans, SubjectAltName::Ip(self.kubernetes_service_ip()?));
        push_unique(
            &mut sans,
            SubjectAltName::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        );
        if let Some(m) = own {
            for ip in &m.addresses {
                push_unique(&mut sans, SubjectAltName::Ip(*ip));
            }
        }
        if self.endpoint.vip.is_none()
            && self.endpoint.dns_names.is_empty()
            && let Ok(first) = self.first_master_address()
        {
            // Without a balancer the first master is the endpoint every
            // kubeconfig names.
            push_unique(&mut sans, SubjectAltName::Ip(first));
        }
        if let Some(vip) = self.endpoint.vip {
            push_unique(&mut sans, SubjectAltName::Ip(vip));
        }
        for name in &self.endpoint.dns_names {
            push_unique(&mut sans, SubjectAltName::dns(name)?);
        }
        for extra in &self.extra_sans {
            push_unique(&mut sans, extra.parse()?);
        }
        Ok(sans)
    }

    /// `https://host:port` of the load-balanced endpoint: its first DNS name,
    /// else the VIP, else the first master (a cluster without a balancer yet).
    pub fn server_url(&self) -> Result<String> {
        if let Some(name) = self.endpoint.dns_names.first() {
            return Ok(format!("https://{name}:{}", self.endpoint.client_port()));
        }
        let ip = match self.endpoint.vip {
            Some(vip) => vip,
            None => self.first_master_address()?,
        };
        Ok(url_for(ip, self.endpoint.client_port()))
    }

    /// `https://address:port` of one member's own API server, which its
    /// controller-manager, scheduler, kubelet and kube-proxy use (as kubeadm
    /// does), so they do not depend on the balancer.
    pub fn local_server_url(&self, member: &Member) -> Result<String> {
        Ok(url_for(member.advertise_address()?, self.endpoint.port))
    }

    fn first_master_address(&self) -> Result<IpAddr> {
        self.control_plane
            .first()
            .and_then(|m| m.addresses.first().copied())
            .ok_or_else(|| PkiError::InvalidSpec("no control-plane member with an address".into()))
    }
}

fn check_version(what: &str, version: &str, major: u32) -> Result<()> {
    let digits = version.strip_prefix('v').unwrap_or(version);
    let parts: Vec<&str> = digits.split('.').collect();
    let ok = version.starts_with('v')
        && parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && parts[0] == major.to_string();
    if ok {
        Ok(())
    } else {
        Err(PkiError::InvalidSpec(format!(
            "{what} version {version:?} is not of the form v{major}.MINOR.PATCH"
        )))
    }
}

/// `https://ip:port`, with brackets around IPv6 addresses.
pub fn url_for(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("https://{v4}:{port}"),
        IpAddr::V6(v6) => format!("https://[{v6}]:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ha() -> ClusterSpec {
        let mut spec = ClusterSpec::stacked(Member::new("master-1", ip("10.213.0.11")));
        spec.control_plane
            .push(Member::new("master-2", ip("10.213.0.12")));
        spec.etcd
            .push(EtcdMember::new("master-2", ip("10.213.0.12")));
        spec.endpoint.vip = Some(ip("10.213.0.100"));
        spec.endpoint.dns_names = vec!["api.lab.example".into()];
        spec.extra_sans = vec!["203.0.113.7".into(), "k8s.example.org".into()];
        spec
    }

    #[test]
    fn apiserver_sans_cover_every_way_in() {
        let spec = ha();
        spec.check().unwrap();
        let sans: Vec<String> = spec
            .apiserver_sans("master-1")
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        for want in [
            "DNS:master-1",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
            "DNS:localhost",
            "IP:10.96.0.1",
            "IP:127.0.0.1",
            "IP:10.213.0.11",
            "IP:10.213.0.100",
            "DNS:api.lab.example",
            "IP:203.0.113.7",
            "DNS:k8s.example.org",
        ] {
            assert!(
                sans.contains(&want.to_owned()),
                "{want} missing from {sans:?}"
            );
        }
        assert!(
            !sans.contains(&"IP:10.213.0.12".to_owned()),
            "another master's address must not be in master-1's certificate: {sans:?}"
        );
        let unique: std::collections::BTreeSet<_> = sans.iter().collect();
        assert_eq!(unique.len(), sans.len(), "duplicates in {sans:?}");
    }

    #[test]
    fn without_a_balancer_the_first_master_is_the_endpoint() {
        let mut spec = ha();
        spec.endpoint = ApiEndpoint::default();
        let sans: Vec<String> = spec
            .apiserver_sans("master-2")
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(sans.contains(&"IP:10.213.0.12".to_owned()), "{sans:?}");
        assert!(sans.contains(&"IP:10.213.0.11".to_owned()), "{sans:?}");
    }

    #[test]
    fn derived_addresses_and_urls() {
        let spec = ha();
        assert_eq!(spec.dns_service_ip().unwrap(), ip("10.96.0.10"));
        assert_eq!(
            spec.etcd_servers().unwrap(),
            "https://10.213.0.11:2379,https://10.213.0.12:2379"
        );
        assert_eq!(
            spec.etcd_initial_cluster().unwrap(),
            "master-1=https://10.213.0.11:2380,master-2=https://10.213.0.12:2380"
        );
    }

    #[test]
    fn versions_and_ranges_are_checked() {
        let mut spec = ha();
        spec.kubernetes_version = "1.35".into();
        assert!(
            spec.check()
                .unwrap_err()
                .to_string()
                .contains("v1.MINOR.PATCH")
        );
        let mut spec = ha();
        spec.pod_cidr = "10.96.0.0/16".into();
        assert!(spec.check().unwrap_err().to_string().contains("overlaps"));
        let mut spec = ha();
        spec.node_cidr_mask = 8;
        assert!(
            spec.check()
                .unwrap_err()
                .to_string()
                .contains("node CIDR mask")
        );
        let mut spec = ha();
        spec.etcd[0].peer_port = 2379;
        assert!(spec.check().unwrap_err().to_string().contains("distinct"));
    }

    #[test]
    fn server_url_prefers_the_balancer() {
        let mut spec = ha();
        assert_eq!(spec.server_url().unwrap(), "https://api.lab.example:6443");
        spec.endpoint.dns_names.clear();
        assert_eq!(spec.server_url().unwrap(), "https://10.213.0.100:6443");
        spec.endpoint.vip = None;
        assert_eq!(spec.server_url().unwrap(), "https://10.213.0.11:6443");
        let v6 = Member::new("m", ip("fd00::1"));
        assert_eq!(
            spec.local_server_url(&v6).unwrap(),
            "https://[fd00::1]:6443"
        );
    }

    #[test]
    fn bad_inputs_are_named() {
        let mut spec = ha();
        spec.extra_sans.push("https://oops".into());
        assert!(
            spec.check()
                .unwrap_err()
                .to_string()
                .contains("\"https://oops\"")
        );

        let mut spec = ha();
        spec.control_plane
            .push(Member::new("master-1", ip("10.213.0.13")));
        assert!(
            spec.check()
                .unwrap_err()
                .to_string()
                .contains("listed twice")
        );

        let mut spec = ha();
        spec.etcd[0].member.addresses.clear();
        assert!(
            spec.check()
                .unwrap_err()
                .to_string()
                .contains("has no address")
        );

        let mut spec = ha();
        spec.service_cidr = "10.96.0.0".into();
        assert!(
            spec.check()
                .unwrap_err()
                .to_string()
                .contains("service CIDR")
        );

        let mut spec = ha();
        spec.control_plane[0].name = "Master_1".into();
        assert!(
            spec.check()
                .unwrap_err()
                .to_string()
                .contains("control-plane member")
        );
    }
}
