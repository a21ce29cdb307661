//! The kubelet: its KubeletConfiguration and unit.
//!
//! Settings that have a configuration field go into
//! `/var/lib/kubelet/config.yaml` (the kubelet's flags for them are
//! deprecated); the unit passes only what has no field: the kubeconfigs,
//! the node's name, address and labels.

use serde::Serialize;

use crate::cluster::{CgroupVersion, ClusterSpec, NodeSpec};
use crate::files::HostFiles;
use crate::pki::{KUBELET_PKI_DIR, PKI_DIR};

use super::Component;
use super::error::{ClusterContext, RenderError, Result};
use super::flags::Flags;
use super::node_labels;
use super::paths;
use super::unit::ServiceUnit;

const COMPONENT: Component = Component::Kubelet;

/// Where the kubelet's certificates come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeletCredentials {
    /// Issued by kubeseed's PKI before the kubelet starts (masters):
    /// `/etc/kubernetes/kubelet.conf` with a client certificate and the
    /// serving pair under `/var/lib/kubelet/pki`.
    Issued,
    /// TLS bootstrapping (workers): the kubelet authenticates with the
    /// bootstrap token in `/etc/kubernetes/bootstrap-kubelet.conf`, gets its
    /// client certificate from the CSR signer (approved automatically) and
    /// asks for a serving certificate (`serverTLSBootstrap`). Serving CSRs
    /// (signer `kubernetes.io/kubelet-serving`) are NOT approved by any
    /// built-in controller: the caller must approve them, or `kubectl
    /// logs/exec` to the node fails.
    Bootstrap,
}

/// What one node's kubelet is rendered from.
#[derive(Debug, Clone)]
pub struct KubeletInput<'a> {
    /// The cluster (DNS service address and domain).
    pub spec: &'a ClusterSpec,
    /// The node: name, address, labels, taints, extra flags, host profile.
    pub node: &'a NodeSpec,
    /// Issued certificates or TLS bootstrapping.
    pub credentials: KubeletCredentials,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    api_version: &'static str,
    kind: &'static str,
    authentication: Authentication,
    authorization: Authorization,
    cgroup_driver: &'static str,
    #[serde(rename = "clusterDNS")]
    cluster_dns: Vec<String>,
    cluster_domain: String,
    container_runtime_endpoint: String,
    #[serde(rename = "failCgroupV1", skip_serializing_if = "Option::is_none")]
    fail_cgroup_v1: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    protect_kernel_defaults: Option<bool>,
    read_only_port: u16,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    register_with_taints: Vec<TaintDoc>,
    rotate_certificates: bool,
    #[serde(rename = "serverTLSBootstrap", skip_serializing_if = "Option::is_none")]
    server_tls_bootstrap: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_private_key_file: Option<String>,
}

#[derive(Serialize)]
struct Authentication {
    anonymous: Enabled,
    webhook: Enabled,
    x509: X509,
}

