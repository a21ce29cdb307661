//! kube-controller-manager: its unit.

use crate::cluster::ClusterSpec;
use crate::files::HostFiles;
use crate::pki::PKI_DIR;

use super::Component;
use super::error::{RenderError, Result};
use super::flags::{ExtraArgs, Flags};
use super::paths;
use super::unit::ServiceUnit;

const COMPONENT: Component = Component::KubeControllerManager;

/// What a master's kube-controller-manager is rendered from.
#[derive(Debug, Clone)]
pub struct ControllerManagerInput<'a> {
    /// The cluster (name, service and pod ranges, node mask).
    pub spec: &'a ClusterSpec,
    /// Extra flags without `--`; they override kubeseed's.
    pub extra_args: ExtraArgs,
}

impl<'a> ControllerManagerInput<'a> {
    /// No extra flags.
    pub fn new(spec: &'a ClusterSpec) -> Self {
        Self {
            spec,
            extra_args: ExtraArgs::new(),
        }
    }

    /// The flags of `kube-controller-manager`, extra arguments applied.
    pub fn flags(&self) -> Result<Flags> {
        let spec = self.spec;
        crate::cluster::Cidr::parse(&spec.pod_cidr).map_err(|reason| {
            RenderError::input(COMPONENT, format!("pod CIDR {:?}", spec.pod_cidr), reason)
        })?;
        let pki = |name: &str| format!("{PKI_DIR}/{name}");
        let mut f = Flags::new(COMPONENT);
        f.set("kubeconfig", paths::CONTROLLER_MANAGER_CONF);
        f.set("authentication-kubeconfig", paths::CONTROLLER_MANAGER_CONF);
        f.set("authorization-kubeconfig", paths::CONTROLLER_MANAGER_CONF);
        // Health and metrics need no one but the host itself.
        f.set("bind-address", "127.0.0.1");
        f.set("secure-port", "10257");
        f.set("client-ca-file", pki("ca.crt"));
        f.set("requestheader-client-ca-file", pki("front-proxy-ca.crt"));
        f.set("cluster-name", spec.cluster_name.clone());
        // The in-tree CSR signer issues TLS-bootstrapped kubelets'
        // certificates; the cluster CA key is on masters by decision.
        f.set("cluster-signing-cert-file", pki("ca.crt"));
        f.set("cluster-signing-key-file", pki("ca.key"));
        // bootstrapsigner signs cluster-info for `kubeadm join`-style
        // discovery; tokencleaner deletes expired bootstrap tokens.
        f.set("controllers", "*,bootstrapsigner,tokencleaner");
        f.set("leader-elect", "true");
        f.set("root-ca-file", pki("ca.crt"));
        f.set("service-account-private-key-file", pki("sa.key"));
        f.set("use-service-account-credentials", "true");
        f.set("service-cluster-ip-range", spec.service_cidr.clone());
        // The bridge CNI gives each node a slice of the pod range; the
        // controller hands the slices out.
        f.set("allocate-node-cidrs", "true");
        f.set("cluster-cidr", spec.pod_cidr.clone());
        f.set("node-cidr-mask-size", spec.node_cidr_mask.to_string());
        f.apply_extra(&self.extra_args)?;
        Ok(f)
    }

    /// `/etc/systemd/system/kube-controller-manager.service`.
    pub fn render(&self) -> Result<HostFiles> {
        let unit = ServiceUnit {
            description: "kube-controller-manager: the Kubernetes controllers",
            documentation: "https://kubernetes.io/docs/reference/command-line-tools-reference/kube-controller-manager/",
            wants: vec!["network-online.target"],
            after: vec![],
            unit_settings: vec![],
            service_type: None,
            exec_start_pre: vec![],
            program: paths::program("kube-controller-manager"),
            flags: self.flags()?,
            service_settings: vec![("Restart", "always".into()), ("RestartSec", "5s".into())],
        };
        let mut files = HostFiles::default();
        files.insert_public(paths::unit_path("kube-controller-manager"), unit.render()?);
        Ok(files)
    }
}
