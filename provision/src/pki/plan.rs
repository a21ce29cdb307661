//! Which certificates each host gets: the whole-cluster plan and the
//! per-member pieces the operator issues when a member joins.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::cluster_cas::ClusterCas;
use super::error::{PkiError, Result};
use super::host_files::{KUBELET_PKI_DIR, kube, pki};
use super::inspect::CertificateInfo;
use super::kubeconfig::{self, Credentials, KubeconfigSpec};
use super::leaf::{IssuedCert, LeafSpec};
use super::profiles;
use super::san::{SubjectAltName, push_unique};
use super::token::BootstrapToken;
use crate::cluster::{ClusterSpec, Member};
use crate::files::HostFiles;

/// User name of the kubelet bootstrap kubeconfig (kubeadm's).
const BOOTSTRAP_USER: &str = "tls-bootstrap-token-user";

impl ClusterCas {
    fn issue_cluster(&self, spec: &ClusterSpec, leaf: &LeafSpec) -> Result<IssuedCert> {
        self.cluster.issue(leaf, spec.key_algorithm, &spec.validity)
    }

    fn kubeconfig_for(&self, spec: &ClusterSpec, server: &str, leaf: &LeafSpec) -> Result<String> {
        let issued = self.issue_cluster(spec, leaf)?;
        kubeconfig::render(&KubeconfigSpec {
            cluster_name: &spec.cluster_name,
            server,
            ca_pem: self.cluster.cert_pem(),
            user_name: &leaf.common_name,
            credentials: Credentials::ClientCert(&issued),
        })
    }

    /// `admin.conf` (group `kubeadm:cluster-admins`) pointing at the balanced endpoint.
    pub fn admin_kubeconfig(&self, spec: &ClusterSpec) -> Result<String> {
        self.kubeconfig_for(spec, &spec.server_url()?, &profiles::admin())
    }

    /// `super-admin.conf` (`system:masters`) pointing at the balanced endpoint.
    pub fn super_admin_kubeconfig(&self, spec: &ClusterSpec) -> Result<String> {
        self.kubeconfig_for(spec, &spec.server_url()?, &profiles::super_admin())
    }

    /// Everything control-plane member `name` needs: the API server's
    /// certificates, the CA certificates, the service-account pair, the
    /// kubeconfigs of the components and the kubelet, and — when the member
    /// is also an etcd member (stacked) — its etcd certificates.
    ///
    /// CA keys are not included; see [`Self::csr_signer_files`].
    pub fn control_plane_files(&self, spec: &ClusterSpec, name: &str) -> Result<HostFiles> {
        spec.check()?;
        let member = spec.control_plane_member(name)?;
        let mut files = HostFiles::default();
        files.insert_public(pki("ca.crt"), self.cluster.cert_pem());
        files.insert_public(pki("front-proxy-ca.crt"), self.front_proxy.cert_pem());
        files.insert_public(pki("etcd/ca.crt"), self.etcd.cert_pem());
        files.insert_private(pki("sa.key"), self.service_account.private_pem());
        files.insert_public(pki("sa.pub"), self.service_account.public_pem());
        files.insert_pair(
            &pki("apiserver"),
            self.issue_cluster(spec, &profiles::apiserver(spec.apiserver_sans(name)?))?,
        );
        files.insert_pair(
            &pki("apiserver-kubelet-client"),
            self.issue_cluster(spec, &profiles::apiserver_kubelet_client())?,
        );
        files.insert_pair(
            &pki("apiserver-etcd-client"),
            self.etcd.issue(
                &profiles::apiserver_etcd_client(),
                spec.key_algorithm,
                &spec.validity,
            )?,
        );
        files.insert_pair(
            &pki("front-proxy-client"),
            self.front_proxy.issue(
                &profiles::front_proxy_client(),
                spec.key_algorithm,
                &spec.validity,
            )?,
        );
        let local = spec.local_server_url(member)?;
        let endpoint = spec.server_url()?;
        for (file, server, leaf) in [
            ("admin.conf", &endpoint, profiles::admin()),
            (
                "controller-manager.conf",
                &local,
                profiles::controller_manager(),
            ),
            ("scheduler.conf", &local, profiles::scheduler()),
        ] {
            files.insert_private(kube(file), self.kubeconfig_for(spec, server, &leaf)?);
        }
        // The kubelet of a master talks to its own apiserver (kubeadm ≥ 1.31):
        // a balancer outage cannot make the masters' Nodes NotReady.
        files.extend(self.kubelet_files(spec, member, &local)?);
        if spec.etcd.iter().any(|m| m.name() == name) {
            files.extend(self.etcd_member_files(spec, name)?);
        }
        Ok(files)
    }

