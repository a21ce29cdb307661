//! Routes between the nodes' pod ranges, kept in step as Nodes come and go.
//!
//! Each node's CNI bridge serves its own slice of the pod range
//! (`Node.spec.podCIDR`); a pod on another node is reached through that
//! node's address, as flannel's host-gw does on one L2 segment. For every
//! node kubeseed provisioned (a master or a worker), the routes to all the
//! other nodes' slices are rendered by `kubeseed_provision` and applied over
//! SSH: a file and a boot-time unit on the host (so a reboot keeps them), and
//! the kernel's routes of kubeseed's own protocol made equal to the file.
//!
//! Nothing is done in a cluster seeded with `--pod-network none`: its CNI
//! does this.
//!
//! Runs on the leader beside the controllers: when a Node's range or address
//! changes, or a node appears or goes, and every few minutes to put back what
//! someone flushed. A host that cannot be reached is tried again on the next
//! round; the others are not held up.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};
use tracing::{Instrument, info, info_span, warn};

use kubeseed_crds::v1alpha1::{ControlPlaneMember, SingleHostObject, WorkerNode};
use kubeseed_provision::cluster::Cidr;
use kubeseed_provision::plans;
use kubeseed_provision::render::{PodRoute, PodRoutesInput};

use crate::context::Context;
use crate::controllers::StopSignal;
use crate::error::{Error, Result};
use crate::{hosts, run_plan};

/// How often every host's routes are checked even when nothing changed.
const PERIOD: Duration = Duration::from_secs(300);
/// How soon a host whose update failed is tried again.
const RETRY: Duration = Duration::from_secs(20);

/// One node as a route's destination: its pod range and address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRange {
    /// The Node's name.
    pub node: String,
    /// `spec.podCIDR`.
    pub cidr: Cidr,
    /// Its `InternalIP`.
    pub via: IpAddr,
}

/// The nodes that have a pod range and an address.
pub fn node_ranges(nodes: &[Node]) -> Vec<NodeRange> {
    let mut out: Vec<NodeRange> = nodes
        .iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter_map(|n| {
            let cidr = Cidr::parse(n.spec.as_ref()?.pod_cidr.as_deref()?).ok()?;
            let via = n
                .status
                .as_ref()?
                .addresses
                .as_ref()?
                .iter()
                .find(|a| a.type_ == "InternalIP")
                .and_then(|a| a.address.parse().ok())?;
            Some(NodeRange {
                node: n.name_any(),
                cidr,
                via,
            })
        })
        .collect();
    out.sort_by(|a, b| a.node.cmp(&b.node));
    out
}

/// What `node` should route: every other node's range through its address
/// (a node never routes its own range, nor through its own address).
pub fn routes_for(node: &str, ranges: &[NodeRange]) -> PodRoutesInput {
    let own = ranges.iter().find(|r| r.node == node).map(|r| r.via);
    PodRoutesInput {
        routes: ranges
            .iter()
            .filter(|r| r.node != node && Some(r.via) != own)
            .map(|r| PodRoute {
                node: r.node.clone(),
                cidr: r.cidr,
                via: r.via,
            })
            .collect(),
    }
}

/// A node kubeseed provisioned, and how to reach its host.
#[derive(Debug, Clone)]
enum Provisioned {
    Master(ControlPlaneMember),
    Worker(WorkerNode),
}

impl Provisioned {
    fn object(&self) -> &(dyn SingleHostObject + Sync) {
        match self {
            Provisioned::Master(m) => m,
            Provisioned::Worker(w) => w,
        }
    }
}

/// Node name → the object that provisioned it. Objects being deleted are
/// left out: their host is being cleaned.
async fn provisioned(ctx: &Context) -> Result<BTreeMap<String, Provisioned>> {
    let mut out = BTreeMap::new();
    let masters: Api<ControlPlaneMember> = Api::all(ctx.client.clone());
    for m in masters.list(&ListParams::default()).await? {
        if m.meta().deletion_timestamp.is_none() {
            let node = m
                .status
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_else(|| m.name_any());
            out.insert(node, Provisioned::Master(m));
        }
    }
    let workers: Api<WorkerNode> = Api::all(ctx.client.clone());
    for w in workers.list(&ListParams::default()).await? {
        if w.meta().deletion_timestamp.is_none()
            && let Some(node) = w.status.as_ref().and_then(|s| s.node_name.clone())
        {
            out.insert(node, Provisioned::Worker(w));
        }
    }
    Ok(out)
}

