//! etcd: one member's systemd unit.

use std::net::IpAddr;

use crate::cluster::{ClusterSpec, EtcdMember, url_for};
use crate::files::HostFiles;
use crate::pki::PKI_DIR;

use super::Component;
use super::error::{ClusterContext, RenderError, Result};
use super::flags::{ExtraArgs, Flags};
use super::paths;
use super::unit::ServiceUnit;

const COMPONENT: Component = Component::Etcd;

/// Whether a member founds the cluster or joins a running one
/// (`--initial-cluster-state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialClusterState {
    /// Every member of `initial_cluster` starts together (the seed: a
    /// cluster of one).
    New,
    /// The member was added with `etcdctl member add` (as a learner) and
    /// joins the members already running.
    Existing,
}

impl InitialClusterState {
    /// etcd's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            InitialClusterState::New => "new",
            InitialClusterState::Existing => "existing",
        }
    }
}

/// What one etcd member's unit is rendered from.
#[derive(Debug, Clone)]
pub struct EtcdInput<'a> {
    /// The member: name, advertise address (its first), ports, data directory.
    pub member: &'a EtcdMember,
    /// `--initial-cluster`: `name=peer-url,...`, this member included. For a
    /// joining member, the list `etcdctl member add` printed.
    pub initial_cluster: String,
    /// New cluster or joining one.
    pub initial_cluster_state: InitialClusterState,
    /// Extra flags without `--`; they override kubeseed's.
    pub extra_args: ExtraArgs,
}

impl<'a> EtcdInput<'a> {
    /// Member `name` of a cluster whose members all start now, with the
    /// initial cluster from `spec` and no extra flags.
    pub fn founding(spec: &'a ClusterSpec, name: &str) -> Result<Self> {
        Ok(Self {
            member: spec.etcd_member(name).for_component(COMPONENT)?,
            initial_cluster: spec.etcd_initial_cluster().for_component(COMPONENT)?,
            initial_cluster_state: InitialClusterState::New,
            extra_args: ExtraArgs::new(),
        })
    }

    /// The flags of `etcd`, extra arguments applied.
    pub fn flags(&self) -> Result<Flags> {
        let m = self.member;
        let address = m.member.advertise_address().for_component(COMPONENT)?;
        let peer_url = m.peer_url().for_component(COMPONENT)?;
        let client_url = m.client_url().for_component(COMPONENT)?;
        let own = format!("{}={peer_url}", m.name());
        if !self.initial_cluster.split(',').any(|entry| entry == own) {
            return Err(RenderError::input(
                COMPONENT,
                "initial cluster",
                format!(
                    "{:?} does not contain this member as {own:?}; etcd refuses to start without it",
                    self.initial_cluster
                ),
            ));
        }
        let loopback = match address {
            IpAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        };
        let pki = |name: &str| format!("{PKI_DIR}/etcd/{name}");
        let mut f = Flags::new(COMPONENT);
        f.set("name", m.name());
        f.set("data-dir", m.data_dir.clone());
        f.set("advertise-client-urls", client_url.clone());
        // Loopback too: a stacked kube-apiserver or etcdctl on the host
        // reaches its member without depending on the host's address.
        f.set(
            "listen-client-urls",
            format!("{client_url},{}", url_for(loopback, m.client_port)),
        );
        f.set("initial-advertise-peer-urls", peer_url.clone());
        f.set("listen-peer-urls", peer_url);
        f.set("initial-cluster", self.initial_cluster.clone());
        f.set("initial-cluster-state", self.initial_cluster_state.as_str());
        f.set("client-cert-auth", "true");
        f.set("trusted-ca-file", pki("ca.crt"));
        f.set("cert-file", pki("server.crt"));
        f.set("key-file", pki("server.key"));
        f.set("peer-client-cert-auth", "true");
        f.set("peer-trusted-ca-file", pki("ca.crt"));
        f.set("peer-cert-file", pki("peer.crt"));
        f.set("peer-key-file", pki("peer.key"));
        // Plain HTTP on loopback only: health checks and Prometheus without
        // client certificates, as kubeadm does.
        f.set("listen-metrics-urls", "http://127.0.0.1:2381");
        f.set("snapshot-count", "10000");
        // kube-apiserver's watch cache relies on progress notifications
        // (consistent reads from cache); kubeadm sets the same two.
        f.set("watch-progress-notify-interval", "5s");
        f.set("feature-gates", "InitialCorruptCheck=true");
        f.apply_extra(&self.extra_args)?;
        Ok(f)
    }

    /// `/etc/systemd/system/etcd.service`.
    pub fn render(&self) -> Result<HostFiles> {
        let unit = ServiceUnit {
            description: "etcd: the cluster's key-value store",
            documentation: "https://etcd.io/docs/",
            wants: vec!["network-online.target"],
            after: vec![],
            unit_settings: vec![],
            // etcd tells systemd when it has joined the cluster and serves.
            service_type: Some("notify"),
            exec_start_pre: vec![],
            program: paths::program("etcd"),
            flags: self.flags()?,
            service_settings: vec![
                ("Restart", "always".into()),
                ("RestartSec", "5s".into()),
                // A founding member waits for its peers before it reports
                // ready; a start timeout would kill it while it waits (as in
                // etcd's own contrib/systemd unit).
                ("TimeoutStartSec", "0".into()),
                ("LimitNOFILE", "65536".into()),
            ],
        };
        let mut files = HostFiles::default();
        files.insert_public(paths::unit_path("etcd"), unit.render()?);
        Ok(files)
    }
}
