//! Controller of `EtcdMember`: one etcd member on one host.
//!
//! A member a Stacked `ControlPlaneMember` owns is that master's business:
//! its join adds and promotes it, its leave removes it, and this controller
//! keeps its hands off (writing nothing, so the two never race on its
//! status). A standalone member (the External topology) is provisioned
//! here, on the same steps a master takes: refuse a conflicting object;
//! reach the host (its key recorded first); preflight; etcd's certificates
//! and programs from the verified bundle; added as a learner, started with
//! `initial-cluster-state=existing`, promoted once caught up. Its leave
//! refuses to cost etcd its quorum, moves leadership away, removes the
//! member and cleans the host (the data kept as a backup).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::info;

use kubeseed_crds::v1alpha1::conditions::{ETCD_VOTING, PROVISIONED, READY};
use kubeseed_crds::v1alpha1::{
    ControlPlaneMember, EtcdMember, EtcdMemberSpec, EtcdTopology, Phase,
};
use kubeseed_provision::cluster::{EtcdMember as EtcdPlacementSpec, Member as ClusterMember};
use kubeseed_provision::etcd::find_by_peer_url;
use kubeseed_provision::pki::SubjectAltName;
use kubeseed_provision::plans::{self, EtcdHooks, EtcdNodeInput, EtcdPlan};
use kubeseed_provision::preflight::Expectations;
use kubeseed_provision::render::InitialClusterState;

use super::status::StatusBook;
use super::steps::plan_error;
use super::{Member, RESYNC, StopSignal, provisioned_for, publish, steps};
use crate::cluster::ClusterMaterial;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::{etcd_access, run_plan};

/// How long a learner may take to catch up before the join fails.
const CATCH_UP: Duration = Duration::from_secs(300);
/// How soon a refused join (conflict, preflight) is looked at again.
const REFUSED_RETRY: Duration = Duration::from_secs(120);

impl Member for EtcdMember {
    fn apply(obj: Arc<Self>, ctx: Arc<Context>) -> BoxFuture<'static, Result<Action>> {
        Box::pin(async move {
            if owning_master(&obj).is_some() {
                return Ok(Action::await_change());
            }
            join(obj, ctx).await
        })
    }

    fn cleanup(obj: Arc<Self>, ctx: Arc<Context>) -> BoxFuture<'static, Result<Action>> {
        Box::pin(async move {
            if owning_master(&obj).is_some() {
                // Removed from etcd by its master's leave, which runs before
                // the garbage collector deletes this object.
                return Ok(Action::await_change());
            }
            leave(obj, ctx).await
        })
    }
}

/// The `ControlPlaneMember` that owns this member, if one does.
pub fn owning_master(member: &EtcdMember) -> Option<&str> {
    member
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.kind == ControlPlaneMember::kind(&()))
        .map(|o| o.name.as_str())
}

/// Runs the `EtcdMember` controller until `stop` completes.
pub async fn run(ctx: Arc<Context>, stop: StopSignal) {
    super::run::<EtcdMember>(ctx, stop).await;
}

/// Another object that claims this member's host or its peer address and
/// was there first: an older `EtcdMember`, or a Stacked master (which runs
/// its own etcd member on its host).
pub fn conflict(
    obj: &EtcdMember,
    members: &[EtcdMember],
    masters: &[ControlPlaneMember],
) -> Option<String> {
    let key = |o: &EtcdMember| (o.metadata.creation_timestamp.clone(), o.name_any());
    let peer = |spec: &EtcdMemberSpec| (spec.advertise_address().to_owned(), spec.peer_port());
    let older = members
        .iter()
        .filter(|o| o.name_any() != obj.name_any() && key(o) < key(obj))
        .find(|o| o.spec.host.address == obj.spec.host.address || peer(&o.spec) == peer(&obj.spec));
    if let Some(o) = older {
        return Some(format!(
            "EtcdMember {} already runs etcd on host {} ({}:{}): delete one of them; nothing was done to the host",
            o.name_any(),
            o.spec.host.address,
            o.spec.advertise_address(),
            o.spec.peer_port()
        ));
    }
    masters
        .iter()
        .find(|m| {
            m.spec.etcd.topology == EtcdTopology::Stacked
                && (m.spec.host.address == obj.spec.host.address
                    || m.spec.advertise_address() == obj.spec.advertise_address())
        })
        .map(|m| {
            format!(
                "ControlPlaneMember {} runs its stacked etcd member on host {}: a standalone EtcdMember needs a host of its own; nothing was done to the host",
                m.name_any(),
                m.spec.host.address
            )
        })
}

