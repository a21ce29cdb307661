//! Controller of `ControlPlaneMember`: a Kubernetes master on one host.
//!
//! A join reads as its plan: refuse a conflicting object; reach the host
//! (recording a first-seen host key before any command runs); preflight;
//! verify the bundle the cluster was seeded from; add the stacked etcd
//! member as a learner; run the master's tasks from
//! `kubeseed_provision::plans` (the same ones `bootstrap seed` runs); promote
//! the learner once it has caught up; record the member's `EtcdMember`.
//! Every step is a condition, and every change an Event.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::info;

use kubeseed_crds::v1alpha1::conditions::{PROVISIONED, READY};
use kubeseed_crds::v1alpha1::{
    ControlPlaneMember, ControlPlaneMemberSpec, EtcdMember, EtcdTopology, Phase,
};
use kubeseed_provision::cluster::{EtcdMember as EtcdPlacementSpec, Member as ClusterMember};
use kubeseed_provision::plans::{
    self, ComponentSettings, ControlPlaneInput, EtcdHooks, EtcdPlan, MasterOrdinal,
};
use kubeseed_provision::preflight::Expectations;
use kubeseed_provision::render::InitialClusterState;

use super::status::StatusBook;
use super::steps::plan_error;
use super::{Member, RESYNC, StopSignal, provisioned_for, publish, steps};
use crate::cluster::ClusterMaterial;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::{etcd_access, hosts, run_plan};

/// How long a learner may take to catch up before the join fails.
const CATCH_UP: Duration = Duration::from_secs(300);
/// How soon a refused join (conflict, preflight) is looked at again.
const REFUSED_RETRY: Duration = Duration::from_secs(120);
/// How long a leave waits for the Node's Pods to be evicted.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(180);

impl Member for ControlPlaneMember {
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

    /// Every master looks again when the cluster's record changes (a new
    /// endpoint or VIP goes into every serving certificate) or an etcd
    /// member comes or goes (External masters' `--etcd-servers`).
    fn watch_related(controller: Controller<Self>, ctx: &Context) -> Controller<Self> {
        let store = controller.store();
        let etcd_members: Api<EtcdMember> = Api::all(ctx.client.clone());
        super::on_cluster_record(controller, ctx).watches(
            etcd_members,
            watcher::Config::default(),
            super::everyone(store),
        )
    }
}

/// Runs the `ControlPlaneMember` controller until `stop` completes.
pub async fn run(ctx: Arc<Context>, stop: StopSignal) {
    super::run::<ControlPlaneMember>(ctx, stop).await;
}

/// Another object that claims the same host or the same advertise
/// address, and was there first (older, or as old and named first).
pub fn conflict(obj: &ControlPlaneMember, all: &[ControlPlaneMember]) -> Option<String> {
    let key = |o: &ControlPlaneMember| (o.metadata.creation_timestamp.clone(), o.name_any());
    all.iter()
        .filter(|o| o.name_any() != obj.name_any() && key(o) < key(obj))
        .find_map(|o| {
            if o.spec.host.address == obj.spec.host.address {
                Some(format!(
                    "ControlPlaneMember {} already provisions host {}: delete one of them; nothing was done to the host",
                    o.name_any(),
                    o.spec.host.address
                ))
            } else if o.spec.advertise_address() == obj.spec.advertise_address() {
                Some(format!(
                    "ControlPlaneMember {} already advertises {}: give this one its own advertiseAddress; nothing was done to the host",
                    o.name_any(),
                    o.spec.advertise_address()
                ))
            } else {
                None
            }
        })
}

