//! The tasks that make a host a worker: the same host runtime as a master
//! (kernel settings, verified binaries, containerd, images from the bundle),
//! then a TLS-bootstrapped kubelet, CNI and kube-proxy talking to the
//! cluster's endpoint.
//!
//! The worker never holds a CA key or a certificate kubeseed issued for its
//! kubelet: it gets the CA certificate, a kubeconfig naming the client
//! certificate the kubelet obtains itself (signed by kube-controller-manager
//! once the bootstrap token authenticated its CSR), kube-proxy's kubeconfig,
//! and — only while that certificate does not exist yet — a short-lived
//! bootstrap token.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::cluster::{ClusterSpec, HostProfile, NodeRole, NodeSpec, Taint};
use crate::files::HostFiles;
use crate::pki::{BootstrapToken, ClusterCas, PkiError};
use crate::render::{KubeletCredentials, RenderError, paths};
use crate::ssh::shell::quote;
use crate::ssh::{ExecOptions, FileSpec};
use crate::tasks::{Check, Failure, Progress, Shell, Task, WriteFiles};

use super::control_plane::{BundleImage, BundleOnHost, host_runtime, node_tasks};
use super::kubectl::ApiAccess;

/// The certificate and key (one file) the kubelet obtains by TLS
/// bootstrapping and rotates.
pub const KUBELET_CLIENT_PEM: &str = "/var/lib/kubelet/pki/kubelet-client-current.pem";

/// Where a worker's programs come from in the bundle: no control-plane
/// binaries, no etcd, no helm.
pub const WORKER_PROGRAMS: &[&str] = &[
    "bin/kubelet",
    "bin/kube-proxy",
    "bin/kubectl",
    "bin/containerd",
    "bin/containerd-shim-runc-v2",
    "bin/ctr",
    "bin/runc",
    "cni/bridge",
    "cni/host-local",
    "cni/loopback",
    "cni/portmap",
];

/// What of the bundle a worker gets: its programs, and the pause and
/// CoreDNS images with their archives (CoreDNS Pods may land on it; the
/// operator's image stays on the masters).
pub fn worker_bundle(bundle: &BundleOnHost) -> BundleOnHost {
    let mut rels: Vec<&str> = WORKER_PROGRAMS.to_vec();
    rels.push(&bundle.pause.rel);
    rels.push(&bundle.coredns.rel);
    let mut on_host = bundle.only(&rels);
    on_host.images = vec![bundle.coredns.clone()];
    on_host
}

/// The label every worker's Node carries (as kubeadm users set it by hand;
/// only an administrator may set `node-role.kubernetes.io/*`, not the
/// kubelet: the operator adds it once the Node exists).
pub const WORKER_ROLE_LABEL: &str = "node-role.kubernetes.io/worker";

/// Everything a worker's plan is made from.
#[derive(Debug)]
pub struct WorkerInput<'a> {
    /// The cluster (its endpoint is what the worker talks to).
    pub spec: &'a ClusterSpec,
    /// The worker as a node: name, address, labels, taints, host profile.
    pub node: &'a NodeSpec,
    /// The CAs (only the cluster CA's certificate and kube-proxy's client
    /// certificate come from them).
    pub cas: &'a ClusterCas,
    /// The binaries and images; the images are the pause image and those in
    /// `images` (CoreDNS, so its Pods can land here).
    pub bundle: &'a BundleOnHost,
    /// The cluster's id, recorded on the host.
    pub cluster_id: &'a str,
    /// The bootstrap token when the kubelet has no client certificate yet;
    /// `None` on a re-run of a joined worker (no token is made for it).
    pub bootstrap: Option<&'a BootstrapToken>,
}

/// A worker's Node: the worker role label (set through the API, see
/// [`WORKER_ROLE_LABEL`]), no taint unless asked.
pub fn worker_node(name: &str, ip: IpAddr, host: HostProfile) -> NodeSpec {
    NodeSpec {
        name: name.to_owned(),
        ip,
        role: NodeRole::Worker,
        labels: BTreeMap::new(),
        taints: Vec::<Taint>::new(),
        kubelet_extra_args: BTreeMap::new(),
        kube_proxy_extra_args: BTreeMap::new(),
        host,
    }
}

/// The files a worker holds from kubeseed: the CA certificate, the
/// kubelet's kubeconfig (naming its own bootstrapped certificate) and
/// kube-proxy's. The bootstrap kubeconfig is not among them: see
/// [`BootstrapKubeconfig`].
pub fn worker_pki(cas: &ClusterCas, spec: &ClusterSpec, node: &str) -> Result<HostFiles, PkiError> {
    let mut files = cas.bootstrapped_kubelet_files(spec, node)?;
    files.extend(cas.kube_proxy_files(spec, &spec.server_url()?)?);
    Ok(files)
}

