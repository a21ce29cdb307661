//! kube-apiserver: its unit, encryption configuration and audit policy.

use crate::cluster::{ClusterSpec, Member};
use crate::files::HostFiles;
use crate::pki::PKI_DIR;

use super::Component;
use super::encryption::EncryptionConfig;
use super::error::{ClusterContext, RenderError, Result};
use super::flags::{ExtraArgs, Flags};
use super::unit::ServiceUnit;
use super::{audit_policy, paths};

const COMPONENT: Component = Component::KubeApiserver;

/// What one master's kube-apiserver is rendered from.
#[derive(Debug, Clone)]
pub struct ApiServerInput<'a> {
    /// The cluster (service range, DNS domain).
    pub spec: &'a ClusterSpec,
    /// This master: its first address is advertised to clients and
    /// recorded in the `kubernetes` Service's endpoints.
    pub member: &'a Member,
    /// `--secure-port`. The kubeconfigs the PKI writes for this master's
    /// own components use `spec.endpoint.port`, so keep the two equal
    /// unless a balancer on the same host needs that port.
    pub secure_port: u16,
    /// `--etcd-servers`: client URLs, such as `https://10.0.0.11:2379`.
    pub etcd_servers: Vec<String>,
    /// Encryption at rest of Secrets.
    pub encryption: EncryptionConfig,
    /// Extra flags without `--`; they override kubeseed's.
    pub extra_args: ExtraArgs,
}

impl<'a> ApiServerInput<'a> {
    /// Master `name` of `spec`: the endpoint's port, every etcd member's
    /// client URL, no extra flags.
    pub fn new(spec: &'a ClusterSpec, name: &str, encryption: EncryptionConfig) -> Result<Self> {
        let etcd_servers = spec
            .etcd
            .iter()
            .map(|m| m.client_url())
            .collect::<std::result::Result<Vec<_>, _>>()
            .for_component(COMPONENT)?;
        Ok(Self {
            spec,
            member: spec.control_plane_member(name).for_component(COMPONENT)?,
            secure_port: spec.endpoint.port,
            etcd_servers,
            encryption,
            extra_args: ExtraArgs::new(),
        })
    }

    /// The flags of `kube-apiserver`, extra arguments applied.
    pub fn flags(&self) -> Result<Flags> {
        let spec = self.spec;
        if self.etcd_servers.is_empty() {
            return Err(RenderError::input(
                COMPONENT,
                "etcd servers",
                "the list is empty; give at least one member's client URL",
            ));
        }
        if let Some(bad) = self
            .etcd_servers
            .iter()
            .find(|u| !u.starts_with("https://") || u.contains(','))
        {
            return Err(RenderError::input(
                COMPONENT,
                format!("etcd server {bad:?}"),
                "give one https:// URL an entry (etcd requires client certificates)",
            ));
        }
        if self.secure_port == 0 {
            return Err(RenderError::input(COMPONENT, "secure port", "it is 0"));
        }
        let address = self.member.advertise_address().for_component(COMPONENT)?;
        let pki = |name: &str| format!("{PKI_DIR}/{name}");
        let mut f = Flags::new(COMPONENT);
        f.set("advertise-address", address.to_string());
        f.set("secure-port", self.secure_port.to_string());
        f.set("etcd-servers", self.etcd_servers.join(","));
        f.set("etcd-cafile", pki("etcd/ca.crt"));
        f.set("etcd-certfile", pki("apiserver-etcd-client.crt"));
        f.set("etcd-keyfile", pki("apiserver-etcd-client.key"));
        f.set("authorization-mode", "Node,RBAC");
        f.set("enable-admission-plugins", "NodeRestriction");
        f.set("allow-privileged", "true");
        f.set("client-ca-file", pki("ca.crt"));
        f.set("tls-cert-file", pki("apiserver.crt"));
        f.set("tls-private-key-file", pki("apiserver.key"));
        f.set(
            "kubelet-client-certificate",
            pki("apiserver-kubelet-client.crt"),
        );
        f.set("kubelet-client-key", pki("apiserver-kubelet-client.key"));
        // Every kubelet serving certificate comes from the cluster CA: the
        // PKI issues the masters', the CSR signer the TLS-bootstrapped
        // workers'. So the apiserver can verify whom it sends exec and logs to.
        f.set("kubelet-certificate-authority", pki("ca.crt"));
        f.set(
            "kubelet-preferred-address-types",
            "InternalIP,ExternalIP,Hostname",
        );
        f.set("enable-bootstrap-token-auth", "true");
        f.set(
            "service-account-issuer",
            format!("https://kubernetes.default.svc.{}", spec.cluster_domain),
        );
        f.set("service-account-key-file", pki("sa.pub"));
        f.set("service-account-signing-key-file", pki("sa.key"));
        f.set("service-cluster-ip-range", spec.service_cidr.clone());
        f.set("proxy-client-cert-file", pki("front-proxy-client.crt"));
        f.set("proxy-client-key-file", pki("front-proxy-client.key"));
        f.set("requestheader-client-ca-file", pki("front-proxy-ca.crt"));
        f.set("requestheader-allowed-names", "front-proxy-client");
        f.set("requestheader-username-headers", "X-Remote-User");
        f.set("requestheader-group-headers", "X-Remote-Group");
        f.set("requestheader-extra-headers-prefix", "X-Remote-Extra-");
        f.set("encryption-provider-config", paths::ENCRYPTION_CONFIG);
        f.set("audit-policy-file", paths::AUDIT_POLICY);
        f.set(
            "audit-log-path",
            format!("{}/audit.log", paths::AUDIT_LOG_DIR),
        );
        // 100 MiB a file, 10 files or 30 days, compressed: about 1 GiB at most.
        f.set("audit-log-maxsize", "100");
        f.set("audit-log-maxbackup", "10");
        f.set("audit-log-maxage", "30");
        f.set("audit-log-compress", "true");
        f.apply_extra(&self.extra_args)?;
        Ok(f)
    }

    /// The unit (0644), `/etc/kubernetes/encryption-config.yaml` (0600: it
    /// holds the key) and `/etc/kubernetes/audit-policy.yaml` (0644).
    pub fn render(&self) -> Result<HostFiles> {
        let unit = ServiceUnit {
            description: "kube-apiserver: the Kubernetes API",
            documentation: "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-apiserver/",
            wants: vec!["network-online.target"],
            after: vec![],
            unit_settings: vec![],
            // kube-apiserver reports ready once it serves, so `systemctl
            // start` returns when the API answers.
            service_type: Some("notify"),
            exec_start_pre: vec![],
            program: paths::program("kube-apiserver"),
            flags: self.flags()?,
            service_settings: vec![
                ("Restart", "always".into()),
                ("RestartSec", "5s".into()),
                ("LimitNOFILE", "65536".into()),
            ],
        };
        let mut files = HostFiles::default();
        files.insert_public(paths::unit_path("kube-apiserver"), unit.render()?);
        files.insert_private(paths::ENCRYPTION_CONFIG, self.encryption.render()?);
        files.insert_public(paths::AUDIT_POLICY, audit_policy::render()?);
        Ok(files)
    }
}
