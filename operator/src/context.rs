//! What every reconcile gets: the API client, the event recorder, the metrics
//! and the SSH limits every connection to a host shares.

use std::path::PathBuf;
use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::metrics::Metrics;
use kubeseed_provision::ssh::Limits;

/// Name the operator reports as in Events and uses as its server-side-apply
/// field manager. One manager for every status write, so apply never fights
/// itself across controllers or replicas.
pub const FIELD_MANAGER: &str = "kubeseed-operator";

/// Shared state of the controllers.
#[derive(Clone)]
pub struct Context {
    /// Kubernetes client, authenticated as the operator's ServiceAccount in-cluster.
    pub client: Client,
    /// Publishes Events about the objects reconciled.
    pub recorder: Recorder,
    /// The operator's Prometheus metrics.
    pub metrics: Metrics,
    /// Concurrency caps and retry policy shared by every SSH connection, so
    /// the operator never pushes more than a bounded number of operations at
    /// the hosts (and at each host) at once.
    pub ssh_limits: Limits,
    /// The operator's namespace: the cluster's ConfigMap and Secret, and the
    /// SSH keys members name, live there.
    pub namespace: String,
    /// Where the node's staged bundles are mounted (read-only).
    pub bundle_root: PathBuf,
    /// Held while a provisioned master is provisioned again (a new
    /// endpoint, VIP or etcd member list): its apiserver restarts, and only
    /// one may be down at a time. Only the leader reconciles, so a lock in
    /// this process is the whole cluster's.
    pub restart_turn: Arc<tokio::sync::Mutex<()>>,
    /// Where this replica runs: its Pod and Node (in-cluster).
    pub whereabouts: Whereabouts,
    /// The bootstrap token made for each joining worker, reused by its
    /// retries while it has time left: the operator may create tokens but
    /// neither read nor delete them, so every retry with a new one would
    /// leave another Secret for the token cleaner.
    pub bootstrap_tokens: Arc<std::sync::Mutex<BootstrapTokens>>,
    /// Evicts Pods: a client that does not retry 429, so a refusal by a
    /// PodDisruptionBudget comes back at once (see `drain`).
    pub eviction_client: Client,
}

/// Node name → its bootstrap token and when that expires.
pub type BootstrapTokens = std::collections::HashMap<
    String,
    (
        kubeseed_provision::pki::BootstrapToken,
        time::OffsetDateTime,
    ),
>;

/// This replica's Pod and Node, when it runs in the cluster.
#[derive(Debug, Clone, Default)]
pub struct Whereabouts {
    /// The Pod's name (in [`Context::namespace`]).
    pub pod: Option<String>,
    /// The Node it runs on.
    pub node: Option<String>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("ssh_limits", &self.ssh_limits)
            .field("namespace", &self.namespace)
            .field("bundle_root", &self.bundle_root)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// The same context evicting Pods with `client` (one built without
    /// retries of 429: see [`Context::eviction_client`]).
    pub fn with_eviction_client(mut self, client: Client) -> Self {
        self.eviction_client = client;
        self
    }

    /// Builds a context; `instance` (the Pod name) tells Events of different
    /// replicas apart.
    pub fn new(
        client: Client,
        instance: &str,
        metrics: Metrics,
        ssh_limits: Limits,
        namespace: &str,
        bundle_root: PathBuf,
        whereabouts: Whereabouts,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some(instance.into()),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            eviction_client: client.clone(),
            client,
            metrics,
            ssh_limits,
            namespace: namespace.to_owned(),
            bundle_root,
            restart_turn: Arc::default(),
            whereabouts,
            bootstrap_tokens: Arc::default(),
        }
    }
}
