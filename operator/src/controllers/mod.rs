//! One controller per kind, and the plumbing they share.
//!
//! Each reconcile reads as a plan: refuse what cannot be done, reach the
//! host, preflight, run the tasks from `kubeseed_provision::plans`, with the
//! status (written by server-side apply under [`FIELD_MANAGER`]) saying
//! where it stands after each step. [`finalizer()`] wraps it, so a member's
//! cleanup runs before the object disappears; cleanup is idempotent and safe
//! when apply never reached the host.

pub mod api_load_balancer;
pub mod control_plane_member;
pub mod etcd_member;
pub mod status;
pub mod steps;
pub mod worker_node;

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::future::{BoxFuture, Shared};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use kube::core::ClusterResourceScope;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::utils::Predicate;
use kube::runtime::{WatchStreamExt, predicates, reflector, watcher};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Instrument, info, info_span, warn};

use kubeseed_crds::v1alpha1::HostObject;

use crate::context::{Context, FIELD_MANAGER};
use crate::error::{Error, Result};

/// The finalizer every kind carries while the operator may still have work to
/// undo on its hosts.
pub const FINALIZER: &str = "kubeseed.io/host-cleanup";

/// How often an object is looked at again when nothing changed.
pub(crate) const RESYNC: Duration = Duration::from_secs(3600);
/// How long after a failure a reconcile is retried.
const RETRY: Duration = Duration::from_secs(30);

/// A kubeseed kind a controller reconciles.
pub trait Member:
    Resource<DynamicType = (), Scope = ClusterResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
    + Send
    + Sync
    + HostObject
    + 'static
{
    /// The conditions the object's status carries now.
    fn conditions(&self) -> &[Condition] {
        self.common_status()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default()
    }
    /// The SSH address(es) of its host(s), for spans and messages.
    fn hosts(&self) -> String {
        self.host_addresses().join(",")
    }
    /// Makes the host(s) what the object asks.
    fn apply(obj: Arc<Self>, ctx: Arc<Context>) -> BoxFuture<'static, Result<Action>>;
    /// Undoes what apply did, before the object goes.
    fn cleanup(obj: Arc<Self>, ctx: Arc<Context>) -> BoxFuture<'static, Result<Action>>;
    /// Other objects whose changes concern objects of this kind (the
    /// cluster's record, other members); none by default.
    fn watch_related(controller: Controller<Self>, _ctx: &Context) -> Controller<Self> {
        controller
    }
}

/// A mapper for `Controller::watches`: any change of the watched object
/// concerns every object of kind `K` in `store` (the cluster's record, an
/// etcd member that every External master lists).
pub fn everyone<K, T>(store: Store<K>) -> impl Fn(T) -> Vec<ObjectRef<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    move |_| {
        store
            .state()
            .iter()
            .map(|o| ObjectRef::from_obj(o.as_ref()))
            .collect()
    }
}

/// Makes every object of kind `K` look again when the cluster's record
/// (ConfigMap `CLUSTER_OBJECT` in the operator's namespace) changes: a new
/// endpoint or VIP goes into certificates and kubeconfigs.
pub fn on_cluster_record<K>(controller: Controller<K>, ctx: &Context) -> Controller<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let store = controller.store();
    let records: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(ctx.client.clone(), &ctx.namespace);
    controller.watches(
        records,
        kube::runtime::watcher::Config::default()
            .fields(&format!("metadata.name={}", crate::cluster::CLUSTER_OBJECT)),
        everyone(store),
    )
}

/// A future that completes when the controllers must stop.
pub type StopSignal = Shared<BoxFuture<'static, ()>>;

/// Runs the controller of kind `K` until `stop` completes.
pub async fn run<K: Member>(ctx: Arc<Context>, stop: StopSignal) {
    let api: Api<K> = Api::all(ctx.client.clone());
    let kind = K::kind(&()).to_string();
    info!(kind = %kind, "controller starting");
    let (reader, writer) = reflector::store();
    // Only a change of the spec (the generation, bumped on deletion too) or
    // of the finalizers wakes an object: not the status it writes itself. A
    // failing join writes its status twice (Joining, then the failure), and
    // reacting to that would retry the host at once, again and again,
    // instead of after error_policy's pause.
    let objects = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(
            (predicates::generation as fn(&K) -> Option<u64>).combine(predicates::finalizers),
            Default::default(),
        );
    let controller = Controller::for_stream(objects, reader);
    K::watch_related(controller, &ctx)
        .graceful_shutdown_on(stop)
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|r| {
            if let Err(e) = r {
                // Reconcile errors were logged inside their span; these are
                // watch/queue errors of the runtime.
                warn!(error = %e, "controller stream error");
            }
            futures::future::ready(())
        })
        .await;
    info!(kind = %kind, "controller stopped");
}