#[derive(Serialize)]
struct Enabled {
    enabled: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct X509 {
    #[serde(rename = "clientCAFile")]
    client_ca_file: String,
}

#[derive(Serialize)]
struct Authorization {
    mode: &'static str,
}

#[derive(Serialize)]
struct TaintDoc {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    effect: String,
}

impl KubeletInput<'_> {
    /// The KubeletConfiguration document.
    pub fn config(&self) -> Result<String> {
        let node = self.node;
        let host = &node.host;
        let mut taints = Vec::new();
        for t in &node.taints {
            node_labels::check_taint(t)
                .map_err(|reason| RenderError::input(COMPONENT, format!("taint {t}"), reason))?;
            taints.push(TaintDoc {
                key: t.key.clone(),
                value: t.value.clone(),
                effect: t.effect.clone(),
            });
        }
        let issued = self.credentials == KubeletCredentials::Issued;
        let config = Config {
            api_version: "kubelet.config.k8s.io/v1beta1",
            kind: "KubeletConfiguration",
            authentication: Authentication {
                anonymous: Enabled { enabled: false },
                webhook: Enabled { enabled: true },
                x509: X509 {
                    client_ca_file: format!("{PKI_DIR}/ca.crt"),
                },
            },
            authorization: Authorization { mode: "Webhook" },
            cgroup_driver: host.cgroup_driver.as_str(),
            cluster_dns: vec![
                self.spec
                    .dns_service_ip()
                    .for_component(COMPONENT)?
                    .to_string(),
            ],
            cluster_domain: self.spec.cluster_domain.clone(),
            container_runtime_endpoint: format!("unix://{}", paths::CONTAINERD_SOCKET),
            // cgroup v1 is deprecated and refused unless told otherwise.
            fail_cgroup_v1: (host.cgroup_version == CgroupVersion::V1).then_some(false),
            // Where /proc/sys is read-only the kubelet cannot set
            // vm.overcommit_memory, kernel.panic and kernel.panic_on_oops and
            // would refuse to start; it checks them instead (the host sets
            // them: see the kernel renderer).
            protect_kernel_defaults: (!host.kernel_tunables_writable).then_some(true),
            read_only_port: 0,
            register_with_taints: taints,
            rotate_certificates: true,
            server_tls_bootstrap: (!issued).then_some(true),
            tls_cert_file: issued.then(|| format!("{KUBELET_PKI_DIR}/kubelet.crt")),
            tls_private_key_file: issued.then(|| format!("{KUBELET_PKI_DIR}/kubelet.key")),
        };
        super::yaml_file(COMPONENT, "KubeletConfiguration", &config)
    }

    /// The flags of `kubelet`, extra arguments applied.
    pub fn flags(&self) -> Result<Flags> {
        let node = self.node;
        crate::pki::check_object_name("node name", &node.name).for_component(COMPONENT)?;
        let mut labels = Vec::new();
        for (key, value) in &node.labels {
            node_labels::check_key(key).map_err(|reason| {
                RenderError::input(COMPONENT, format!("node label {key:?}"), reason)
            })?;
            node_labels::check_value(value).map_err(|reason| {
                RenderError::input(COMPONENT, format!("node label {key:?}"), reason)
            })?;
            if node_labels::kubelet_may_set(key) {
                labels.push(format!("{key}={value}"));
            }
        }
        let mut f = Flags::new(COMPONENT);
        f.set("config", paths::KUBELET_CONFIG);
        f.set("kubeconfig", paths::KUBELET_CONF);
        if self.credentials == KubeletCredentials::Bootstrap {
            f.set("bootstrap-kubeconfig", paths::BOOTSTRAP_KUBELET_CONF);
        }
        f.set("node-ip", node.ip.to_string());
        f.set("hostname-override", node.name.clone());
        if !labels.is_empty() {
            f.set("node-labels", labels.join(","));
        }
        f.apply_extra(&node.kubelet_extra_args)?;
        Ok(f)
    }

    /// `/var/lib/kubelet/config.yaml` and `/etc/systemd/system/kubelet.service` (0644).
    pub fn render(&self) -> Result<HostFiles> {
        let unit = ServiceUnit {
            description: "kubelet: the Kubernetes node agent",
            documentation: "https://kubernetes.io/docs/reference/command-line-tools-reference/kubelet/",
            wants: vec!["network-online.target", "containerd.service"],
            after: vec![],
            // Keep restarting while the API or the runtime is not there yet.
            unit_settings: vec![("StartLimitIntervalSec", "0".into())],
            service_type: None,
            exec_start_pre: vec![],
            program: paths::program("kubelet"),
            flags: self.flags()?,
            service_settings: vec![("Restart", "always".into()), ("RestartSec", "10s".into())],
        };
        let mut files = HostFiles::default();
        files.insert_public(paths::KUBELET_CONFIG, self.config()?);
        files.insert_public(paths::unit_path("kubelet"), unit.render()?);
        Ok(files)
    }
}
