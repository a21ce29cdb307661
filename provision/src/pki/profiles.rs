//! The leaf certificates of a kubeadm-style control plane, one constructor each.
//!
//! Names and groups follow kubeadm ≥ 1.29 so that RBAC defaults, the
//! `kubeadm:cluster-admins` binding and the tooling people know all apply:
//! `admin.conf` is an ordinary cluster-admin (revocable by deleting a
//! ClusterRoleBinding) and only `super-admin.conf` is in `system:masters`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::leaf::{LeafSpec, Usage};
use super::san::{SubjectAltName, push_unique};

/// Group of `admin.conf`, bound to `cluster-admin` by [`CLUSTER_ADMINS_BINDING`].
pub const CLUSTER_ADMINS_GROUP: &str = "kubeadm:cluster-admins";
/// The group that bypasses RBAC entirely; only `super-admin.conf` carries it.
pub const SYSTEM_MASTERS_GROUP: &str = "system:masters";
/// Group of kubelet client certificates (Node authorizer).
pub const NODES_GROUP: &str = "system:nodes";

/// The ClusterRoleBinding that gives [`CLUSTER_ADMINS_GROUP`] cluster-admin
/// rights. Apply it with `super-admin.conf` once the API is up, as
/// `kubeadm init` does; until then `admin.conf` can authenticate but not act.
pub const CLUSTER_ADMINS_BINDING: &str = "\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kubeadm:cluster-admins
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: kubeadm:cluster-admins
";

/// What lets a worker's kubelet join with a bootstrap token, as `kubeadm
/// init` sets it up: the token's group may create CSRs
/// (`system:node-bootstrapper`), its client CSR is approved by
/// kube-controller-manager (`nodeclient`), and nodes' renewals of their own
/// client certificates are too (`selfnodeclient`). Serving certificates are
/// not auto-approved here: the operator checks each against its
/// `WorkerNode`.
pub const NODE_BOOTSTRAP_RBAC: &str = "\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kubeadm:kubelet-bootstrap
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:node-bootstrapper
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: system:bootstrappers:kubeadm:default-node-token
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kubeadm:node-autoapprove-bootstrap
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:certificates.k8s.io:certificatesigningrequests:nodeclient
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: system:bootstrappers:kubeadm:default-node-token
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kubeadm:node-autoapprove-certificate-rotation
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:certificates.k8s.io:certificatesigningrequests:selfnodeclient
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: Group
  name: system:nodes
";

/// kube-apiserver's serving certificate. `sans` come from the cluster
/// description (see `ClusterSpec::apiserver_sans`).
pub fn apiserver(sans: Vec<SubjectAltName>) -> LeafSpec {
    LeafSpec {
        common_name: "kube-apiserver".into(),
        organizations: Vec::new(),
        sans,
        usage: Usage::Server,
    }
}

/// kube-apiserver's client certificate towards kubelets (logs, exec, port-forward).
/// In `kubeadm:cluster-admins` (kubeadm ≥ 1.29), so kubelets authorise it only
/// once [`CLUSTER_ADMINS_BINDING`] is applied.
pub fn apiserver_kubelet_client() -> LeafSpec {
    LeafSpec::client("kube-apiserver-kubelet-client", &[CLUSTER_ADMINS_GROUP])
}

/// kube-apiserver's client certificate towards etcd (etcd CA).
pub fn apiserver_etcd_client() -> LeafSpec {
    LeafSpec::client("kube-apiserver-etcd-client", &[])
}

/// kube-apiserver's client certificate for aggregated APIs (front-proxy CA).
/// Its CN must be in `--requestheader-allowed-names`.
pub fn front_proxy_client() -> LeafSpec {
    LeafSpec::client("front-proxy-client", &[])
}

/// Client certificate for etcd health checks (etcd CA).
pub fn etcd_healthcheck_client() -> LeafSpec {
    LeafSpec::client("kube-etcd-healthcheck-client", &[])
}

/// etcd's client-facing serving certificate for one member: its name, its
/// addresses and loopback (a stacked apiserver dials 127.0.0.1:2379). Also
/// `clientAuth`, because etcd's gateway dials itself with it.
pub fn etcd_server(name: &str, addresses: &[IpAddr]) -> LeafSpec {
    let mut sans = vec![
        SubjectAltName::Dns(name.to_owned()),
        SubjectAltName::Dns("localhost".into()),
    ];
    for ip in addresses {
        push_unique(&mut sans, SubjectAltName::Ip(*ip));
    }
    push_unique(
        &mut sans,
        SubjectAltName::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    );
    push_unique(
        &mut sans,
        SubjectAltName::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
    );
    LeafSpec {
        common_name: name.to_owned(),
        organizations: Vec::new(),
        sans,
        usage: Usage::ServerAndClient,
    }
}

