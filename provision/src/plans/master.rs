//! What a master's plan is made from, composed the same way whether the
//! seed (`bootstrap seed`, on the workstation) or the operator (a joining
//! `ControlPlaneMember`, in the cluster) builds it: the verified bundle in
//! the shape plans take, the certificates the host should hold (keeping the
//! ones it holds that are still right), and the master's Node.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::bundle::{Bundle, VerifiedArtifact};
use crate::cluster::{ClusterSpec, HostProfile, NodeRole, NodeSpec, Taint};
use crate::files::HostFiles;
use crate::host::{Host, read_text_files};
use crate::pki::{ClusterCas, PkiError, keep_valid};
use crate::ssh::SshError;

use super::control_plane::{BundleImage, BundleOnHost};

/// The pause image's archive in every bundle.
pub const PAUSE_ARCHIVE: &str = "images/pause.oci.tar";
/// The CoreDNS image's archive in every bundle.
pub const COREDNS_ARCHIVE: &str = "images/coredns.oci.tar";
/// The operator image's archive in every bundle.
pub const OPERATOR_ARCHIVE: &str = "images/kubeseed-operator.oci.tar";

/// Why a master's plan could not be composed. Nothing was changed on the
/// host when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// The bundle lacks a file every master needs.
    #[error("the bundle has no {path}: rebuild it with `bash e2e/toolchain/bundle.sh`")]
    BundleIncomplete {
        /// The missing file, relative to the bundle.
        path: String,
    },
    /// A manifest beside the verified artifacts could not be read.
    #[error("cannot read the bundle's {}: {source}", path.display())]
    ReadManifest {
        /// The manifest.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A certificate could not be issued.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The host's existing certificates could not be read.
    #[error("cannot read the host's existing certificates: {0}")]
    ReadHost(#[source] Box<SshError>),
}

impl ComposeError {
    /// A stable reason for conditions and events.
    pub fn reason(&self) -> &'static str {
        match self {
            ComposeError::BundleIncomplete { .. } | ComposeError::ReadManifest { .. } => {
                "BundleInvalid"
            }
            ComposeError::Pki(_) => "CertificatesFailed",
            ComposeError::ReadHost(e) => e.reason(),
        }
    }
}

/// The verified bundle in the shape plans take: every artifact with its
/// sha256, the manifests kept beside them on the host, and the images.
pub fn bundle_on_host(
    bundle: &Bundle,
    verified: &[VerifiedArtifact],
) -> Result<BundleOnHost, ComposeError> {
    let artifacts = verified
        .iter()
        .map(|a| super::StagedArtifact {
            rel: a.path.clone(),
            local: a.local_path.clone(),
            sha256: a.sha256.to_hex(),
        })
        .collect();
    let image = |rel: &str, name: &str| -> Result<BundleImage, ComposeError> {
        let a = verified.iter().find(|a| a.path == rel).ok_or_else(|| {
            ComposeError::BundleIncomplete {
                path: rel.to_owned(),
            }
        })?;
        Ok(BundleImage {
            rel: rel.to_owned(),
            name: name.to_owned(),
            sha256: a.sha256.to_hex(),
        })
    };
    let coredns = image(COREDNS_ARCHIVE, bundle.versions().coredns_image())?;
    let mut manifests = Vec::new();
    for name in ["SHA256SUMS", "VERSIONS"] {
        let path = bundle.local_root().join(name);
        let bytes =
            std::fs::read(&path).map_err(|source| ComposeError::ReadManifest { path, source })?;
        manifests.push((name.to_owned(), bytes));
    }
    Ok(BundleOnHost {
        key: bundle.key().to_owned(),
        artifacts,
        manifests,
        pause: image(PAUSE_ARCHIVE, bundle.versions().pause_image())?,
        coredns: coredns.clone(),
        // CoreDNS tolerates the control-plane taint: at the seed, the masters
        // are the only nodes it can run on.
        images: vec![
            image(OPERATOR_ARCHIVE, bundle.versions().operator_image())?,
            coredns,
        ],
    })
}