/// What a worker's configuration takes from the cluster rather than from
/// its object: the endpoint its kubelet and kube-proxy talk to. When it
/// changes (a VIP published), the plan runs again and rewrites their
/// kubeconfigs.
pub fn worker_inputs_digest(spec: &ClusterSpec) -> Result<String, PkiError> {
    use sha2::{Digest, Sha256};
    let text = format!("server={}\n", spec.server_url()?);
    Ok(format!(
        "sha256:{}",
        hex::encode(Sha256::digest(text.as_bytes()))
    ))
}

/// Why a worker's plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum WorkerPlanError {
    /// A configuration could not be rendered.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A certificate or kubeconfig could not be made.
    #[error(transparent)]
    Pki(#[from] PkiError),
}

/// The tasks that make the host a worker, in order.
pub fn worker(input: WorkerInput<'_>) -> Result<Vec<Box<dyn Task>>, WorkerPlanError> {
    let WorkerInput {
        spec,
        node,
        cas,
        bundle,
        cluster_id,
        bootstrap,
    } = input;
    let mut images: Vec<BundleImage> = vec![bundle.pause.clone()];
    images.extend(bundle.images.iter().cloned());
    let mut tasks = host_runtime(node, bundle, cluster_id, &images)?;

    let pki = worker_pki(cas, spec, &node.name)?;
    tasks.push(Box::new(WriteFiles::new(
        "pki/files",
        "write the cluster CA certificate and the kubelet's and kube-proxy's kubeconfigs",
        pki.clone(),
    )));
    if let Some(token) = bootstrap {
        tasks.push(Box::new(BootstrapKubeconfig {
            text: cas.bootstrap_kubeconfig(spec, token)?,
        }));
    }
    tasks.extend(node_tasks(
        spec,
        node,
        &pki,
        KubeletCredentials::Bootstrap,
        &ApiAccess::kubeconfig(paths::KUBELET_CONF),
    )?);
    // The token has done its work (and expires anyway): no secret is left
    // on the host once the kubelet holds its own certificate.
    tasks.push(Box::new(
        Shell::new(
            "kubelet/bootstrap-cleanup",
            "remove the bootstrap kubeconfig (the kubelet has its certificate)",
            format!("rm -f {}", quote(paths::BOOTSTRAP_KUBELET_CONF)),
        )
        .unless(
            format!("[ ! -e {} ]", quote(paths::BOOTSTRAP_KUBELET_CONF)),
            "a bootstrap kubeconfig is left",
        ),
    ));
    Ok(tasks)
}

/// Writes `bootstrap-kubelet.conf` (0600) unless the kubelet already holds
/// its client certificate: a re-run of a joined worker then neither needs a
/// token nor restarts anything.
#[derive(Clone)]
pub struct BootstrapKubeconfig {
    text: String,
}

impl std::fmt::Debug for BootstrapKubeconfig {
    // The kubeconfig carries the token's secret half.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BootstrapKubeconfig(<redacted>)")
    }
}

/// Whether the kubelet holds a client certificate (the bootstrap is done).
pub fn kubelet_bootstrapped_check() -> String {
    format!("[ -s {} ]", quote(KUBELET_CLIENT_PEM))
}

impl Task for BootstrapKubeconfig {
    fn id(&self) -> &str {
        "kubelet/bootstrap-kubeconfig"
    }

    fn describe(&self) -> String {
        "write the kubelet's bootstrap kubeconfig (a short-lived token)".into()
    }

    fn check<'a>(
        &'a self,
        host: &'a dyn crate::host::Host,
    ) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            let out = host
                .exec(&kubelet_bootstrapped_check(), ExecOptions::sudo())
                .await?;
            Ok(if out.status.success() {
                Check::UpToDate
            } else {
                Check::apply("the kubelet has no client certificate yet")
            })
        })
    }

    fn apply<'a>(
        &'a self,
        host: &'a dyn crate::host::Host,
        _progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            host.write_file(
                self.text.as_bytes(),
                paths::BOOTSTRAP_KUBELET_CONF,
                &FileSpec::mode(0o600),
            )
            .await?;
            Ok(())
        })
    }
}

