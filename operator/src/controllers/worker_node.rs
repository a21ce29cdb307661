//! Controller of `WorkerNode`: a worker on one host.
//!
//! A join reads as its plan: refuse a conflicting object or a node name
//! that is taken; reach the host (its host key recorded before any
//! command); preflight; a short-lived bootstrap token, only while the
//! kubelet has no certificate of its own; the worker's tasks from
//! `kubeseed_provision::plans` (the same layer `bootstrap` uses); the Node's
//! labels that a kubelet may not set itself. Its serving certificate is
//! approved by [`crate::serving_csr`] once it matches this object.
//!
//! A leave cordons and drains the Node (PodDisruptionBudgets respected; a
//! drain that cannot finish says so in `Drained`), stops and cleans the
//! host, then deletes the Node.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Node, Secret};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::info;

use kubeseed_crds::v1alpha1::conditions::{PROVISIONED, READY};
use kubeseed_crds::v1alpha1::{ControlPlaneMember, Phase, WorkerNode};
use kubeseed_provision::pki::BootstrapToken;
use kubeseed_provision::plans::{self, WorkerInput};
use kubeseed_provision::preflight::Expectations;
use kubeseed_provision::render::api_only_labels;
use kubeseed_provision::ssh::ExecOptions;

use super::status::StatusBook;
use super::steps::plan_error;
use super::{Member, RESYNC, StopSignal, provisioned_for, publish, steps};
use crate::context::{Context, FIELD_MANAGER};
use crate::error::{Error, Result};
use crate::{hosts, run_plan};

/// How soon a refused join (conflict, preflight) is looked at again.
const REFUSED_RETRY: Duration = Duration::from_secs(120);
/// A retry reuses its worker's token while at least this much of it is left
/// (a join takes a minute or two).
const TOKEN_REUSE_MARGIN: time::Duration = time::Duration::minutes(5);
/// How long a leave waits for the Node's Pods to be evicted before it says
/// the drain is stuck (and tries again later).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// The condition of a leave's drain.
pub const DRAINED: &str = "Drained";

impl Member for WorkerNode {
    fn apply(
        obj: Arc<Self>,
        ctx: Arc<Context>,
    ) -> futures::future::BoxFuture<'static, Result<Action>> {
        Box::pin(async move { join(obj, ctx).await })
    }

    fn cleanup(
        obj: Arc<Self>,
        ctx: Arc<Context>,
    ) -> futures::future::BoxFuture<'static, Result<Action>> {
        Box::pin(async move { leave(obj, ctx).await })
    }

    /// Every worker looks again when the cluster's record changes: a new
    /// endpoint (a VIP published) goes into its kubeconfigs.
    fn watch_related(controller: Controller<Self>, ctx: &Context) -> Controller<Self> {
        super::on_cluster_record(controller, ctx)
    }
}

/// Runs the `WorkerNode` controller until `stop` completes.
pub async fn run(ctx: Arc<Context>, stop: StopSignal) {
    super::run::<WorkerNode>(ctx, stop).await;
}

/// The name the worker's Node has or will have: the one it registered as,
/// else the one asked for, else (once preflight learned it) the host's name.
pub fn node_name(obj: &WorkerNode) -> Option<String> {
    obj.status
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .or_else(|| obj.spec.kubelet.as_ref().and_then(|k| k.node_name.clone()))
}

