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
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::info;

use kubeseed_crds::v1alpha1::conditions::{
    HOST_REACHABLE, PREFLIGHT_PASSED, PROVISIONED, READY, REASON_NOT_IMPLEMENTED,
    REASON_QUORUM_AT_RISK,
};
use kubeseed_crds::v1alpha1::{
    ControlPlaneMember, ControlPlaneMemberSpec, EtcdTopology, ObservedHostKey, Phase,
};
use kubeseed_provision::cluster::{EtcdMember as EtcdPlacementSpec, Member as ClusterMember};
use kubeseed_provision::plans::{
    self, AddLearner, ComponentSettings, ControlPlaneInput, EtcdHooks, EtcdPlan, MasterOrdinal,
    PromoteLearner,
};
use kubeseed_provision::preflight::{self, ClusterIdentity, Expectations};
use kubeseed_provision::render::InitialClusterState;

use super::status::StatusBook;
use super::{Member, RESYNC, StopSignal, provisioned_for, publish};
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
    if provisioned_for(obj.conditions(), obj.meta().generation) {
        return Ok(Action::requeue(RESYNC));
    }
    let api: Api<ControlPlaneMember> = Api::all(ctx.client.clone());
    let mut book = StatusBook::new(&api, obj.as_ref(), &name);

    // ---- refuse what cannot be done, touching nothing ----------------------
    let all = api.list(&ListParams::default()).await?;
    if let Some(why) = conflict(&obj, &all.items) {
        book.phase(Phase::Failed)
            .set(READY, false, "Conflict", why.clone());
        book.write().await?;
        publish(&ctx, obj.as_ref(), EventType::Warning, "Conflict", why).await;
        return Ok(Action::requeue(REFUSED_RETRY));
    }
    if obj.spec.etcd.topology == EtcdTopology::External {
        let why =
            "joining a master with the External etcd topology is not implemented yet: use Stacked"
                .to_owned();
        book.phase(Phase::Failed)
            .set(READY, false, REASON_NOT_IMPLEMENTED, why.clone());
        book.write().await?;
        publish(
            &ctx,
            obj.as_ref(),
            EventType::Warning,
            REASON_NOT_IMPLEMENTED,
            why,
        )
        .await;
        return Ok(Action::requeue(RESYNC));
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
    let material = match ClusterMaterial::load(&ctx).await {
        Ok(m) => m,
        Err(e) => {
            book.phase(Phase::Failed).set(
                READY,
                false,
                e.event_reason(),
                format!("{e}; nothing was done to the host"),
            );
            book.write().await?;
            return Err(e);
        }
    };
    if let Some(why) = unsupported(&obj.spec, &material) {
        book.phase(Phase::Failed)
            .set(READY, false, "Unsupported", why.clone());
        book.write().await?;
        publish(&ctx, obj.as_ref(), EventType::Warning, "Unsupported", why).await;
        return Ok(Action::requeue(REFUSED_RETRY));
    }

    // ---- reach the host; record its key before any command -----------------
    let recorded: ObservedHostKey = obj
        .status
        .as_ref()
        .map(|s| s.host_key.clone())
        .unwrap_or_default();
    let (session, keys) = match hosts::connect(&ctx, &obj.spec.host, &recorded).await {
        Ok(connected) => connected,
        Err(e) => {
            book.set(HOST_REACHABLE, false, e.event_reason(), e.to_string())
                .set(
                    READY,
                    false,
                    e.event_reason(),
                    "the host cannot be reached; nothing was changed on it",
                );
            book.write().await?;
            return Err(e);
        }
    };
    if let Some(record) = hosts::to_record(&keys, &recorded) {
        for (k, v) in serde_json::to_value(&record)
            .map_err(Error::Serialize)?
            .as_object()
            .into_iter()
            .flatten()
        {
            book.field(k, v.clone());
        }
    }
    book.set(
        HOST_REACHABLE,
        true,
        "Reachable",
        format!(
            "SSH as {} to {}; host key {}",
            session.user(),
            session.host(),
            keys.host.key.fingerprint()
        ),
    );
    book.write().await?;

    // ---- preflight -----------------------------------------------------------
    let facts = preflight::gather(&session).await.map_err(|e| Error::Plan {
        reason: "PreflightFailed",
        message: e.to_string(),
    })?;
    let mut expectations = Expectations::control_plane().in_cluster(ClusterIdentity {
        cluster_id: material.record.id.clone(),
        ca_fingerprint: Some(preflight::certificate_fingerprint(
            material.cas.cluster.cert_pem().as_bytes(),
        )),
        etcd_ca_fingerprint: Some(preflight::certificate_fingerprint(
            material.cas.etcd.cert_pem().as_bytes(),
        )),
    });
    expectations.advertise_address = Some(advertise);
    let report = preflight::evaluate(&facts, &expectations);
    let Some(profile) = facts.host_profile().filter(|_| report.is_ok()) else {
        let why = format!(
            "{}; nothing was changed on the host\n{}",
            report.summary(),
            report.table()
        );
        book.phase(Phase::Failed)
            .set(PREFLIGHT_PASSED, false, "Failed", why.clone())
            .set(READY, false, "PreflightFailed", report.summary());
        book.write().await?;
        publish(
            &ctx,
            obj.as_ref(),
            EventType::Warning,
            "PreflightFailed",
            report.summary(),
        )
        .await;
        return Ok(Action::requeue(REFUSED_RETRY));
    };
    book.set(PREFLIGHT_PASSED, true, "Passed", report.summary());
    book.write().await?;

    // ---- compose the plan ------------------------------------------------------
    let bundle = crate::bundle::open(&ctx, &material).await?;
    let etcd_member = EtcdPlacementSpec {
        member: ClusterMember::new(name.clone(), advertise),
        client_port: port(obj.spec.etcd.client_port, 2379),
        peer_port: port(obj.spec.etcd.peer_port, 2380),
        data_dir: obj
            .spec
            .etcd
            .data_dir
            .clone()
            .unwrap_or_else(|| kubeseed_provision::cluster::ETCD_DATA_DIR.to_owned()),
    };
    let peer_url = etcd_member.peer_url().map_err(plan_error)?;
    let etcd = Arc::new(etcd_access::client(&ctx, &material).await?);
    let members = etcd.members().await?;
    let initial_cluster =
        plans::initial_cluster_for(&members, &name, &peer_url).map_err(|f| Error::Plan {
            reason: f.reason,
            message: f.message,
        })?;
    // Each stacked apiserver talks to its own etcd member, as kubeadm's do,
    // and its certificate names its own addresses: a join restarts nothing
    // on the other masters.
    let mut spec = material.record.spec_with(
        vec![ClusterMember::new(name.clone(), advertise)],
        vec![etcd_member.clone()],
    );
    let api_server = obj.spec.api_server.clone().unwrap_or_default();
    spec.extra_sans = api_server.extra_sans.clone();
    spec.check().map_err(plan_error)?;
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
    let pki = plans::master_pki(&session, &material.cas, &spec, &name, MasterOrdinal::Joined)
        .await
        .map_err(|e| Error::Plan {
            reason: e.reason(),
            message: e.to_string(),
        })?;
    let tasks = plans::control_plane(ControlPlaneInput {
        spec: &spec,
        node: &node,
        etcd: Some(EtcdPlan {
            member: etcd_member,
            initial_cluster,
            state: InitialClusterState::Existing,
        }),
        pki,
        encryption: material.encryption.clone(),
        bundle,
        cluster_id: material.record.id.clone(),
        after_api: Vec::new(),
        etcd_hooks: EtcdHooks {
            before_start: vec![Box::new(AddLearner::new(etcd.clone(), &name, &peer_url))],
            after_healthy: vec![Box::new(PromoteLearner::new(
                etcd.clone(),
                &peer_url,
                CATCH_UP,
            ))],
        },
        components,
    })
    .map_err(plan_error)?;

    // ---- run it ------------------------------------------------------------------
    book.phase(Phase::Provisioning).set(
        PROVISIONED,
        false,
        "Joining",
        format!("running {} tasks on {}", tasks.len(), session.host()),
    );
    book.write().await?;
    let outcome = run_plan::run(&ctx, obj.as_ref(), &session, Some("join"), &tasks).await;
    if let Err(e) = outcome {
        let reason = e.reason;
        book.phase(Phase::Failed)
            .set(
                PROVISIONED,
                false,
                reason,
                format!("{e}; the host's progress is in /var/lib/kubeseed/journal/join.json and the join resumes from there"),
            )
            .set(READY, false, reason, "the join stopped; see Provisioned");
        book.write().await?;
        return Err(Error::Task(e));
    }
    crate::etcd_access::record_stacked_member(&ctx, obj.as_ref(), &etcd, &peer_url, &material)
        .await?;
    let versions = json!({
        "kubernetes": material.record.kubernetes_version,
        "etcd": material.record.etcd_version,
    });
    book.phase(Phase::Ready)
        .set(
            PROVISIONED,
            true,
            "Joined",
            format!("{name} joined the control plane"),
        )
        .set(
            READY,
            true,
            "Joined",
            "etcd voting, kube-apiserver ready, Node Ready",
        )
        .field("nodeName", json!(name))
        .field("etcdMember", json!(name))
        .field("versions", versions);
    book.write().await?;
    info!("joined the control plane");
    publish(
        &ctx,
        obj.as_ref(),
        EventType::Normal,
        "Joined",
        format!("{name} joined the control plane"),
    )
    .await;
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

/// Whether the operator ever touched the host: a recorded host key means
/// it connected, and only a connection can have changed anything.
fn touched(obj: &ControlPlaneMember) -> bool {
    obj.status.as_ref().is_some_and(|s| {
        s.host_key.observed_host_key.is_some() || s.host_key.host_key_fingerprint.is_some()
    }) || obj.conditions().iter().any(|c| c.type_ == PROVISIONED)
}

/// The leave, in the order that never costs the cluster its quorum or a
/// Pod its disruption budget: refuse when etcd would lose quorum; cordon and
/// drain the Node; move etcd leadership away; remove the etcd member; stop
/// and clean the host (its etcd data kept as a backup); delete the Node.
async fn leave(obj: Arc<ControlPlaneMember>, ctx: Arc<Context>) -> Result<Action> {
    let name = obj.name_any();
    if !touched(&obj) {
        publish(
            &ctx,
            obj.as_ref(),
            EventType::Normal,
            "Released",
            "nothing was done on the host".to_owned(),
        )
        .await;
        return Ok(Action::await_change());
    }
    let api: Api<ControlPlaneMember> = Api::all(ctx.client.clone());
    let mut book = StatusBook::new(&api, obj.as_ref(), &name);
    let material = ClusterMaterial::load(&ctx).await?;
    let advertise: IpAddr = obj.spec.advertise_address().parse().map_err(plan_error)?;
    let peer_url =
        kubeseed_provision::cluster::url_for(advertise, port(obj.spec.etcd.peer_port, 2380));
    let etcd = etcd_access::client(&ctx, &material).await?;
    let members = etcd.members().await?;
    let member = kubeseed_provision::etcd::find_by_peer_url(&members, &peer_url).cloned();
    if let Some(m) = &member {
        let healthy = etcd_access::healthy_members(&etcd, &members).await;
        if let Err(refused) =
            kubeseed_provision::etcd::quorum_after_removal(&members, m.id, &healthy)
        {
            let why = format!("{refused}; the object stays until that changes");
            book.phase(Phase::Deleting)
                .set(READY, false, REASON_QUORUM_AT_RISK, why.clone());
            book.write().await?;
            // An error, not an Action: the finalizer helper releases the
            // object whenever cleanup returns Ok. The reconcile's error path
            // publishes the Warning event and retries.
            return Err(Error::Plan {
                reason: REASON_QUORUM_AT_RISK,
                message: why,
            });
        }
    }
    book.phase(Phase::Deleting).set(
        READY,
        false,
        "Leaving",
        "draining the Node, then leaving etcd",
    );
    book.write().await?;

    crate::drain::cordon(&ctx, &name).await?;
    crate::drain::drain(&ctx, &name, DRAIN_TIMEOUT).await?;
    if let Some(m) = &member {
        if m.is_voter() {
            let leader = etcd.leader_status().await?;
            if leader.member_id == m.id {
                let to = members
                    .iter()
                    .find(|o| o.id != m.id && o.is_voter() && o.is_started())
                    .map(|o| o.id);
                if let Some(to) = to {
                    etcd.move_leader(to).await?;
                    info!(from = %m.id, to = %to, "etcd leadership moved");
                }
            }
        }
        etcd.remove(m.id).await?;
        publish(
            &ctx,
            obj.as_ref(),
            EventType::Normal,
            "EtcdMemberRemoved",
            format!("etcd member {} removed", m.id),
        )
        .await;
    }

    let (session, _) = hosts::connect(
        &ctx,
        &obj.spec.host,
        &obj.status
            .as_ref()
            .map(|s| s.host_key.clone())
            .unwrap_or_default(),
    )
    .await?;
    let data_dir = obj
        .spec
        .etcd
        .data_dir
        .clone()
        .unwrap_or_else(|| kubeseed_provision::cluster::ETCD_DATA_DIR.to_owned());
    let suffix = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    let tasks = plans::teardown_master(&data_dir, &suffix);
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

fn port(p: Option<i32>, default: u16) -> u16 {
    p.and_then(|p| u16::try_from(p).ok()).unwrap_or(default)
}

fn plan_error(e: impl std::fmt::Display) -> Error {
    Error::Plan {
        reason: "PlanInvalid",
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use kubeseed_crds::v1alpha1::{ControlPlaneMemberSpec, HostSpec, SecretRef};

    fn cpm(name: &str, address: &str, advertise: Option<&str>, created: i64) -> ControlPlaneMember {
        let mut o = ControlPlaneMember::new(
            name,
            ControlPlaneMemberSpec {
                host: HostSpec {
                    address: address.into(),
                    port: None,
                    user: None,
                    ssh_key_secret_ref: SecretRef {
                        name: "k".into(),
                        namespace: None,
                    },
                    host_key: None,
                    bastion: None,
                },
                advertise_address: advertise.map(str::to_owned),
                etcd: Default::default(),
                kubernetes_version: None,
                api_server: None,
                controller_manager: None,
                scheduler: None,
                kubelet: None,
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