    /// `super-admin.conf` (`system:masters`), which only the first master
    /// holds, as with kubeadm ≥ 1.29: it bootstraps RBAC there and is the
    /// emergency key; every other master gets the revocable `admin.conf`.
    pub fn super_admin_files(&self, spec: &ClusterSpec) -> Result<HostFiles> {
        let mut files = HostFiles::default();
        files.insert_private(kube("super-admin.conf"), self.super_admin_kubeconfig(spec)?);
        Ok(files)
    }

    /// The cluster CA key at `/etc/kubernetes/pki/ca.key`, for
    /// kube-controller-manager's `--cluster-signing-key-file`.
    ///
    /// Kept apart on purpose: only a cluster whose workers use TLS
    /// bootstrapping with the in-tree CSR signer needs the CA key on its
    /// masters (kubeadm always puts it there). Callers opt in explicitly.
    pub fn csr_signer_files(&self) -> HostFiles {
        let mut files = HostFiles::default();
        files.insert_private(pki("ca.key"), self.cluster.key_pem());
        files
    }

    /// etcd member `name`'s files: the etcd CA, its server and peer pairs
    /// and the health-check client.
    pub fn etcd_member_files(&self, spec: &ClusterSpec, name: &str) -> Result<HostFiles> {
        self.etcd_member_files_with(spec, name, &[])
    }

    /// [`Self::etcd_member_files`], with `extra_sans` (an `EtcdMember`'s
    /// `extraSANs`) in its server and peer certificates.
    pub fn etcd_member_files_with(
        &self,
        spec: &ClusterSpec,
        name: &str,
        extra_sans: &[SubjectAltName],
    ) -> Result<HostFiles> {
        let member = &spec.etcd_member(name)?.member;
        let (alg, validity) = (spec.key_algorithm, &spec.validity);
        let mut server = profiles::etcd_server(&member.name, &member.addresses);
        let mut peer = profiles::etcd_peer(&member.name, &member.addresses);
        for san in extra_sans {
            push_unique(&mut server.sans, san.clone());
            push_unique(&mut peer.sans, san.clone());
        }
        let mut files = HostFiles::default();
        files.insert_public(pki("etcd/ca.crt"), self.etcd.cert_pem());
        files.insert_pair(
            &pki("etcd/server"),
            self.etcd.issue(&server, alg, validity)?,
        );
        files.insert_pair(&pki("etcd/peer"), self.etcd.issue(&peer, alg, validity)?);
        files.insert_pair(
            &pki("etcd/healthcheck-client"),
            self.etcd
                .issue(&profiles::etcd_healthcheck_client(), alg, validity)?,
        );
        Ok(files)
    }

    /// A kubelet that is not TLS-bootstrapped: `kubelet.conf` with its client
    /// certificate and its serving pair under `/var/lib/kubelet/pki`.
    /// `server` is the API server the kubelet talks to: its own on a master,
    /// the endpoint on a worker.
    pub fn kubelet_files(
        &self,
        spec: &ClusterSpec,
        node: &Member,
        server: &str,
    ) -> Result<HostFiles> {
        super::san::check_object_name("node name", &node.name)?;
        let mut files = HostFiles::default();
        files.insert_public(pki("ca.crt"), self.cluster.cert_pem());
        files.insert_private(
            kube("kubelet.conf"),
            self.kubeconfig_for(spec, server, &profiles::kubelet_client(&node.name))?,
        );
        files.insert_pair(
            &format!("{KUBELET_PKI_DIR}/kubelet"),
            self.issue_cluster(
                spec,
                &profiles::kubelet_serving(&node.name, &node.addresses),
            )?,
        );
        Ok(files)
    }

