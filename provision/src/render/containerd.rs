//! containerd: `/etc/containerd/config.toml` and its unit.
//!
//! The configuration is `version = 4`, the newest format, read by
//! containerd v2.3 and later: the bundle ships v2.4.2, which migrates a
//! `version = 3` file at every start and warns about it. Version 4 is
//! version 3 (the CRI plugin split into `io.containerd.cri.v1.images` and
//! `io.containerd.cri.v1.runtime`) with the server's own settings, such
//! as the socket, moved into `io.containerd.server.v1.*` plugins. Only what
//! kubeseed decides is written; everything else keeps containerd's
//! defaults, which `containerd config dump` shows.

use crate::cluster::{CgroupDriver, HostProfile};
use crate::files::HostFiles;

use super::Component;
use super::HEADER;
use super::error::{RenderError, Result};
use super::escape::{toml_string, toml_string_array};
use super::flags::Flags;
use super::paths;
use super::unit::ServiceUnit;

const COMPONENT: Component = Component::Containerd;

/// What a node's containerd is rendered from.
#[derive(Debug, Clone)]
pub struct ContainerdInput<'a> {
    /// The host: cgroup driver, whether OOM scores may be lowered.
    pub host: &'a HostProfile,
    /// The pause image every Pod sandbox runs, as imported from the bundle
    /// (e.g. `localhost/kubeseed/pause:3.10.1`); pinned, so neither the
    /// kubelet's image garbage collection removes it nor a pull is tried.
    pub sandbox_image: String,
}

impl ContainerdInput<'_> {
    /// `/etc/containerd/config.toml` and `/etc/systemd/system/containerd.service` (0644).
    pub fn render(&self) -> Result<HostFiles> {
        let image = self.sandbox_image.trim();
        if image.is_empty() || image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RenderError::input(
                COMPONENT,
                format!("sandbox image {:?}", self.sandbox_image),
                "give an image reference such as localhost/kubeseed/pause:3.10.1",
            ));
        }
        let systemd_cgroup = self.host.cgroup_driver == CgroupDriver::Systemd;
        // Without CAP_SYS_RESOURCE (a container host) runc cannot lower a
        // sandbox's OOM score and every Pod fails to start; restricting
        // makes containerd never ask for less than its own score.
        let restrict_oom = !self.host.oom_score_adj_allowed;
        let plugin = |id: &str| toml_string(&format!("io.containerd.cri.v1.{id}"));
        let (images, runtime) = (plugin("images"), plugin("runtime"));
        let config = format!(
            "{HEADER}\n\
             version = 4\n\
             root = {root}\n\
             state = {state}\n\
             \n\
             [plugins.{grpc}]\n  address = {socket}\n\
             \n\
             [plugins.{images}]\n  snapshotter = {snapshotter}\n\
             \n\
             [plugins.{images}.pinned_images]\n  sandbox = {image}\n\
             \n\
             [plugins.{runtime}]\n  restrict_oom_score_adj = {restrict_oom}\n\
             \n\
             [plugins.{runtime}.containerd]\n  default_runtime_name = {runc_name}\n\
             \n\
             [plugins.{runtime}.containerd.runtimes.runc]\n  runtime_type = {runc_type}\n\
             \n\
             [plugins.{runtime}.containerd.runtimes.runc.options]\n  \
             BinaryName = {runc}\n  SystemdCgroup = {systemd_cgroup}\n\
             \n\
             [plugins.{runtime}.cni]\n  bin_dirs = {bin_dirs}\n  conf_dir = {conf_dir}\n",
            grpc = toml_string("io.containerd.server.v1.grpc"),
            root = toml_string("/var/lib/containerd"),
            state = toml_string("/run/containerd"),
            socket = toml_string(paths::CONTAINERD_SOCKET),
            snapshotter = toml_string("overlayfs"),
            image = toml_string(image),
            runc_name = toml_string("runc"),
            runc_type = toml_string("io.containerd.runc.v2"),
            runc = toml_string(paths::RUNC),
            bin_dirs = toml_string_array([paths::CNI_BIN_DIR]),
            conf_dir = toml_string(paths::CNI_CONF_DIR),
        );
        let mut service_settings = vec![
            ("Delegate", "yes".into()),
            // Containers' shims outlive a containerd restart.
            ("KillMode", "process".into()),
            ("Restart", "always".into()),
            ("RestartSec", "5".into()),
            // Upstream's limits: accounting in cgroups instead of rlimits.
            // (containerd 2.x's unit dropped LimitNOFILE: containers now get
            // the runtime's default of 1024:524288 instead of infinity.)
            ("LimitNPROC", "infinity".into()),
            ("LimitCORE", "infinity".into()),
            ("TasksMax", "infinity".into()),
        ];
        if self.host.oom_score_adj_allowed {
            service_settings.push(("OOMScoreAdjust", "-999".into()));
        }
        let unit = ServiceUnit {
            description: "containerd container runtime",
            documentation: "https://containerd.io",
            wants: vec![],
            after: vec!["network.target", "dbus.service"],
            unit_settings: vec![],
            service_type: Some("notify"),
            exec_start_pre: vec!["-/sbin/modprobe overlay"],
            program: paths::program("containerd"),
            flags: Flags::new(COMPONENT),
            service_settings,
        };
        let mut files = HostFiles::default();
        files.insert_public(paths::CONTAINERD_CONFIG, config);
        files.insert_public(paths::unit_path("containerd"), unit.render()?);
        Ok(files)
    }
}