/// What this version cannot do for the object: another etcd version than
/// the bundle's, or an extra SAN that is neither an IP address nor a DNS
/// name.
pub fn unsupported(spec: &EtcdMemberSpec, material: &ClusterMaterial) -> Option<String> {
    let cluster = material.record.etcd_version.trim_start_matches('v');
    if let Some(v) = &spec.etcd_version
        && v.trim_start_matches('v') != cluster
    {
        return Some(format!(
            "etcdVersion {v} differs from the cluster's v{cluster}: members run the etcd of the bundle the cluster was seeded with; remove the field or set it to v{cluster}"
        ));
    }
    spec.extra_sans.iter().find_map(|s| {
        s.parse::<SubjectAltName>()
            .err()
            .map(|e| format!("extraSANs: {e}"))
    })
}

async fn join(obj: Arc<EtcdMember>, ctx: Arc<Context>) -> Result<Action> {
    let name = obj.name_any();
    if provisioned_for(obj.conditions(), obj.meta().generation) {
        return Ok(Action::requeue(RESYNC));
    }
    let api: Api<EtcdMember> = Api::all(ctx.client.clone());
    let mut book = StatusBook::new(&api, obj.as_ref(), &name);

    // ---- refuse what cannot be done, touching nothing ----------------------
    let members = api.list(&ListParams::default()).await?.items;
    let masters: Api<ControlPlaneMember> = Api::all(ctx.client.clone());
    let masters = masters.list(&ListParams::default()).await?.items;
    if let Some(why) = conflict(&obj, &members, &masters) {
        steps::refuse(&ctx, &mut book, obj.as_ref(), "Conflict", why).await?;
        return Ok(Action::requeue(REFUSED_RETRY));
    }
    let Ok(advertise) = obj.spec.advertise_address().parse::<IpAddr>() else {
        let why = format!(
            "host.address {:?} is a name: set advertiseAddress to the IP address etcd advertises",
            obj.spec.host.address
        );
        book.phase(Phase::Failed)
            .set(READY, false, "AdvertiseAddressRequired", why);
        book.write().await?;
        return Ok(Action::requeue(REFUSED_RETRY));
    };
    let material = ClusterMaterial::load(&ctx).await?;
    if let Some(why) = unsupported(&obj.spec, &material) {
        steps::refuse(&ctx, &mut book, obj.as_ref(), "Unsupported", why).await?;
        return Ok(Action::requeue(REFUSED_RETRY));
    }

    // ---- reach the host; preflight -------------------------------------------
    let session = steps::reach(&ctx, &mut book, obj.as_ref()).await?;
    let mut expectations = Expectations::etcd();
    expectations.ports = vec![obj.spec.client_port(), obj.spec.peer_port()];
    if steps::preflight(
        &ctx,
        &mut book,
        obj.as_ref(),
        &session,
        expectations,
        &material,
        advertise,
    )
    .await?
    .is_none()
    {
        return Ok(Action::requeue(REFUSED_RETRY));
    }

    // ---- compose the plan ------------------------------------------------------
    let placement = EtcdPlacementSpec {
        member: ClusterMember::new(name.clone(), advertise),
        client_port: obj.spec.client_port(),
        peer_port: obj.spec.peer_port(),
        data_dir: obj.spec.data_dir().to_owned(),
    };
    let spec = material
        .record
        .spec_with(vec![material.record.seed_member()], vec![placement.clone()]);
    let peer_url = placement.peer_url().map_err(plan_error)?;
    let bundle = crate::bundle::open(&ctx, &material).await?;
    let etcd = Arc::new(etcd_access::client(&ctx, &material).await?);
    let current = etcd.members().await?;
    let initial_cluster =
        plans::initial_cluster_for(&current, &name, &peer_url).map_err(|f| Error::Plan {
            reason: f.reason,
            message: f.message,
        })?;
    let extra_sans: Vec<SubjectAltName> = obj
        .spec
        .extra_sans
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    let pki = plans::etcd_member_pki(&session, &material.cas, &spec, &name, &extra_sans)
        .await
        .map_err(|e| Error::Plan {
            reason: e.reason(),
            message: e.to_string(),
        })?;
    let tasks = plans::etcd_node(EtcdNodeInput {
        etcd: EtcdPlan {
            member: placement,
            initial_cluster,
            state: InitialClusterState::Existing,
            extra_args: obj.spec.extra_args.clone(),
        },
        pki,
        bundle,
        cluster_id: material.record.id.clone(),
        hooks: EtcdHooks::learner(&etcd, &name, &peer_url, CATCH_UP),
    })
    .map_err(plan_error)?;

    // ---- run it ------------------------------------------------------------------
    steps::run_join(&ctx, &mut book, obj.as_ref(), &session, "etcd-join", &tasks).await?;
    let id = find_by_peer_url(&etcd.members().await?, &peer_url).map(|m| m.id.to_string());
    book.phase(Phase::Ready)
        .set(PROVISIONED, true, "Joined", format!("{name} joined etcd"))
        .set(
            ETCD_VOTING,
            true,
            "Promoted",
            "joined as a learner and promoted",
        )
        .set(READY, true, "Joined", "the member is healthy")
        .field("memberId", json!(id))
        .field("isLearner", json!(false))
        .field("versions", json!({"etcd": material.record.etcd_version}));
    book.write().await?;
    info!("joined etcd");
    publish(
        &ctx,
        obj.as_ref(),
        EventType::Normal,
        "Joined",
        format!("{name} joined etcd"),
    )
    .await;
    Ok(Action::requeue(RESYNC))
}

