//! What a new cluster gets once its API answers, as `kubeadm init` does it:
//! the RBAC that lets workers join with bootstrap tokens, and cluster DNS.
//! Applied from the first master with its own kubeconfig (see
//! [`super::kubectl`]), so the workstation needs no route to the API.

use crate::cluster::ClusterSpec;
use crate::host::Host;
use crate::pki::profiles;
use crate::render::{ClusterDnsInput, RenderError, Upstream};
use crate::ssh::{ExecOptions, SshError};
use crate::tasks::Task;

use super::kubectl::{ApiAccess, KubectlApply};

/// CoreDNS replicas: two, as kubeadm, preferring different nodes.
pub const COREDNS_REPLICAS: u32 = 2;

/// Whether `host` knows a nameserver for names outside the cluster (CoreDNS
/// forwards to the nameservers of the node it runs on, and refuses to start
/// with none).
pub async fn upstream_of(host: &dyn Host) -> Result<Upstream, SshError> {
    let out = host
        .exec(
            "grep -qs '^[[:space:]]*nameserver[[:space:]]' /etc/resolv.conf",
            ExecOptions::sudo(),
        )
        .await?;
    Ok(if out.status.success() {
        Upstream::ResolvConf
    } else {
        Upstream::None
    })
}

/// The add-ons' tasks, applied through `access`: the node-bootstrap RBAC,
/// then CoreDNS with `coredns_image` (from the bundle, imported on every
/// node).
pub fn addons(
    spec: &ClusterSpec,
    access: &ApiAccess,
    coredns_image: &str,
    upstream: Upstream,
) -> Result<Vec<Box<dyn Task>>, RenderError> {
    let dns = ClusterDnsInput {
        spec,
        image: coredns_image,
        upstream,
        replicas: COREDNS_REPLICAS,
    }
    .manifests()?;
    Ok(vec![
        Box::new(KubectlApply::new(
            "rbac/node-bootstrap",
            "let workers join with bootstrap tokens (TLS bootstrapping, client certificate renewal)",
            access.clone(),
            profiles::NODE_BOOTSTRAP_RBAC,
        )),
        Box::new(KubectlApply::new(
            "addons/cluster-dns",
            "deploy cluster DNS (CoreDNS, Service kube-dns)",
            access.clone(),
            dns,
        )),
    ])
}