/// Applies `routes` on the host of `node`.
async fn apply(
    ctx: &Context,
    node: &str,
    owner: &Provisioned,
    routes: &PodRoutesInput,
) -> Result<()> {
    let tasks = plans::pod_routes(routes).map_err(|e| Error::Plan {
        reason: "PlanInvalid",
        message: e.to_string(),
    })?;
    let (session, _) = hosts::connect_to(ctx, owner.object()).await?;
    let report = match owner {
        Provisioned::Master(m) => run_plan::run(ctx, m, &session, None, &tasks).await,
        Provisioned::Worker(w) => run_plan::run(ctx, w, &session, None, &tasks).await,
    }
    .map_err(Error::Task)?;
    if report.changed() > 0 {
        info!(node, routes = routes.routes.len(), "pod routes updated");
    }
    Ok(())
}

/// One round: every provisioned node whose wanted routes differ from what
/// was last applied there (`applied`), or all of them when `verify`.
async fn round(
    ctx: &Context,
    applied: &mut BTreeMap<String, PodRoutesInput>,
    verify: bool,
) -> Result<bool> {
    let material = crate::cluster::ClusterMaterial::load(ctx).await?;
    if !material.record.pod_network.by_kubeseed() {
        // The user's CNI routes between nodes (`--pod-network none`).
        applied.clear();
        return Ok(true);
    }
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let ranges = node_ranges(&nodes.list(&ListParams::default()).await?.items);
    let owners = provisioned(ctx).await?;
    applied.retain(|node, _| owners.contains_key(node));
    let mut all_ok = true;
    for (node, owner) in &owners {
        if !ranges.iter().any(|r| &r.node == node) {
            // Not registered yet, or no range: nothing routes to it, and
            // it has nowhere to send its pods' traffic yet.
            continue;
        }
        let wanted = routes_for(node, &ranges);
        if !verify && applied.get(node) == Some(&wanted) {
            continue;
        }
        let span = info_span!("pod_routes", node = %node, host = %owner.object().host().address);
        match apply(ctx, node, owner, &wanted).instrument(span).await {
            Ok(()) => {
                applied.insert(node.clone(), wanted);
            }
            Err(e) => {
                all_ok = false;
                applied.remove(node);
                warn!(node = %node, error = %e, "cannot update the host's pod routes; trying again");
            }
        }
    }
    Ok(all_ok)
}

/// Keeps every provisioned node's routes in step until `stop` completes.
pub async fn run(ctx: Arc<Context>, stop: StopSignal) {
    info!("pod routes starting");
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    // Only what changes a route wakes the loop: not the kubelets' status
    // heartbeats.
    let changes = watcher(nodes, watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .predicate_filter(
            |n: &Node| {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                n.spec
                    .as_ref()
                    .and_then(|s| s.pod_cidr.clone())
                    .hash(&mut h);
                n.status
                    .as_ref()
                    .and_then(|s| s.addresses.as_ref())
                    .map(|a| {
                        a.iter()
                            .map(|a| (a.type_.clone(), a.address.clone()))
                            .collect::<Vec<_>>()
                    })
                    .hash(&mut h);
                Some(h.finish())
            },
            Default::default(),
        )
        .map_ok(|_| ());
    let mut changes = std::pin::pin!(changes);
    let mut applied = BTreeMap::new();
    let mut next_verify = tokio::time::Instant::now() + PERIOD;
    let mut stop = std::pin::pin!(stop);
    loop {
        let verify = tokio::time::Instant::now() >= next_verify;
        if verify {
            next_verify = tokio::time::Instant::now() + PERIOD;
        }
        let wait = match round(&ctx, &mut applied, verify).await {
            Ok(true) => PERIOD,
            Ok(false) => RETRY,
            Err(e) => {
                warn!(error = %e, "cannot compute the pod routes; trying again");
                RETRY
            }
        };
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(wait) => {}
            _ = changes.next() => {
                // A burst of changes (a node registering) settles first.
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    info!("pod routes stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, ip: &str, cidr: Option<&str>) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"podCIDR": cidr},
            "status": {"addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
            ]},
        }))
        .unwrap()
    }

    #[test]
    fn every_node_routes_the_others_ranges_through_their_addresses() {
        let ranges = node_ranges(&[
            node("w2", "10.0.0.22", Some("10.244.2.0/24")),
            node("m1", "10.0.0.11", Some("10.244.0.0/24")),
            node("w1", "10.0.0.21", Some("10.244.1.0/24")),
            node("new", "10.0.0.23", None),
        ]);
        assert_eq!(
            ranges.iter().map(|r| r.node.as_str()).collect::<Vec<_>>(),
            ["m1", "w1", "w2"]
        );
        let r = routes_for("w1", &ranges);
        let got: Vec<String> = r
            .routes
            .iter()
            .map(|r| format!("{} via {}", r.cidr, r.via))
            .collect();
        assert_eq!(
            got,
            ["10.244.0.0/24 via 10.0.0.11", "10.244.2.0/24 via 10.0.0.22"]
        );
        // routes_for needs no range of its own: only the others'.
        assert_eq!(routes_for("new", &ranges).routes.len(), 3);
    }
}