async fn join(obj: Arc<ControlPlaneMember>, ctx: Arc<Context>) -> Result<Action> {
    let name = obj.name_any();
    let api: Api<ControlPlaneMember> = Api::all(ctx.client.clone());
    let mut book = StatusBook::new(&api, obj.as_ref(), &name);

    // ---- refuse what cannot be done, touching nothing ----------------------
    let all = api.list(&ListParams::default()).await?;
    if let Some(why) = conflict(&obj, &all.items) {
        steps::refuse(&ctx, &mut book, obj.as_ref(), "Conflict", why).await?;
        return Ok(Action::requeue(REFUSED_RETRY));
    }
    let advertise: IpAddr = match obj.spec.advertise_address().parse() {
        Ok(ip) => ip,
        Err(_) => {
            let why = format!(
                "host.address {:?} is a name: set advertiseAddress to the IP address the control plane advertises",
                obj.spec.host.address
            );
            book.phase(Phase::Failed)
                .set(READY, false, "AdvertiseAddressRequired", why.clone());
            book.write().await?;
            return Ok(Action::requeue(REFUSED_RETRY));
        }
    };
    let material = steps::material(&ctx, &mut book).await?;
    if let Some(why) = unsupported(&obj.spec, &material) {
        steps::refuse(&ctx, &mut book, obj.as_ref(), "Unsupported", why).await?;
        return Ok(Action::requeue(REFUSED_RETRY));
    }

    // ---- what the master is made of; done already? ------------------------
    let etcd_member = EtcdPlacementSpec {
        member: ClusterMember::new(name.clone(), advertise),
        client_port: obj.spec.etcd.client_port(),
        peer_port: obj.spec.etcd.peer_port(),
        data_dir: obj.spec.etcd.data_dir().to_owned(),
    };
    // Each stacked apiserver talks to its own etcd member, as kubeadm's do;
    // an External one to every Ready EtcdMember (kept in step: a change to
    // that list changes the cluster inputs below). Its certificate names its
    // own addresses: a join restarts nothing on the other masters.
    let stacked = obj.spec.etcd.topology == EtcdTopology::Stacked;
    let etcd_servers = if stacked {
        vec![etcd_member.clone()]
    } else {
        let ready = etcd_access::ready_members(&ctx).await?;
        if ready.is_empty() {
            let why = "the External topology needs at least one Ready EtcdMember: apply EtcdMembers first; nothing was done to the host".to_owned();
            steps::refuse(&ctx, &mut book, obj.as_ref(), "NoEtcdMembers", why).await?;
            return Ok(Action::requeue(REFUSED_RETRY));
        }
        ready
    };
    let mut spec = material.record.spec_with(
        vec![ClusterMember::new(name.clone(), advertise)],
        etcd_servers,
    );
    let api_server = obj.spec.api_server.clone().unwrap_or_default();
    spec.extra_sans = api_server.extra_sans.clone();
    spec.check().map_err(plan_error)?;
    let inputs = plans::cluster_inputs_digest(&spec, &name).map_err(plan_error)?;
    let recorded_inputs = obj
        .status
        .as_ref()
        .and_then(|s| s.cluster_inputs.as_deref());
    let provisioned = provisioned_for(obj.conditions(), obj.meta().generation);
    if provisioned && recorded_inputs == Some(inputs.as_str()) {
        return Ok(Action::requeue(RESYNC));
    }
    // A master provisioned before restarts its apiserver when its plan runs
    // again (a new endpoint, VIP or spec): one master at a time.
    // (A failed re-run leaves Provisioned False; the recorded inputs stay.)
    let joined_before = recorded_inputs.is_some()
        || obj
            .conditions()
            .iter()
            .any(|c| c.type_ == PROVISIONED && c.status == "True");
    let _turn = if joined_before {
        let turn = ctx.restart_turn.clone().lock_owned().await;
        book.set(
            PROVISIONED,
            false,
            "Reconfiguring",
            "the cluster's endpoint, VIP or etcd members, or this object's spec, changed: provisioning the master again (new certificates, then its apiserver restarted; one master at a time)",
        );
        book.write().await?;
        publish(
            &ctx,
            obj.as_ref(),
            EventType::Normal,
            "Reconfiguring",
            "provisioning the master again; its apiserver restarts once".to_owned(),
        )
        .await;
        Some(turn)
    } else {
        None
    };

    // ---- reach the host; record its key before any command -----------------
    let session = steps::reach(&ctx, &mut book, obj.as_ref()).await?;

    // ---- preflight -----------------------------------------------------------
    let expectations = match obj.spec.etcd.topology {
        EtcdTopology::Stacked => Expectations::control_plane(),
        EtcdTopology::External => Expectations::control_plane_without_etcd(),
    };
    let Some(steps::Preflighted { profile, .. }) = steps::preflight(
        &ctx,
        &mut book,
        obj.as_ref(),
        &session,
        expectations,
        &material,
        advertise,
    )
    .await?
    else {
        return Ok(Action::requeue(REFUSED_RETRY));
    };

    // ---- compose the plan ------------------------------------------------------
    let bundle = crate::bundle::open(&ctx, &material).await?;
    let peer_url = etcd_member.peer_url().map_err(plan_error)?;
    let etcd = Arc::new(etcd_access::client(&ctx, &material).await?);
    let (etcd_plan, etcd_hooks) = if stacked {
        let members = etcd.members().await?;
        let initial_cluster =
            plans::initial_cluster_for(&members, &name, &peer_url).map_err(|f| Error::Plan {
                reason: f.reason,
                message: f.message,
            })?;
        let plan = EtcdPlan {
            member: etcd_member,
            initial_cluster,
            state: InitialClusterState::Existing,
            extra_args: Default::default(),
        };
        let hooks = EtcdHooks::learner(&etcd, &name, &peer_url, CATCH_UP);
        (Some(plan), hooks)
    } else {
        (None, EtcdHooks::default())
    };
    let node = master_node(&obj.spec, &name, advertise, profile);
    let components = ComponentSettings {
        api_server: api_server.extra_args,
        controller_manager: obj
            .spec
            .controller_manager
            .clone()
            .map(|c| c.extra_args)
            .unwrap_or_default(),
        scheduler: obj
            .spec
            .scheduler
            .clone()
            .map(|c| c.extra_args)
            .unwrap_or_default(),
    };
    // The seed keeps its super-admin.conf when its plan runs again.
    let ordinal = if name == material.record.seed.node_name {
        MasterOrdinal::First
    } else {
        MasterOrdinal::Joined
    };
    let pki = plans::master_pki(&session, &material.cas, &spec, &name, ordinal)
        .await
        .map_err(|e| Error::Plan {
            reason: e.reason(),
            message: e.to_string(),
        })?;
    let tasks = plans::control_plane(ControlPlaneInput {
        spec: &spec,
        node: &node,
        etcd: etcd_plan,
        pki,
        encryption: material.encryption.clone(),
        bundle,
        cluster_id: material.record.id.clone(),
        after_api: Vec::new(),
        etcd_hooks,
        components,
    })
    .map_err(plan_error)?;

    // ---- run it ------------------------------------------------------------------
    steps::run_join(&ctx, &mut book, obj.as_ref(), &session, "join", &tasks).await?;
    if stacked {
        etcd_access::record_stacked_member(&ctx, obj.as_ref(), &etcd, &peer_url, &material).await?;
    }
    let versions = json!({
        "kubernetes": material.record.kubernetes_version,
        "etcd": material.record.etcd_version,
    });
    let (reason, done) = if joined_before {
        ("Reconfigured", format!("{name} provisioned again"))
    } else {
        ("Joined", format!("{name} joined the control plane"))
    };
    book.phase(Phase::Ready)
        .set(PROVISIONED, true, reason, done.clone())
        .set(
            READY,
            true,
            "Joined",
            "etcd voting, kube-apiserver ready, Node Ready",
        )
        .field("nodeName", json!(name))
        .field("etcdMember", json!(stacked.then_some(&name)))
        .field("clusterInputs", json!(inputs))
        .field("versions", versions);
    book.write().await?;
    info!(reason, "control-plane member provisioned");
    publish(&ctx, obj.as_ref(), EventType::Normal, reason, done).await;
    Ok(Action::requeue(RESYNC))
}

