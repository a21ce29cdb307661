//! What every reconcile gets: the API client, the event recorder, the metrics
//! and the host executor.

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};

use crate::host::HostExecutor;
use crate::metrics::Metrics;

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
    /// Runs commands on hosts.
    pub hosts: Arc<dyn HostExecutor>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("hosts", &self.hosts)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Builds a context; `instance` (the Pod name) tells Events of different
    /// replicas apart.
    pub fn new(
        client: Client,
        instance: &str,
        metrics: Metrics,
        hosts: Arc<dyn HostExecutor>,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some(instance.into()),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            hosts,
        }
    }
}