/// Which master the certificates are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterOrdinal {
    /// The seed: it alone holds `super-admin.conf`, as with kubeadm ≥ 1.29,
    /// which `kubeadm init` writes and `kubeadm join` does not.
    First,
    /// A master that joined later.
    Joined,
}

/// Every certificate, key and kubeconfig a master holds: the control
/// plane's (its kubelet and kube-proxy talk to its own apiserver),
/// `super-admin.conf` on the first master only, and the cluster CA key for
/// kube-controller-manager's CSR signer. What the host already holds and is
/// still right is kept, so a re-run restarts nothing.
pub async fn master_pki(
    host: &dyn Host,
    cas: &ClusterCas,
    spec: &ClusterSpec,
    node: &str,
    ordinal: MasterOrdinal,
) -> Result<HostFiles, ComposeError> {
    let member = spec.control_plane_member(node)?;
    let mut fresh = cas.control_plane_files(spec, node)?;
    if ordinal == MasterOrdinal::First {
        fresh.extend(cas.super_admin_files(spec)?);
    }
    fresh.extend(cas.csr_signer_files());
    fresh.extend(cas.kube_proxy_files(spec, &spec.local_server_url(member)?)?);
    keep_what_is_right(host, cas, fresh).await
}

/// A standalone etcd member's certificates (with its `extraSANs`), keeping
/// the host's where they are still right, as [`master_pki`] does.
pub async fn etcd_member_pki(
    host: &dyn Host,
    cas: &ClusterCas,
    spec: &ClusterSpec,
    name: &str,
    extra_sans: &[crate::pki::SubjectAltName],
) -> Result<HostFiles, ComposeError> {
    let fresh = cas.etcd_member_files_with(spec, name, extra_sans)?;
    keep_what_is_right(host, cas, fresh).await
}

/// `fresh` with the host's copies kept where still right (so a re-run
/// restarts nothing).
async fn keep_what_is_right(
    host: &dyn Host,
    cas: &ClusterCas,
    fresh: HostFiles,
) -> Result<HostFiles, ComposeError> {
    let paths: Vec<PathBuf> = fresh.iter().map(|(p, _)| p.to_path_buf()).collect();
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let existing = read_text_files(host, &refs)
        .await
        .map_err(|e| ComposeError::ReadHost(Box::new(e)))?;
    Ok(keep_valid(
        cas,
        &fresh,
        &existing,
        time::OffsetDateTime::now_utc(),
    ))
}

/// What a master's configuration takes from the cluster rather than from
/// its own object: the names its serving certificate carries (the
/// endpoint's VIP and names among them), the endpoint its kubeconfigs name,
/// and the etcd members its apiserver talks to. Recorded in the member's
/// status when its plan ran; when it changes, the plan runs again (the
/// operator does that one master at a time), re-issuing what changed.
pub fn cluster_inputs_digest(
    spec: &ClusterSpec,
    node: &str,
) -> Result<String, crate::pki::PkiError> {
    use sha2::{Digest, Sha256};
    let sans: Vec<String> = spec
        .apiserver_sans(node)?
        .iter()
        .map(ToString::to_string)
        .collect();
    let text = format!(
        "sans={}\nserver={}\netcd={}\n",
        sans.join(","),
        spec.server_url()?,
        spec.etcd_servers()?
    );
    Ok(format!(
        "sha256:{}",
        hex::encode(Sha256::digest(text.as_bytes()))
    ))
}

/// A master's Node: the control-plane role label and taint, as kubeadm sets
/// them.
pub fn master_node(name: &str, ip: IpAddr, host: HostProfile) -> NodeSpec {
    NodeSpec {
        name: name.to_owned(),
        ip,
        role: NodeRole::ControlPlane,
        labels: BTreeMap::from([(
            "node-role.kubernetes.io/control-plane".to_owned(),
            String::new(),
        )]),
        taints: vec![Taint::control_plane()],
        kubelet_extra_args: BTreeMap::new(),
        kube_proxy_extra_args: BTreeMap::new(),
        host,
    }
}