    /// A TLS-bootstrapped kubelet: the CA and `bootstrap-kubelet.conf`
    /// carrying `token` (create its Secret with [`BootstrapToken::secret_data`]).
    pub fn bootstrap_kubelet_files(
        &self,
        spec: &ClusterSpec,
        token: &BootstrapToken,
    ) -> Result<HostFiles> {
        let mut files = HostFiles::default();
        files.insert_public(pki("ca.crt"), self.cluster.cert_pem());
        files.insert_private(
            kube("bootstrap-kubelet.conf"),
            self.bootstrap_kubeconfig(spec, token)?,
        );
        Ok(files)
    }

    /// `bootstrap-kubelet.conf`: the endpoint and `token`.
    pub fn bootstrap_kubeconfig(
        &self,
        spec: &ClusterSpec,
        token: &BootstrapToken,
    ) -> Result<String> {
        kubeconfig::render(&KubeconfigSpec {
            cluster_name: &spec.cluster_name,
            server: &spec.server_url()?,
            ca_pem: self.cluster.cert_pem(),
            user_name: BOOTSTRAP_USER,
            credentials: Credentials::BootstrapToken(token),
        })
    }
}

impl ClusterCas {
    /// A TLS-bootstrapped kubelet's `kubelet.conf`: the endpoint and the
    /// client certificate the kubelet itself obtains and rotates
    /// (`kubelet-client-current.pem`). kubeseed writes it (rather than
    /// letting the kubelet write it after bootstrapping) so a new endpoint
    /// reaches a worker by rewriting one file; while the certificate is
    /// missing, the kubelet bootstraps with `bootstrap-kubelet.conf`.
    pub fn bootstrapped_kubelet_files(&self, spec: &ClusterSpec, node: &str) -> Result<HostFiles> {
        super::san::check_object_name("node name", node)?;
        let pem = format!("{KUBELET_PKI_DIR}/kubelet-client-current.pem");
        let mut files = HostFiles::default();
        files.insert_public(pki("ca.crt"), self.cluster.cert_pem());
        files.insert_private(
            kube("kubelet.conf"),
            kubeconfig::render(&KubeconfigSpec {
                cluster_name: &spec.cluster_name,
                server: &spec.server_url()?,
                ca_pem: self.cluster.cert_pem(),
                user_name: &format!("system:node:{node}"),
                credentials: Credentials::Files {
                    cert: &pem,
                    key: &pem,
                },
            })?,
        );
        Ok(files)
    }

    /// `kube-proxy.conf` for any node: a client certificate for
    /// `system:kube-proxy` and `server_url`, the API server this node's
    /// kube-proxy talks to (a master's own, [`ClusterSpec::local_server_url`];
    /// a worker's, the endpoint, [`ClusterSpec::server_url`]).
    pub fn kube_proxy_kubeconfig(&self, spec: &ClusterSpec, server_url: &str) -> Result<String> {
        self.kubeconfig_for(spec, server_url, &profiles::kube_proxy())
    }

    /// `/etc/kubernetes/kube-proxy.conf` (0600) from
    /// [`Self::kube_proxy_kubeconfig`].
    pub fn kube_proxy_files(&self, spec: &ClusterSpec, server_url: &str) -> Result<HostFiles> {
        let mut files = HostFiles::default();
        files.insert_private(
            kube("kube-proxy.conf"),
            self.kube_proxy_kubeconfig(spec, server_url)?,
        );
        Ok(files)
    }
}

/// A whole cluster's PKI: the CAs and every host's files.
#[derive(Debug)]
pub struct ClusterPki {
    /// What it was made from.
    pub spec: ClusterSpec,
    /// The shared signing material (goes into the cluster's Secret and the state directory).
    pub cas: ClusterCas,
    /// Host name → its files (control-plane members, then etcd-only members).
    pub hosts: BTreeMap<String, HostFiles>,
}

