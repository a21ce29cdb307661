//! What `use-endpoint` changes, decided from the two cluster records alone:
//! the workstation's (`cluster.json` in the state directory) and the
//! cluster's (ConfigMap `kubeseed-system/kubeseed-cluster`).

use anyhow::{Context as _, bail};

use crate::state::ClusterRecord;

/// Where the docs show how to apply a load balancer.
pub const LOAD_BALANCER_EXAMPLE: &str = "docs/examples/load-balancer-pair.yaml";

/// The endpoint to switch to, and the local record that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointPlan {
    /// `https://host:port` of the load-balanced endpoint, as the masters
    /// compute it (`ClusterSpec::server_url`).
    pub server: String,
    /// The local record with the cluster's endpoint fields (VIP, DNS names,
    /// balancer port) and nothing else of the cluster's.
    pub record: ClusterRecord,
}

impl EndpointPlan {
    /// The endpoint as one line: `https://… (endpointVip …, …)`.
    pub fn describe(&self) -> String {
        describe_endpoint(&self.record)
    }
}

/// `endpointVip 10.0.0.100, endpointDnsNames [a, b], balancerPort 8443`,
/// or `no VIP or DNS name`.
pub fn describe_endpoint(record: &ClusterRecord) -> String {
    let mut parts = Vec::new();
    if let Some(vip) = record.endpoint_vip {
        parts.push(format!("endpointVip {vip}"));
    }
    if !record.endpoint_dns_names.is_empty() {
        parts.push(format!(
            "endpointDnsNames [{}]",
            record.endpoint_dns_names.join(", ")
        ));
    }
    if let Some(port) = record.balancer_port {
        parts.push(format!("balancerPort {port}"));
    }
    if parts.is_empty() {
        "no VIP or DNS name".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Decides the switch. Refused, changing nothing: a record of another
/// cluster (another `id`), and a cluster with no VIP or DNS name yet.
pub fn plan(local: &ClusterRecord, cluster: &ClusterRecord) -> anyhow::Result<EndpointPlan> {
    if cluster.id != local.id {
        bail!(
            "wrong cluster: the admin kubeconfig reaches cluster {:?} (id {}), but the state \
             directory records cluster {:?} (id {}); nothing was changed. Check which cluster \
             that kubeconfig's server belongs to, or give the right --state-dir / --cluster-name",
            cluster.name,
            cluster.id,
            local.name,
            local.id
        );
    }
    if cluster.endpoint_vip.is_none() && cluster.endpoint_dns_names.is_empty() {
        bail!(
            "no ApiLoadBalancer has published a VIP yet: apply one; see {LOAD_BALANCER_EXAMPLE} \
             (the cluster's record names no endpointVip or endpointDnsNames). Once \
             `kubectl get apiloadbalancers` shows it serving, run this again; nothing was changed"
        );
    }
    let server = cluster
        .spec()
        .server_url()
        .context("cannot compute the endpoint from the cluster's record")?;
    let mut record = local.clone();
    record.endpoint_vip = cluster.endpoint_vip;
    record.endpoint_dns_names = cluster.endpoint_dns_names.clone();
    record.balancer_port = cluster.balancer_port;
    // The two records must now name the same endpoint, or a later
    // `bootstrap seed` would render another one than the masters use.
    let local_server = record
        .spec()
        .server_url()
        .context("cannot compute the endpoint from the merged local record")?;
    if local_server != server {
        bail!(
            "the cluster's record names the endpoint {server} but the state directory's, with the \
             cluster's endpoint fields, names {local_server} (endpointPort {} here, {} in the \
             cluster); nothing was changed",
            local.endpoint_port,
            cluster.endpoint_port
        );
    }
    Ok(EndpointPlan { server, record })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SeedRecord;

    fn local() -> ClusterRecord {
        ClusterRecord::new(
            "lab",
            SeedRecord {
                address: "10.213.0.11".into(),
                port: 22,
                user: "root".into(),
                node_name: "host1".into(),
                advertise_address: "10.213.0.11".parse().unwrap(),
            },
        )
    }

    #[test]
    fn the_vip_and_balancer_port_make_the_server() {
        let local = local();
        let mut cluster = local.clone();
        cluster.endpoint_vip = Some("10.213.0.100".parse().unwrap());
        let p = plan(&local, &cluster).unwrap();
        assert_eq!(p.server, "https://10.213.0.100:6443");
        cluster.balancer_port = Some(8443);
        let p = plan(&local, &cluster).unwrap();
        assert_eq!(p.server, "https://10.213.0.100:8443");
        assert_eq!(p.record.endpoint_vip, cluster.endpoint_vip);
        assert_eq!(p.record.balancer_port, Some(8443));
        assert_eq!(p.describe(), "endpointVip 10.213.0.100, balancerPort 8443");
        cluster.endpoint_dns_names = vec!["api.lab.example".into()];
        let p = plan(&local, &cluster).unwrap();
        assert_eq!(p.server, "https://api.lab.example:8443");
        assert_eq!(p.record.endpoint_dns_names, vec!["api.lab.example"]);
        // IPv6 VIPs are bracketed, as the masters write them.
        cluster.endpoint_dns_names.clear();
        cluster.endpoint_vip = Some("fd00::100".parse().unwrap());
        assert_eq!(
            plan(&local, &cluster).unwrap().server,
            "https://[fd00::100]:8443"
        );
    }

    #[test]
    fn only_the_endpoint_fields_are_taken_from_the_cluster() {
        let local = local();
        let mut cluster = local.clone();
        cluster.endpoint_vip = Some("10.213.0.100".parse().unwrap());
        cluster.kubernetes_version = "v1.99.0".into();
        cluster.pod_cidr = "10.99.0.0/16".into();
        cluster.seed.user = "someone".into();
        let p = plan(&local, &cluster).unwrap();
        let mut want = local.clone();
        want.endpoint_vip = cluster.endpoint_vip;
        assert_eq!(p.record, want);
        // The same plan again changes nothing more.
        assert_eq!(plan(&p.record, &cluster).unwrap().record, p.record);
    }

    #[test]
    fn another_cluster_is_refused() {
        let mine = local();
        let mut cluster = local();
        cluster.endpoint_vip = Some("10.213.0.100".parse().unwrap());
        assert_ne!(cluster.id, mine.id);
        let err = plan(&mine, &cluster).unwrap_err().to_string();
        assert!(err.starts_with("wrong cluster"), "{err}");
        assert!(err.contains(&cluster.id) && err.contains(&mine.id), "{err}");
    }

    #[test]
    fn no_vip_yet_is_refused_with_what_to_do() {
        let local = local();
        let err = plan(&local, &local.clone()).unwrap_err().to_string();
        assert!(
            err.starts_with("no ApiLoadBalancer has published a VIP yet: apply one; see docs/"),
            "{err}"
        );
    }

    #[test]
    fn a_different_endpoint_port_is_refused() {
        let local = local();
        let mut cluster = local.clone();
        cluster.endpoint_vip = Some("10.213.0.100".parse().unwrap());
        cluster.endpoint_port = 7443;
        let err = plan(&local, &cluster).unwrap_err().to_string();
        assert!(err.contains("endpointPort 6443 here, 7443"), "{err}");
    }
}
