//! Cordoning and draining a Node through the Eviction API, so
//! PodDisruptionBudgets are respected; DaemonSet Pods and static (mirror)
//! Pods are left, as `kubectl drain --ignore-daemonsets` does.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, EvictParams, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::context::Context;
use crate::error::{Error, Result};

/// Marks the Node unschedulable; a Node already gone is fine.
pub async fn cordon(ctx: &Context, node: &str) -> Result<()> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let patch = json!({"spec": {"unschedulable": true}});
    match nodes
        .patch(node, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn evictable(pod: &Pod) -> bool {
    let meta = &pod.metadata;
    let mirror = meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    let daemon = meta
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet");
    let finished = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .is_some_and(|p| p == "Succeeded" || p == "Failed");
    !mirror && !daemon && !finished
}

/// Evicts every evictable Pod on `node` and waits until they are gone, up
/// to `timeout`; a PodDisruptionBudget that blocks it makes this return
/// [`Error::Plan`] with reason `DrainStuck` naming the Pods left.
pub async fn drain(ctx: &Context, node: &str, timeout: Duration) -> Result<()> {
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let on_node = ListParams::default().fields(&format!("spec.nodeName={node}"));
    let started = Instant::now();
    loop {
        let left: Vec<Pod> = pods
            .list(&on_node)
            .await?
            .items
            .into_iter()
            .filter(evictable)
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        for pod in &left {
            let (Some(ns), Some(name)) = (&pod.metadata.namespace, &pod.metadata.name) else {
                continue;
            };
            let api: Api<Pod> = Api::namespaced(ctx.eviction_client.clone(), ns);
            match api.evict(name, &EvictParams::default()).await {
                Ok(_) => {}
                // 429: a PodDisruptionBudget says not now; 404: gone already.
                Err(kube::Error::Api(e)) if e.code == 429 || e.code == 404 => {}
                Err(e) => return Err(e.into()),
            }
        }
        if started.elapsed() > timeout {
            let names: Vec<String> = left
                .iter()
                .filter_map(|p| {
                    Some(format!(
                        "{}/{}",
                        p.metadata.namespace.as_deref()?,
                        p.metadata.name.as_deref()?
                    ))
                })
                .collect();
            return Err(Error::Plan {
                reason: "DrainStuck",
                message: format!(
                    "Node {node} still runs {} after {timeout:?} (a PodDisruptionBudget may forbid their eviction): {}",
                    names.len(),
                    names.join(", ")
                ),
            });
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Deletes the Node object; one already gone is fine.
pub async fn delete_node(ctx: &Context, node: &str) -> Result<()> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    match nodes.delete(node, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Evicts this replica's own Pod (through the Eviction API, so the chart's
/// PodDisruptionBudget keeps one replica running), for a leave of the Node
/// it runs on: the replica stops and one on another Node takes the Lease and
/// carries on. A refused eviction (no other replica ready) is an error the
/// leave waits on.
pub async fn hand_over(ctx: &Context, node: &str) -> Result<()> {
    let Some(pod) = ctx.whereabouts.pod.as_deref() else {
        return Ok(());
    };
    let pods: Api<Pod> = Api::namespaced(ctx.eviction_client.clone(), &ctx.namespace);
    match pods.evict(pod, &EvictParams::default()).await {
        Ok(_) => Err(Error::Plan {
            reason: "HandingOver",
            message: format!(
                "the operator runs on Node {node}, which this leave removes: it evicted its own Pod {pod}, and a replica on another Node carries on"
            ),
        }),
        Err(kube::Error::Api(e)) if e.code == 429 => Err(Error::Plan {
            reason: "HandOverBlocked",
            message: format!(
                "the operator runs on Node {node}, which this leave removes, and no replica on another Node is ready to take over (eviction of {pod} refused: {}); the leave waits",
                e.message
            ),
        }),
        Err(e) => Err(e.into()),
    }
}