/// Another object that claims the same host, address or node name and was
/// there first (older, or as old and named first); or a master on the host.
pub fn conflict(
    obj: &WorkerNode,
    workers: &[WorkerNode],
    masters: &[ControlPlaneMember],
) -> Option<String> {
    let key = |o: &WorkerNode| (o.metadata.creation_timestamp.clone(), o.name_any());
    let mine = node_name(obj);
    let older = workers
        .iter()
        .filter(|o| o.name_any() != obj.name_any() && key(o) < key(obj))
        .find_map(|o| {
            if o.spec.host.address == obj.spec.host.address {
                Some(format!(
                    "WorkerNode {} already provisions host {}: delete one of them",
                    o.name_any(),
                    o.spec.host.address
                ))
            } else if o.spec.advertise_address() == obj.spec.advertise_address() {
                Some(format!(
                    "WorkerNode {} already uses address {}: give this one its own advertiseAddress",
                    o.name_any(),
                    o.spec.advertise_address()
                ))
            } else if mine.is_some() && node_name(o) == mine {
                Some(format!(
                    "WorkerNode {} already registers as Node {}: set spec.kubelet.nodeName to another name",
                    o.name_any(),
                    mine.clone().unwrap_or_default()
                ))
            } else {
                None
            }
        });
    let master = || {
        masters.iter().find_map(|m| {
            if m.spec.host.address == obj.spec.host.address
                || m.spec.advertise_address() == obj.spec.advertise_address()
            {
                Some(format!(
                    "ControlPlaneMember {} runs on host {}: a master already is a node; pick another host",
                    m.name_any(),
                    m.spec.host.address
                ))
            } else if mine.as_deref() == Some(m.name_any().as_str()) {
                Some(format!(
                    "Node {} is the master of ControlPlaneMember {}: set spec.kubelet.nodeName to another name",
                    m.name_any(),
                    m.name_any()
                ))
            } else {
                None
            }
        })
    };
    older
        .or_else(master)
        .map(|why| format!("{why}; nothing was done to the host"))
}

/// Whether an existing Node of that name is someone else's: not registered
/// from this worker's address.
fn node_taken(node: &Node, advertise: IpAddr) -> bool {
    let ours = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .any(|a| a.type_ == "InternalIP" && a.address.parse::<IpAddr>().ok() == Some(advertise));
    !ours
}