/// etcd's peer certificate for one member: presented to and checked by the
/// other members, so only the member's own name and addresses.
pub fn etcd_peer(name: &str, addresses: &[IpAddr]) -> LeafSpec {
    let mut sans = vec![SubjectAltName::Dns(name.to_owned())];
    for ip in addresses {
        push_unique(&mut sans, SubjectAltName::Ip(*ip));
    }
    LeafSpec {
        common_name: name.to_owned(),
        organizations: Vec::new(),
        sans,
        usage: Usage::ServerAndClient,
    }
}

/// `admin.conf`: cluster-admin through the [`CLUSTER_ADMINS_BINDING`].
pub fn admin() -> LeafSpec {
    LeafSpec::client("kubernetes-admin", &[CLUSTER_ADMINS_GROUP])
}

/// `super-admin.conf`: `system:masters`, bypasses RBAC; for break-glass use only.
pub fn super_admin() -> LeafSpec {
    LeafSpec::client("kubernetes-super-admin", &[SYSTEM_MASTERS_GROUP])
}

/// `controller-manager.conf`.
pub fn controller_manager() -> LeafSpec {
    LeafSpec::client("system:kube-controller-manager", &[])
}

/// `scheduler.conf`.
pub fn scheduler() -> LeafSpec {
    LeafSpec::client("system:kube-scheduler", &[])
}

/// A kubelet's client certificate (`kubelet.conf`) for a host that is not
/// TLS-bootstrapped: the Node authorizer's `system:node:<name>`.
pub fn kubelet_client(node_name: &str) -> LeafSpec {
    LeafSpec::client(format!("system:node:{node_name}"), &[NODES_GROUP])
}

/// `kube-proxy.conf`: user `system:kube-proxy`, which the default RBAC
/// binds to the `system:node-proxier` ClusterRole. Every node's kube-proxy
/// shares it, as every kubeadm node's kube-proxy shares one ServiceAccount.
pub fn kube_proxy() -> LeafSpec {
    LeafSpec::client("system:kube-proxy", &[])
}

/// A kubelet's serving certificate (port 10250) with the node's name and addresses.
pub fn kubelet_serving(node_name: &str, addresses: &[IpAddr]) -> LeafSpec {
    let mut sans = vec![SubjectAltName::Dns(node_name.to_owned())];
    for ip in addresses {
        push_unique(&mut sans, SubjectAltName::Ip(*ip));
    }
    LeafSpec {
        common_name: format!("system:node:{node_name}"),
        organizations: vec![NODES_GROUP.to_owned()],
        sans,
        usage: Usage::Server,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_super_admin_is_in_system_masters() {
        assert_eq!(super_admin().organizations, [SYSTEM_MASTERS_GROUP]);
        for spec in [
            admin(),
            apiserver_kubelet_client(),
            controller_manager(),
            scheduler(),
        ] {
            assert!(
                !spec.organizations.iter().any(|o| o == SYSTEM_MASTERS_GROUP),
                "{spec:?}"
            );
        }
        assert!(CLUSTER_ADMINS_BINDING.contains(CLUSTER_ADMINS_GROUP));
    }

    #[test]
    fn etcd_member_names_itself_and_loopback_only_when_serving() {
        let ip: IpAddr = "10.0.0.11".parse().unwrap();
        let server = etcd_server("etcd-1", &[ip]);
        assert!(
            server
                .sans
                .contains(&SubjectAltName::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)))
        );
        let peer = etcd_peer("etcd-1", &[ip]);
        assert_eq!(
            peer.sans,
            [SubjectAltName::Dns("etcd-1".into()), SubjectAltName::Ip(ip)]
        );
        assert_eq!(peer.usage, Usage::ServerAndClient);
    }

    #[test]
    fn kubelet_identity_is_the_node() {
        let c = kubelet_client("worker-1");
        assert_eq!(c.common_name, "system:node:worker-1");
        assert_eq!(c.organizations, [NODES_GROUP]);
    }

    #[test]
    fn kube_proxy_is_the_user_node_proxier_is_bound_to() {
        let p = kube_proxy();
        assert_eq!(p.common_name, "system:kube-proxy");
        assert!(p.organizations.is_empty());
        assert_eq!(p.usage, Usage::Client);
    }
}
