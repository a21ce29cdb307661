//! kube-proxy: its KubeProxyConfiguration and unit.
//!
//! Once kube-proxy is given `--config` it ignores every other flag except
//! the logging flags and `--hostname-override` (cmd/kube-proxy/app
//! `Options.Complete`), so extra arguments are limited to those and any
//! other is refused instead of being silently dropped.

use serde::Serialize;

use crate::cluster::{ClusterSpec, NodeSpec};
use crate::files::HostFiles;

use super::Component;
use super::error::{ClusterContext, RenderError, Result};
use super::flags::Flags;
use super::paths;
use super::unit::ServiceUnit;

const COMPONENT: Component = Component::KubeProxy;

/// The flags kube-proxy still reads next to `--config`.
pub const FLAGS_HONOURED_WITH_CONFIG: &[&str] = &[
    "hostname-override",
    "log-flush-frequency",
    "log-json-info-buffer-size",
    "log-json-split-stream",
    "log-text-info-buffer-size",
    "log-text-split-stream",
    "logging-format",
    "v",
    "vmodule",
];

/// What one node's kube-proxy is rendered from.
#[derive(Debug, Clone)]
pub struct KubeProxyInput<'a> {
    /// The cluster (pod range).
    pub spec: &'a ClusterSpec,
    /// The node: name, address, host profile, extra flags.
    pub node: &'a NodeSpec,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    api_version: &'static str,
    kind: &'static str,
    bind_address: String,
    client_connection: ClientConnection,
    #[serde(rename = "clusterCIDR")]
    cluster_cidr: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    conntrack: Option<Conntrack>,
    hostname_override: String,
    metrics_bind_address: &'static str,
    mode: &'static str,
    node_port_addresses: Vec<&'static str>,
}

#[derive(Serialize)]
struct ClientConnection {
    kubeconfig: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Conntrack {
    max_per_core: u32,
    tcp_established_timeout: &'static str,
    tcp_close_wait_timeout: &'static str,
}

impl KubeProxyInput<'_> {
    /// The KubeProxyConfiguration document.
    pub fn config(&self) -> Result<String> {
        let node = self.node;
        crate::pki::check_object_name("node name", &node.name).for_component(COMPONENT)?;
        crate::cluster::Cidr::parse(&self.spec.pod_cidr).map_err(|reason| {
            RenderError::input(
                COMPONENT,
                format!("pod CIDR {:?}", self.spec.pod_cidr),
                reason,
            )
        })?;
        let config = Config {
            api_version: "kubeproxy.config.k8s.io/v1alpha1",
            kind: "KubeProxyConfiguration",
            // A non-zero bind address is taken as the node's primary IP:
            // hosts without a default route cannot have it detected.
            bind_address: node.ip.to_string(),
            client_connection: ClientConnection {
                kubeconfig: paths::KUBE_PROXY_CONF,
            },
            cluster_cidr: self.spec.pod_cidr.clone(),
            // Where /proc/sys is read-only, zero means "leave the kernel's
            // conntrack table size and timeouts alone" (as kind does):
            // nf_conntrack_max is not namespaced and cannot be set there.
            conntrack: (!node.host.kernel_tunables_writable).then_some(Conntrack {
                max_per_core: 0,
                tcp_established_timeout: "0s",
                tcp_close_wait_timeout: "0s",
            }),
            hostname_override: node.name.clone(),
            metrics_bind_address: "127.0.0.1:10249",
            mode: "iptables",
            // NodePorts on the node's own address only (kube-proxy's own
            // recommendation). Accepting them on every address, loopback
            // included, needs net.ipv4.conf.all.route_localnet=1, which a
            // container host's read-only /proc/sys refuses and which lets
            // loopback-only services be reached from outside.
            node_port_addresses: vec!["primary"],
        };
        super::yaml_file(COMPONENT, "KubeProxyConfiguration", &config)
    }

    /// The flags of `kube-proxy`, extra arguments applied.
    pub fn flags(&self) -> Result<Flags> {
        if let Some(name) = self
            .node
            .kube_proxy_extra_args
            .keys()
            .find(|k| !FLAGS_HONOURED_WITH_CONFIG.contains(&k.as_str()))
        {
            return Err(RenderError::InvalidFlagName {
                component: COMPONENT,
                name: name.clone(),
                reason: format!(
                    "kube-proxy ignores it when given --config; only {} take effect",
                    FLAGS_HONOURED_WITH_CONFIG.join(", ")
                ),
            });
        }
        let mut f = Flags::new(COMPONENT);
        f.set("config", paths::KUBE_PROXY_CONFIG);
        f.apply_extra(&self.node.kube_proxy_extra_args)?;
        Ok(f)
    }

    /// `/var/lib/kube-proxy/config.yaml` and `/etc/systemd/system/kube-proxy.service` (0644).
    pub fn render(&self) -> Result<HostFiles> {
        let unit = ServiceUnit {
            description: "kube-proxy: Service routing on the node",
            documentation: "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-proxy/",
            wants: vec!["network-online.target"],
            after: vec![],
            unit_settings: vec![("StartLimitIntervalSec", "0".into())],
            service_type: None,
            exec_start_pre: vec![],
            program: paths::program("kube-proxy"),
            flags: self.flags()?,
            service_settings: vec![("Restart", "always".into()), ("RestartSec", "5s".into())],
        };
        let mut files = HostFiles::default();
        files.insert_public(paths::KUBE_PROXY_CONFIG, self.config()?);
        files.insert_public(paths::unit_path("kube-proxy"), unit.render()?);
        Ok(files)
    }
}