/// How long the kubelet has to get its client certificate; also the
/// minimum lifetime of the token made for it.
pub const BOOTSTRAP_WINDOW: Duration = Duration::from_secs(15 * 60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inputs_digest_follows_the_endpoint_only() {
        let mut spec = crate::cluster::ClusterSpec::stacked(crate::cluster::Member::new(
            "master-1",
            "10.213.0.11".parse().unwrap(),
        ));
        let a = worker_inputs_digest(&spec).unwrap();
        spec.endpoint.dns_names = vec!["api.example".into()];
        let b = worker_inputs_digest(&spec).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("sha256:"));
    }
    fn plan_ids(network: crate::cluster::PodNetwork) -> Vec<String> {
        let mut spec = crate::cluster::ClusterSpec::stacked(crate::cluster::Member::new(
            "master-1",
            "10.213.0.11".parse().unwrap(),
        ));
        spec.pod_network = network;
        let cas = ClusterCas::generate(spec.key_algorithm, &spec.validity).unwrap();
        let image = |rel: &str, name: &str| BundleImage {
            rel: rel.into(),
            name: name.into(),
            sha256: "0".repeat(64),
        };
        let bundle = BundleOnHost {
            key: "0123456789abcdef".into(),
            artifacts: Vec::new(),
            manifests: Vec::new(),
            pause: image("images/pause.oci.tar", "localhost/kubeseed/pause:3.10.1"),
            coredns: image(
                "images/coredns.oci.tar",
                "localhost/kubeseed/coredns:1.15.0",
            ),
            images: Vec::new(),
        };
        let node = worker_node(
            "worker-1",
            "10.213.0.21".parse().unwrap(),
            HostProfile::default(),
        );
        let token = BootstrapToken::generate();
        worker(WorkerInput {
            spec: &spec,
            node: &node,
            cas: &cas,
            bundle: &bundle,
            cluster_id: "c0ffee",
            bootstrap: Some(&token),
        })
        .unwrap()
        .iter()
        .map(|t| t.id().to_owned())
        .collect()
    }

    #[test]
    fn a_worker_gets_the_archives_of_the_images_it_imports() {
        let image = |rel: &str| BundleImage {
            rel: rel.into(),
            name: rel.into(),
            sha256: "0".repeat(64),
        };
        let artifact = |rel: &str| super::super::StagedArtifact {
            rel: rel.into(),
            local: rel.into(),
            sha256: "0".repeat(64),
        };
        let mut all: Vec<&str> = WORKER_PROGRAMS.to_vec();
        all.extend([
            "bin/kube-apiserver",
            "bin/etcd",
            "images/pause.oci.tar",
            "images/coredns.oci.tar",
            "images/kubeseed-operator.oci.tar",
        ]);
        let bundle = BundleOnHost {
            key: "k".into(),
            artifacts: all.iter().map(|r| artifact(r)).collect(),
            manifests: Vec::new(),
            pause: image("images/pause.oci.tar"),
            coredns: image("images/coredns.oci.tar"),
            images: vec![
                image("images/kubeseed-operator.oci.tar"),
                image("images/coredns.oci.tar"),
            ],
        };
        let on_host = worker_bundle(&bundle);
        let rels: Vec<&str> = on_host.artifacts.iter().map(|a| a.rel.as_str()).collect();
        assert!(rels.contains(&"images/pause.oci.tar"), "{rels:?}");
        assert!(rels.contains(&"images/coredns.oci.tar"), "{rels:?}");
        assert!(
            !rels.contains(&"images/kubeseed-operator.oci.tar"),
            "{rels:?}"
        );
        assert!(!rels.contains(&"bin/kube-apiserver") && !rels.contains(&"bin/etcd"));
        let images: Vec<&str> = on_host.images.iter().map(|i| i.rel.as_str()).collect();
        assert_eq!(images, ["images/coredns.oci.tar"]);
    }

    #[test]
    fn a_user_cni_gets_no_bridge_and_no_wait_for_ready() {
        let ours = plan_ids(crate::cluster::PodNetwork::Bridge);
        assert!(ours.iter().any(|id| id == "cni/config"), "{ours:?}");
        assert!(ours.iter().any(|id| id == "node/ready"), "{ours:?}");
        let theirs = plan_ids(crate::cluster::PodNetwork::None);
        assert!(
            !theirs.iter().any(|id| id.starts_with("cni/")),
            "{theirs:?}"
        );
        assert!(!theirs.iter().any(|id| id == "node/ready"), "{theirs:?}");
        assert!(
            theirs.iter().any(|id| id == "kubelet/registered"),
            "{theirs:?}"
        );
    }
}