/// One certificate found by [`ClusterPki::inspect`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRecord {
    /// Host holding it, or `cluster` for the CAs.
    pub host: String,
    /// File path (store entry name for the CAs).
    pub path: String,
    /// What it says.
    #[serde(flatten)]
    pub info: CertificateInfo,
}

impl ClusterPki {
    /// Checks `spec`, makes new CAs and issues every host's certificates.
    pub fn generate(spec: ClusterSpec) -> Result<Self> {
        spec.check()?;
        let cas = ClusterCas::generate(spec.key_algorithm, &spec.validity)?;
        Self::with_cas(spec, cas)
    }

    /// Issues every host's certificates under existing CAs.
    pub fn with_cas(spec: ClusterSpec, cas: ClusterCas) -> Result<Self> {
        spec.check()?;
        let mut hosts = BTreeMap::new();
        for (i, m) in spec.control_plane.iter().enumerate() {
            let mut files = cas.control_plane_files(&spec, &m.name)?;
            if i == 0 {
                files.extend(cas.super_admin_files(&spec)?);
            }
            hosts.insert(m.name.clone(), files);
        }
        for m in &spec.etcd {
            if !hosts.contains_key(m.name()) {
                hosts.insert(m.name().to_owned(), cas.etcd_member_files(&spec, m.name())?);
            }
        }
        Ok(Self { spec, cas, hosts })
    }

    /// Every certificate with its subject, SANs and expiry, CAs first.
    pub fn inspect(&self) -> Result<Vec<CertificateRecord>> {
        let mut out: Vec<CertificateRecord> = self
            .cas
            .inspect()
            .into_iter()
            .map(|(path, info)| CertificateRecord {
                host: "cluster".into(),
                path: path.into(),
                info,
            })
            .collect();
        for (host, files) in &self.hosts {
            for (path, info) in files.inspect()? {
                if info.is_ca {
                    continue; // already listed once above
                }
                out.push(CertificateRecord {
                    host: host.clone(),
                    path: path.display().to_string(),
                    info,
                });
            }
        }
        Ok(out)
    }
}

/// Renews every leaf among `files` under the CA that issued it: same
/// subject, names and purpose, fresh keys and validity. CA certificates and
/// files without certificates are kept as they are.
pub fn renew_host_files(
    cas: &ClusterCas,
    spec: &ClusterSpec,
    files: &HostFiles,
) -> Result<HostFiles> {
    let mut out = files.clone();
    for (path, file) in files.iter() {
        let what = path.display().to_string();
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => {
                let info = super::inspect::inspect_pem(&what, &file.contents)?;
                if info.is_ca {
                    continue;
                }
                let issued = renew_one(cas, spec, &what, &file.contents)?;
                let stem = path.with_extension("");
                out.insert_pair(&stem.display().to_string(), issued);
            }
            Some("conf") => {
                let Some(old) = kubeconfig::client_certificate(&what, &file.contents)? else {
                    continue;
                };
                let issued = renew_one(cas, spec, &what, &old)?;
                let parts = kubeconfig::parts(&what, &file.contents)?;
                out.insert_private(
                    PathBuf::from(path),
                    kubeconfig::render(&KubeconfigSpec {
                        cluster_name: &parts.cluster_name,
                        server: &parts.server,
                        ca_pem: cas.cluster.cert_pem(),
                        user_name: &parts.user_name,
                        credentials: Credentials::ClientCert(&issued),
                    })?,
                );
            }
            _ => {}
        }
    }
    Ok(out)
}

fn renew_one(cas: &ClusterCas, spec: &ClusterSpec, what: &str, pem: &str) -> Result<IssuedCert> {
    let der = super::inspect::pem_to_der(what, pem)?;
    let cert = super::inspect::parse_der(what, &der)?;
    let ca = [&cas.cluster, &cas.etcd, &cas.front_proxy]
        .into_iter()
        .find(|ca| ca.signed(&cert))
        .ok_or_else(|| PkiError::NotIssuedBy {
            what: what.to_owned(),
            ca: "any of this cluster's CAs".into(),
            issuer: cert.issuer().to_string(),
        })?;
    ca.renew(what, pem, spec.key_algorithm, &spec.validity)
}
