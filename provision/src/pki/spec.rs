//! The description of a cluster that its certificates are made from.

use std::net::{IpAddr, Ipv4Addr};

use super::algorithm::KeyAlgorithm;
use super::error::{PkiError, Result};
use super::san::{self, SubjectAltName, push_unique};
use super::validity::Validity;

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

    fn check(&self, what: &'static str) -> Result<()> {
        san::check_object_name(what, &self.name)?;
        if self.addresses.is_empty() {
            return Err(PkiError::InvalidSpec(format!(
                "{what} {:?} has no address; give at least the address it advertises",
                self.name
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
    /// The port clients dial (6443).
    pub port: u16,
}

impl Default for ApiEndpoint {
    fn default() -> Self {
        Self {
            vip: None,
            dns_names: Vec::new(),
            port: 6443,
        }
    }
}

/// Everything the cluster's certificates depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// Cluster name in kubeconfigs (kubeadm: `kubernetes`).
    pub cluster_name: String,
    /// Cluster DNS domain (`cluster.local`).
    pub cluster_domain: String,
    /// kube-apiserver's `--service-cluster-ip-range`.
    pub service_cidr: String,
    /// Control-plane members (masters). At least one.
    pub control_plane: Vec<Member>,
    /// etcd members; for a stacked topology the same names and addresses as
    /// the control plane.
    pub etcd: Vec<Member>,
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
        Self {
            cluster_name: "kubernetes".into(),
            cluster_domain: "cluster.local".into(),
            service_cidr: "10.96.0.0/12".into(),
            control_plane: vec![first.clone()],
            etcd: vec![first],
            endpoint: ApiEndpoint::default(),
            extra_sans: Vec::new(),
            key_algorithm: KeyAlgorithm::default(),
            validity: Validity::default(),
        }
    }

    /// Checks every input, naming the first bad one.
    pub fn check(&self) -> Result<()> {
        san::check_object_name("cluster name", &self.cluster_name)?;
        san::check_object_name("cluster domain", &self.cluster_domain)?;
        san::first_service_ip(&self.service_cidr)?;
        self.validity.check()?;
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
        for (what, members) in [
            ("control-plane member", &self.control_plane),
            ("etcd member", &self.etcd),
        ] {
            for (i, m) in members.iter().enumerate() {
                m.check(what)?;
                if members[..i].iter().any(|o| o.name == m.name) {
                    return Err(PkiError::InvalidSpec(format!(
                        "{what} {:?} is listed twice; names must be unique",
                        m.name
                    )));
                }
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
        san::first_service_ip(&self.service_cidr)
    }

    /// SANs of the API serving certificate for control-plane member `member`:
    /// its own name, every control-plane address (so one member's certificate
    /// stays valid behind the balancer), the service IP and names, loopback,
    /// the endpoint's VIP and names, and the extra SANs.
    pub fn apiserver_sans(&self, member: &str) -> Result<Vec<SubjectAltName>> {
        let mut sans = Vec::new();
        if let Some(m) = self.control_plane.iter().find(|m| m.name == member) {
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
        for m in &self.control_plane {
            for ip in &m.addresses {
                push_unique(&mut sans, SubjectAltName::Ip(*ip));
            }
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
            return Ok(format!("https://{name}:{}", self.endpoint.port));
        }
        let ip = match self.endpoint.vip {
            Some(vip) => vip,
            None => self.first_master_address()?,
        };
        Ok(url_for(ip, self.endpoint.port))
    }

    /// `https://address:port` of one member's own API server, which its
    /// controller-manager and scheduler use (as kubeadm does), so they do
    /// not depend on the balancer.
    pub fn local_server_url(&self, member: &Member) -> Result<String> {
        let ip = member.addresses.first().copied().ok_or_else(|| {
            PkiError::InvalidSpec(format!("member {:?} has no address", member.name))
        })?;
        Ok(url_for(ip, self.endpoint.port))
    }

    fn first_master_address(&self) -> Result<IpAddr> {
        self.control_plane
            .first()
            .and_then(|m| m.addresses.first().copied())
            .ok_or_else(|| PkiError::InvalidSpec("no control-plane member with an address".into()))
    }
}

fn url_for(ip: IpAddr, port: u16) -> String {
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
        spec.etcd.push(Member::new("master-2", ip("10.213.0.12")));
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
            "IP:10.213.0.12",
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
        let unique: std::collections::BTreeSet<_> = sans.iter().collect();
        assert_eq!(unique.len(), sans.len(), "duplicates in {sans:?}");
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
        spec.etcd[0].addresses.clear();
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