/// What this version cannot do for the object, said before anything is
/// touched: another Kubernetes version than the cluster's bundle, or an
/// apiserver port other than the cluster's (its kubeconfigs use that one).
pub fn unsupported(spec: &ControlPlaneMemberSpec, material: &ClusterMaterial) -> Option<String> {
    let cluster = material.record.kubernetes_version.trim_start_matches('v');
    if let Some(v) = &spec.kubernetes_version
        && v.trim_start_matches('v') != cluster
    {
        return Some(format!(
            "kubernetesVersion {v} differs from the cluster's v{cluster}: masters run the version of the bundle the cluster was seeded with; remove the field or set it to v{cluster}"
        ));
    }
    let endpoint = material.record.endpoint_port;
    if let Some(port) = spec.api_server.as_ref().and_then(|a| a.bind_port)
        && port != i32::from(endpoint)
    {
        return Some(format!(
            "apiServer.bindPort {port} differs from the cluster's API port {endpoint}: every master serves on the same port; remove the field"
        ));
    }
    None
}

/// The master's Node: the control-plane role and taint, plus the object's
/// kubelet labels, taints (which replace the default taint when given) and
/// flags.
fn master_node(
    spec: &ControlPlaneMemberSpec,
    name: &str,
    ip: IpAddr,
    profile: kubeseed_provision::cluster::HostProfile,
) -> kubeseed_provision::cluster::NodeSpec {
    let mut node = plans::master_node(name, ip, profile);
    if let Some(k) = &spec.kubelet {
        node.labels.extend(k.labels.clone());
        if let Some(taints) = &k.taints {
            node.taints = taints
                .iter()
                .map(|t| kubeseed_provision::cluster::Taint {
                    key: t.key.clone(),
                    value: t.value.clone().filter(|v| !v.is_empty()),
                    effect: t.effect.clone(),
                })
                .collect();
        }
        node.kubelet_extra_args = k.extra_args.clone();
    }
    node
}

