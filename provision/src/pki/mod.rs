//! The cluster PKI: every certificate, key and kubeconfig a highly available
//! control plane needs, made with rcgen instead of cfssl by hand.
//!
//! - [`crate::cluster::ClusterSpec`] describes the cluster (names, service
//!   CIDR, members, the load-balanced endpoint, extra SANs, key algorithm,
//!   lifetimes); it lives outside this module because the renderers use it too.
//! - [`ClusterCas`] holds the cluster, etcd and front-proxy CAs and the
//!   service-account key pair; it round-trips through a Secret's data
//!   ([`ClusterCas::to_secret_data`]) and the workstation's owner-only state
//!   directory, and issues each member's files when it joins
//!   ([`ClusterCas::control_plane_files`], [`ClusterCas::etcd_member_files`], ...).
//! - [`ClusterPki::generate`] does all of it at once for a new cluster and
//!   lays every host's files out as kubeadm does (`/etc/kubernetes/pki/...`).
//! - [`inspect_pem`], [`HostFiles::inspect`] and [`ClusterPki::inspect`] read
//!   certificates back (subject, SANs, expiry) for status and `bootstrap certs`;
//!   [`renew_host_files`] and [`CertificateAuthority::renew`] renew leaves;
//!   [`expiry_table`] prints them like `kubeadm certs check-expiration`.
//!
//! CA private keys never appear in a host's [`HostFiles`]: they live in the
//! store only (a Secret in the cluster, the 0700 state directory on the
//! workstation). The one exception is opt-in: [`ClusterCas::csr_signer_files`]
//! for kube-controller-manager's in-tree CSR signer.
//!
//! RSA keys come from aws-lc-rs (rcgen's `aws_lc_rs` feature): ring cannot
//! generate RSA keys, and aws-lc-rs is already compiled for russh.

mod algorithm;
mod ca;
mod cluster_cas;
mod error;
mod host_files;
mod inspect;
mod kubeconfig;
mod leaf;
mod plan;
pub mod profiles;
mod reuse;
mod san;
mod service_account;
pub mod state_dir;
mod table;
mod token;
mod validity;

pub use algorithm::KeyAlgorithm;
pub use ca::CertificateAuthority;
pub use cluster_cas::{
    CA_CRT, CA_KEY, ClusterCas, ETCD_CA_CRT, ETCD_CA_KEY, FRONT_PROXY_CA_CRT, FRONT_PROXY_CA_KEY,
    SA_KEY, SA_PUB, STORE_KEYS,
};
pub use error::{PkiError, Result};
pub use host_files::{KUBELET_PKI_DIR, KUBERNETES_DIR, PKI_DIR};
pub use inspect::{CertificateInfo, inspect_pem};
pub use kubeconfig::{
    Credentials, KubeconfigSpec, client_certificate, render as render_kubeconfig,
};
pub use leaf::{IssuedCert, LeafSpec, Usage};
pub use plan::{CertificateRecord, ClusterPki, renew_host_files};
pub use reuse::{RENEW_BEFORE, keep_valid};
pub use san::{SubjectAltName, first_service_ip};
pub(crate) use san::{check_object_name, push_unique};
pub use service_account::ServiceAccountKey;
pub use table::expiry_table;
pub use token::{BootstrapToken, NODE_BOOTSTRAP_GROUP};
pub use validity::{Validity, rfc3339};