/// Reconciles one object of kind `K`: finalizer, pipeline, metrics and events.
pub async fn reconcile<K: Member>(obj: Arc<K>, ctx: Arc<Context>) -> Result<Action> {
    let kind = K::kind(&()).to_string();
    let name = obj.meta().name.clone().ok_or(Error::MissingName)?;
    let hosts = obj.hosts();
    let span = info_span!("reconcile", kind = %kind, name = %name, host = %hosts);
    async move {
        let _timer = ctx.metrics.reconcile_started(&kind);
        let api: Api<K> = Api::all(ctx.client.clone());
        let result = finalizer(&api, FINALIZER, obj.clone(), |event| async {
            match event {
                Event::Apply(o) => K::apply(o, ctx.clone()).await,
                Event::Cleanup(o) => K::cleanup(o, ctx.clone()).await,
            }
        })
        .await
        .map_err(Error::from);
        if let Err(e) = &result {
            warn!(error = %e, reason = e.event_reason(), "reconcile failed");
            ctx.metrics.reconcile_failed(&kind, e);
            publish(
                &ctx,
                obj.as_ref(),
                EventType::Warning,
                e.event_reason(),
                e.to_string(),
            )
            .await;
        }
        result
    }
    .instrument(span)
    .await
}

/// Retries after a fixed pause; the failure was already logged, counted and
/// published by [`reconcile`], where it could still be awaited.
pub fn error_policy<K: Member>(_obj: Arc<K>, _err: &Error, _ctx: Arc<Context>) -> Action {
    Action::requeue(RETRY)
}

/// Whether `conditions` say the host was provisioned for `generation` of the
/// spec (`Provisioned=True` observed at that generation).
pub fn provisioned_for(conditions: &[Condition], generation: Option<i64>) -> bool {
    generation.is_some()
        && conditions.iter().any(|c| {
            c.type_ == kubeseed_crds::v1alpha1::conditions::PROVISIONED
                && c.status == "True"
                && c.observed_generation == generation
        })
}

/// Writes `status` by server-side apply under the operator's field manager.
pub async fn write_status<K: Member>(
    api: &Api<K>,
    name: &str,
    status: serde_json::Value,
) -> Result<()> {
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    // force: this manager is the only writer of these status fields, and
    // should take them over from a bootstrap tool that wrote them first.
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(name, &params, &Patch::Apply(&body))
        .await
        .map_err(Error::Kube)?;
    Ok(())
}

/// Publishes an Event about `obj`; a failure is logged, never fatal, because
/// the status already carries the same facts.
pub(crate) async fn publish<K: Member>(
    ctx: &Context,
    obj: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    publish_for(ctx, obj, type_, reason, "Reconcile", note).await;
}

/// [`publish`] with its own `action` (a task's id): the recorder folds
/// Events of one object into a series by type, reason and action, keeping
/// the first note, so each task's Event needs its own action to be seen.
pub(crate) async fn publish_for<K: Member>(
    ctx: &Context,
    obj: &K,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let mut action: String = action.chars().take(128).collect();
    if action.is_empty() {
        action = "Reconcile".into();
    }
    let event = KubeEvent {
        type_,
        reason: reason.into(),
        note: Some(truncate_note(note)),
        action,
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &obj.object_ref(&())).await {
        warn!(error = %e, name = %obj.name_any(), "cannot publish event");
    }
}

/// The API refuses an Event whose note is longer than 1024 bytes; the
/// status carries the whole message.
pub(crate) fn truncate_note(mut note: String) -> String {
    const MAX: usize = 1024;
    if note.len() > MAX {
        let mut end = MAX - 3;
        while !note.is_char_boundary(end) {
            end -= 1;
        }
        note.truncate(end);
        note.push_str("...");
    }
    note
}

/// Starts the controller of every kind and waits for all of them to stop.
pub async fn run_all(ctx: Arc<Context>, stop: StopSignal) {
    futures::join!(
        control_plane_member::run(ctx.clone(), stop.clone()),
        etcd_member::run(ctx.clone(), stop.clone()),
        api_load_balancer::run(ctx.clone(), stop.clone()),
        worker_node::run(ctx.clone(), stop.clone()),
        crate::pod_routes::run(ctx.clone(), stop.clone()),
        crate::csr_approval::run(ctx.clone(), stop.clone()),
        crate::etcd_audit::run(ctx, stop),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn provisioned(status: &str, generation: i64) -> Condition {
        Condition {
            type_: "Provisioned".into(),
            status: status.into(),
            reason: "Seeded".into(),
            message: String::new(),
            observed_generation: Some(generation),
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
        }
    }

    #[test]
    fn an_event_note_fits_the_apis_limit() {
        let long = "é".repeat(700);
        let note = truncate_note(long);
        assert!(note.len() <= 1024 && note.ends_with("..."));
        assert_eq!(truncate_note("short".into()), "short");
    }

    #[test]
    fn a_seeded_member_is_adopted_only_for_the_generation_it_was_provisioned_at() {
        assert!(provisioned_for(&[provisioned("True", 1)], Some(1)));
        assert!(!provisioned_for(&[provisioned("True", 1)], Some(2)));
        assert!(!provisioned_for(&[provisioned("False", 1)], Some(1)));
        assert!(!provisioned_for(&[], Some(1)));
        assert!(!provisioned_for(&[provisioned("True", 1)], None));
    }
}