/// The leave, in the order that never costs the cluster its quorum or a
/// Pod its disruption budget: refuse when etcd would lose quorum; wait
/// until no load balancer forwards to it; cordon and drain the Node; move etcd leadership away; remove the etcd member; stop
/// and clean the host (its etcd data kept as a backup); delete the Node.
async fn leave(obj: Arc<ControlPlaneMember>, ctx: Arc<Context>) -> Result<Action> {
    let name = obj.name_any();
    if let Some(done) = steps::release_if_untouched(&ctx, obj.as_ref()).await {
        return Ok(done);
    }
    let api: Api<ControlPlaneMember> = Api::all(ctx.client.clone());
    let mut book = StatusBook::new(&api, obj.as_ref(), &name);
    let material = ClusterMaterial::load(&ctx).await?;
    let advertise: IpAddr = obj.spec.advertise_address().parse().map_err(plan_error)?;
    let peer_url = kubeseed_provision::cluster::url_for(advertise, obj.spec.etcd.peer_port());
    let etcd = etcd_access::client(&ctx, &material).await?;
    let members = etcd.members().await?;
    let member = kubeseed_provision::etcd::find_by_peer_url(&members, &peer_url).cloned();
    if let Some(m) = &member {
        steps::refuse_if_quorum_at_risk(&mut book, &etcd, &members, m).await?;
    }
    book.phase(Phase::Deleting).set(
        READY,
        false,
        "Leaving",
        "out of the load balancer's backends, then draining the Node, then leaving etcd",
    );
    book.write().await?;

    crate::load_balancers::wait_released(&ctx, &obj, material.record.endpoint_port).await?;

    crate::drain::cordon(&ctx, &name).await?;
    if ctx.whereabouts.node.as_deref() == Some(name.as_str()) {
        // Never tear down the host this process runs on: the Node is
        // cordoned, so the replacement Pod lands elsewhere.
        crate::drain::hand_over(&ctx, &name).await?;
    }
    crate::drain::drain(&ctx, &name, DRAIN_TIMEOUT).await?;
    if let Some(m) = &member {
        steps::remove_from_etcd(&ctx, obj.as_ref(), &etcd, &members, m).await?;
    }

    let (session, _) = hosts::connect_to(&ctx, obj.as_ref()).await?;
    let data_dir = obj.spec.etcd.data_dir();
    let tasks = plans::teardown_master(data_dir, &steps::backup_suffix());
    run_plan::run(&ctx, obj.as_ref(), &session, None, &tasks).await?;
    crate::drain::delete_node(&ctx, &name).await?;
    info!("left the control plane");
    publish(
        &ctx,
        obj.as_ref(),
        EventType::Normal,
        "Left",
        format!("{name} left the control plane; its host is clean"),
    )
    .await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use kubeseed_crds::v1alpha1::{ControlPlaneMemberSpec, HostSpec};

    fn cpm(name: &str, address: &str, advertise: Option<&str>, created: i64) -> ControlPlaneMember {
        let mut o = ControlPlaneMember::new(
            name,
            ControlPlaneMemberSpec {
                host: HostSpec::new(address, "k"),
                advertise_address: advertise.map(str::to_owned),
                ..Default::default()
            },
        );
        o.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        o
    }

    #[test]
    fn the_younger_of_two_objects_on_one_host_is_the_conflict() {
        let a = cpm("a", "10.0.0.12", None, 10);
        let b = cpm("b", "10.0.0.12", None, 20);
        let all = [a.clone(), b.clone()];
        assert!(conflict(&a, &all).is_none());
        assert!(conflict(&b, &all).unwrap().contains("ControlPlaneMember a"));
    }

    #[test]
    fn a_shared_advertise_address_is_a_conflict_too() {
        let a = cpm("a", "h1.example", Some("10.0.0.12"), 10);
        let b = cpm("b", "h2.example", Some("10.0.0.12"), 20);
        assert!(
            conflict(&b, &[a.clone(), b.clone()])
                .unwrap()
                .contains("advertises")
        );
        let c = cpm("c", "10.0.0.13", None, 30);
        assert!(conflict(&c, &[a, b, c.clone()]).is_none());
    }
}