async fn join(obj: Arc<WorkerNode>, ctx: Arc<Context>) -> Result<Action> {
    let name = obj.name_any();
    let api: Api<WorkerNode> = Api::all(ctx.client.clone());
    let mut book = StatusBook::new(&api, obj.as_ref(), &name);

    // ---- refuse what cannot be done, touching nothing ----------------------
    let workers = api.list(&ListParams::default()).await?;
    let masters: Api<ControlPlaneMember> = Api::all(ctx.client.clone());
    let masters = masters.list(&ListParams::default()).await?;
    if let Some(why) = conflict(&obj, &workers.items, &masters.items) {
        steps::refuse(&ctx, &mut book, obj.as_ref(), "Conflict", why).await?;
        return Ok(Action::requeue(REFUSED_RETRY));
    }
    let advertise: IpAddr = match obj.spec.advertise_address().parse() {
        Ok(ip) => ip,
        Err(_) => {
            let why = format!(
                "host.address {:?} is a name: set advertiseAddress to the node's IP address; nothing was done to the host",
                obj.spec.host.address
            );
            steps::refuse(
                &ctx,
                &mut book,
                obj.as_ref(),
                "AdvertiseAddressRequired",
                why,
            )
            .await?;
            return Ok(Action::requeue(REFUSED_RETRY));
        }
    };
    let material = steps::material(&ctx, &mut book).await?;
    let cluster = material.record.kubernetes_version.trim_start_matches('v');
    if let Some(v) = &obj.spec.kubernetes_version
        && v.trim_start_matches('v') != cluster
    {
        let why = format!(
            "kubernetesVersion {v} differs from the cluster's v{cluster}: workers run the version of the bundle the cluster was seeded with; remove the field or set it to v{cluster}; nothing was done to the host"
        );
        steps::refuse(&ctx, &mut book, obj.as_ref(), "Unsupported", why).await?;
        return Ok(Action::requeue(REFUSED_RETRY));
    }
    let spec = material.record.spec();
    spec.check().map_err(plan_error)?;
    let inputs = plans::worker_inputs_digest(&spec).map_err(plan_error)?;
    let recorded_inputs = obj.status.as_ref().and_then(|s| s.inputs.as_deref());
    if provisioned_for(obj.conditions(), obj.meta().generation)
        && recorded_inputs == Some(inputs.as_str())
    {
        return Ok(Action::requeue(RESYNC));
    }

    // ---- reach the host; record its key before any command -----------------
    let session = steps::reach(&ctx, &mut book, obj.as_ref()).await?;

    // ---- preflight, and the node's name --------------------------------------
    let Some(host) = steps::preflight(
        &ctx,
        &mut book,
        obj.as_ref(),
        &session,
        Expectations::worker(),
        &material,
        advertise,
    )
    .await?
    else {
        return Ok(Action::requeue(REFUSED_RETRY));
    };
    let node_name = node_name(&obj).unwrap_or_else(|| host.hostname.to_lowercase());
    if let Some(why) = name_conflict(&ctx, &obj, &node_name, advertise, &workers.items).await? {
        steps::refuse(&ctx, &mut book, obj.as_ref(), "NodeNameTaken", why).await?;
        return Ok(Action::requeue(REFUSED_RETRY));
    }

    // ---- compose the plan ------------------------------------------------------
    let bundle = crate::bundle::open(&ctx, &material).await?;
    let on_host = plans::worker_bundle(&bundle);
    let mut node = plans::worker_node(&node_name, advertise, host.profile);
    let labels = obj
        .spec
        .kubelet
        .as_ref()
        .map(|k| k.labels.clone())
        .unwrap_or_default();
    if let Some(k) = &obj.spec.kubelet {
        // The kubelet registers with those it may set; the rest are set
        // through the API below.
        node.labels = k
            .labels
            .iter()
            .filter(|(key, _)| kubeseed_provision::render::kubelet_may_set(key))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        node.taints = k
            .taints
            .iter()
            .flatten()
            .map(|t| kubeseed_provision::cluster::Taint {
                key: t.key.clone(),
                value: t.value.clone().filter(|v| !v.is_empty()),
                effect: t.effect.clone(),
            })
            .collect();
        node.kubelet_extra_args = k.extra_args.clone();
    }
    node.kube_proxy_extra_args = obj.spec.kube_proxy_extra_args.clone();
    let bootstrapped = session
        .exec(
            &plans::worker::kubelet_bootstrapped_check(),
            ExecOptions::sudo(),
        )
        .await
        .map_err(|e| Error::Plan {
            reason: e.reason(),
            message: e.to_string(),
        })?
        .status
        .success();
    let token = if bootstrapped {
        None
    } else {
        Some(create_bootstrap_token(&ctx, &node_name).await?)
    };
    let tasks = plans::worker(WorkerInput {
        spec: &spec,
        node: &node,
        cas: &material.cas,
        bundle: &on_host,
        cluster_id: &material.record.id,
        bootstrap: token.as_ref(),
    })
    .map_err(plan_error)?;

    // ---- run it ------------------------------------------------------------------
    book.field("nodeName", json!(node_name));
    steps::run_join(&ctx, &mut book, obj.as_ref(), &session, "worker", &tasks).await?;
    let registered = label_node(&ctx, &node_name, &labels).await?;
    let info = registered.status.and_then(|s| s.node_info);
    let joined_before = recorded_inputs.is_some();
    let (reason, done) = if joined_before {
        ("Reconfigured", format!("{node_name} provisioned again"))
    } else {
        ("Joined", format!("{node_name} joined as a worker"))
    };
    let ready = if material.record.pod_network.by_kubeseed() {
        "Node Ready".to_owned()
    } else {
        format!(
            "Node {node_name} registered; it turns Ready once the cluster's CNI runs on it (--pod-network none)"
        )
    };
    book.phase(Phase::Ready)
        .set(PROVISIONED, true, reason, done.clone())
        .set(READY, true, "Joined", ready)
        .field("inputs", json!(inputs))
        .field(
            "versions",
            json!({
                "kubernetes": info.as_ref().map(|i| i.kubelet_version.clone()),
                "containerRuntime": info.as_ref().map(|i| i.container_runtime_version.clone()),
            }),
        );
    book.write().await?;
    info!(node = %node_name, reason, "worker provisioned");
    publish(&ctx, obj.as_ref(), EventType::Normal, reason, done).await;
    Ok(Action::requeue(RESYNC))
}