/// The leave: refuse when etcd would lose its quorum; move leadership
/// away; remove the member; clean the host (its data kept as a backup).
async fn leave(obj: Arc<EtcdMember>, ctx: Arc<Context>) -> Result<Action> {
    let name = obj.name_any();
    if let Some(done) = steps::release_if_untouched(&ctx, obj.as_ref()).await {
        return Ok(done);
    }
    let api: Api<EtcdMember> = Api::all(ctx.client.clone());
    let mut book = StatusBook::new(&api, obj.as_ref(), &name);
    let material = ClusterMaterial::load(&ctx).await?;
    let advertise: IpAddr = obj.spec.advertise_address().parse().map_err(plan_error)?;
    let peer_url = kubeseed_provision::cluster::url_for(advertise, obj.spec.peer_port());
    let etcd = etcd_access::client(&ctx, &material).await?;
    let members = etcd.members().await?;
    let member = find_by_peer_url(&members, &peer_url).cloned();
    if let Some(m) = &member {
        steps::refuse_if_quorum_at_risk(&mut book, &etcd, &members, m).await?;
        book.phase(Phase::Deleting)
            .set(READY, false, "Leaving", "leaving etcd");
        book.write().await?;
        steps::remove_from_etcd(&ctx, obj.as_ref(), &etcd, &members, m).await?;
    }
    let (session, _) = crate::hosts::connect_to(&ctx, obj.as_ref()).await?;
    let tasks = plans::teardown_etcd(obj.spec.data_dir(), &steps::backup_suffix());
    run_plan::run(&ctx, obj.as_ref(), &session, None, &tasks).await?;
    info!("left etcd");
    publish(
        &ctx,
        obj.as_ref(),
        EventType::Normal,
        "Left",
        format!("{name} left etcd; its host is clean"),
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

    fn host(address: &str) -> HostSpec {
        HostSpec::new(address, "k")
    }

    fn member(name: &str, address: &str, created: i64) -> EtcdMember {
        let mut o = EtcdMember::new(
            name,
            EtcdMemberSpec {
                host: host(address),
                advertise_address: None,
                client_port: None,
                peer_port: None,
                data_dir: None,
                etcd_version: None,
                extra_sans: Vec::new(),
                extra_args: Default::default(),
            },
        );
        o.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        o
    }

    fn master(name: &str, address: &str, topology: EtcdTopology) -> ControlPlaneMember {
        let mut spec = ControlPlaneMemberSpec {
            host: host(address),
            ..Default::default()
        };
        spec.etcd.topology = topology;
        ControlPlaneMember::new(name, spec)
    }

    #[test]
    fn the_younger_of_two_members_on_one_host_is_the_conflict() {
        let a = member("a", "10.0.0.21", 10);
        let b = member("b", "10.0.0.21", 20);
        let all = [a.clone(), b.clone()];
        assert!(conflict(&a, &all, &[]).is_none());
        assert!(conflict(&b, &all, &[]).unwrap().contains("EtcdMember a"));
    }

    #[test]
    fn a_stacked_master_on_the_host_is_a_conflict_an_external_one_is_not() {
        let m = member("e1", "10.0.0.21", 10);
        let stacked = master("m1", "10.0.0.21", EtcdTopology::Stacked);
        assert!(
            conflict(&m, std::slice::from_ref(&m), &[stacked])
                .unwrap()
                .contains("stacked")
        );
        let external = master("m1", "10.0.0.21", EtcdTopology::External);
        assert!(conflict(&m, std::slice::from_ref(&m), &[external]).is_none());
    }
}