/// Why `node_name` cannot be this worker's: another WorkerNode's, a
/// master's, or an existing Node registered from another address.
async fn name_conflict(
    ctx: &Context,
    obj: &WorkerNode,
    wanted: &str,
    advertise: IpAddr,
    workers: &[WorkerNode],
) -> Result<Option<String>> {
    if let Some(other) = workers
        .iter()
        .find(|o| o.name_any() != obj.name_any() && node_name(o).as_deref() == Some(wanted))
    {
        return Ok(Some(format!(
            "WorkerNode {} already registers as Node {wanted}: set spec.kubelet.nodeName to another name; nothing was done to the host",
            other.name_any()
        )));
    }
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    if let Some(node) = nodes.get_opt(wanted).await?
        && node_taken(&node, advertise)
    {
        return Ok(Some(format!(
            "a Node named {wanted} already exists and was not registered from {advertise}: set spec.kubelet.nodeName to a free name (or delete that Node if it is stale); nothing was done to the host"
        )));
    }
    Ok(None)
}

/// A bootstrap token for one join: valid for [`plans::BOOTSTRAP_WINDOW`],
/// then removed by kube-controller-manager's token cleaner (the operator
/// can create Secrets in kube-system, never read or delete them).
async fn create_bootstrap_token(ctx: &Context, node: &str) -> Result<BootstrapToken> {
    let now = time::OffsetDateTime::now_utc();
    if let Ok(tokens) = ctx.bootstrap_tokens.lock()
        && let Some((token, expires)) = tokens.get(node)
        && *expires - now > TOKEN_REUSE_MARGIN
    {
        return Ok(token.clone());
    }
    let token = BootstrapToken::generate();
    let expires = now + plans::BOOTSTRAP_WINDOW;
    let data: BTreeMap<String, ByteString> = token
        .secret_data(expires)
        .into_iter()
        .map(|(k, v)| (k, ByteString(v)))
        .collect();
    let mut secret = Secret {
        data: Some(data),
        type_: Some("bootstrap.kubernetes.io/token".into()),
        ..Default::default()
    };
    secret.metadata.name = Some(format!("bootstrap-token-{}", token.id()));
    secret.metadata.namespace = Some("kube-system".into());
    secret.metadata.labels = Some(BTreeMap::from([(
        "app.kubernetes.io/managed-by".to_owned(),
        "kubeseed".to_owned(),
    )]));
    secret.metadata.annotations = Some(BTreeMap::from([(
        "kubeseed.io/for-node".to_owned(),
        node.to_owned(),
    )]));
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), "kube-system");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .map_err(|e| match e {
            kube::Error::Api(ae) if ae.code == 403 => Error::Plan {
                reason: "BootstrapTokenForbidden",
                message: format!(
                    "cannot create a bootstrap token in kube-system ({}): install the chart with rbac.bootstrapTokens=true",
                    ae.message
                ),
            },
            other => other.into(),
        })?;
    info!(node, token_id = token.id(), "bootstrap token created");
    if let Ok(mut tokens) = ctx.bootstrap_tokens.lock() {
        tokens.retain(|_, (_, e)| *e > now);
        tokens.insert(node.to_owned(), (token.clone(), expires));
    }
    Ok(token)
}

/// The worker role label and the object's labels a kubelet may not set;
/// the Node as it is then.
async fn label_node(ctx: &Context, node: &str, labels: &BTreeMap<String, String>) -> Result<Node> {
    let mut wanted = api_only_labels(labels);
    wanted.insert(plans::WORKER_ROLE_LABEL.to_owned(), String::new());
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let patch = json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node, "labels": wanted},
    });
    Ok(nodes
        .patch(
            node,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?)
}

/// The leave: cordon and drain (PodDisruptionBudgets respected), then the
/// host stopped and cleaned, then the Node deleted.
async fn leave(obj: Arc<WorkerNode>, ctx: Arc<Context>) -> Result<Action> {
    let name = obj.name_any();
    if let Some(done) = steps::release_if_untouched(&ctx, obj.as_ref()).await {
        return Ok(done);
    }
    let api: Api<WorkerNode> = Api::all(ctx.client.clone());
    let mut book = StatusBook::new(&api, obj.as_ref(), &name);
    let node = node_name(&obj);
    book.phase(Phase::Deleting).set(
        READY,
        false,
        "Leaving",
        "draining the Node, then cleaning the host",
    );
    book.write().await?;
    if let Some(node) = &node {
        crate::drain::cordon(&ctx, node).await?;
        if let Err(e) = crate::drain::drain(&ctx, node, DRAIN_TIMEOUT).await {
            book.set(
                DRAINED,
                false,
                e.event_reason(),
                format!("{e}; the leave tries again"),
            );
            book.write().await?;
            return Err(e);
        }
        book.set(
            DRAINED,
            true,
            "Drained",
            format!("every evictable Pod left {node}"),
        );
        book.write().await?;
    }
    let (session, _) = hosts::connect_to(&ctx, obj.as_ref()).await?;
    let tasks = plans::teardown_worker();
    run_plan::run(&ctx, obj.as_ref(), &session, None, &tasks).await?;
    if let Some(node) = &node {
        crate::drain::delete_node(&ctx, node).await?;
    }
    info!("left the cluster");
    publish(
        &ctx,
        obj.as_ref(),
        EventType::Normal,
        "Left",
        format!(
            "{} left the cluster; its host is clean",
            node.as_deref().unwrap_or(&name)
        ),
    )
    .await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use kubeseed_crds::v1alpha1::{ControlPlaneMemberSpec, HostSpec, KubeletSpec, WorkerNodeSpec};

    fn worker(name: &str, address: &str, node: Option<&str>, created: i64) -> WorkerNode {
        let mut o = WorkerNode::new(
            name,
            WorkerNodeSpec {
                host: HostSpec::new(address, "k"),
                advertise_address: None,
                kubernetes_version: None,
                kubelet: node.map(|n| KubeletSpec {
                    node_name: Some(n.to_owned()),
                    ..Default::default()
                }),
                kube_proxy_extra_args: Default::default(),
            },
        );
        o.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        o
    }

    #[test]
    fn the_younger_worker_on_a_host_or_name_is_the_conflict() {
        let a = worker("a", "10.0.0.21", Some("w1"), 10);
        let b = worker("b", "10.0.0.21", None, 20);
        let c = worker("c", "10.0.0.22", Some("w1"), 30);
        let all = [a.clone(), b.clone(), c.clone()];
        assert!(conflict(&a, &all, &[]).is_none());
        assert!(conflict(&b, &all, &[]).unwrap().contains("host 10.0.0.21"));
        assert!(conflict(&c, &all, &[]).unwrap().contains("Node w1"));
    }

    #[test]
    fn a_masters_host_or_name_is_refused() {
        let m = ControlPlaneMember::new(
            "master-1",
            ControlPlaneMemberSpec {
                host: HostSpec::new("10.0.0.11", "k"),
                ..Default::default()
            },
        );
        let on_master = worker("a", "10.0.0.11", None, 10);
        assert!(
            conflict(&on_master, &[], std::slice::from_ref(&m))
                .unwrap()
                .contains("runs on host")
        );
        let named = worker("b", "10.0.0.23", Some("master-1"), 10);
        assert!(
            conflict(&named, &[], &[m])
                .unwrap()
                .contains("Node master-1")
        );
    }

    #[test]
    fn a_node_from_another_address_is_taken() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "w1"},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.21"}]},
        }))
        .unwrap();
        assert!(!node_taken(&node, "10.0.0.21".parse().unwrap()));
        assert!(node_taken(&node, "10.0.0.22".parse().unwrap()));
    }
}
