//! The steps every member's reconcile takes on its host, written once:
//! reaching it (its host key recorded before any command runs), preflight
//! as a condition, and an etcd member's way out of the cluster.

use std::net::IpAddr;

use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use tracing::info;

use kubeseed_crds::v1alpha1::conditions::{
    HOST_REACHABLE, PREFLIGHT_PASSED, PROVISIONED, READY, REASON_QUORUM_AT_RISK,
};
use kubeseed_crds::v1alpha1::{Phase, SingleHostObject};
use kubeseed_provision::cluster::HostProfile;
use kubeseed_provision::etcd::{EtcdClient, EtcdMemberInfo, quorum_after_removal};
use kubeseed_provision::preflight::{self, ClusterIdentity, Expectations};
use kubeseed_provision::ssh::Session;

use super::status::StatusBook;
use super::{Member, publish};
use crate::cluster::ClusterMaterial;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::{etcd_access, hosts};

/// Connects to `host`, writing what to record of its host key (and its
/// bastion's) and `HostReachable` to the status before returning: nothing
/// runs on a host whose key is not on record.
pub async fn reach<K: Member + SingleHostObject>(
    ctx: &Context,
    book: &mut StatusBook<'_, K>,
    obj: &K,
) -> Result<Session> {
    let recorded = obj.recorded_host_key().cloned().unwrap_or_default();
    let (session, keys) = match hosts::connect(ctx, obj.host(), &recorded).await {
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
    Ok(session)
}

/// The cluster's material (record, CAs, encryption key); when it cannot be
/// read, `Ready=False` says why and that nothing was done.
pub async fn material<K: Member>(
    ctx: &Context,
    book: &mut StatusBook<'_, K>,
) -> Result<ClusterMaterial> {
    match ClusterMaterial::load(ctx).await {
        Ok(m) => Ok(m),
        Err(e) => {
            book.phase(Phase::Failed).set(
                READY,
                false,
                e.event_reason(),
                format!("{e}; nothing was done to the host"),
            );
            book.write().await?;
            Err(e)
        }
    }
}

/// The identity a host of this cluster carries (a re-run finds it there).
pub fn cluster_identity(material: &ClusterMaterial) -> ClusterIdentity {
    ClusterIdentity {
        cluster_id: material.record.id.clone(),
        ca_fingerprint: Some(preflight::certificate_fingerprint(
            material.cas.cluster.cert_pem().as_bytes(),
        )),
        etcd_ca_fingerprint: Some(preflight::certificate_fingerprint(
            material.cas.etcd.cert_pem().as_bytes(),
        )),
    }
}

/// What preflight learned of a host it passed.
#[derive(Debug, Clone)]
pub struct Preflighted {
    /// cgroups, kernel tunables: what renderers need.
    pub profile: HostProfile,
    /// The host's name (a worker's default node name).
    pub hostname: String,
}

/// Preflight against `expectations` (with this cluster's identity and the
/// advertise address) as the `PreflightPassed` condition. `None` when the
/// host was refused: the status and an Event say why, nothing was changed.
pub async fn preflight<K: Member>(
    ctx: &Context,
    book: &mut StatusBook<'_, K>,
    obj: &K,
    session: &Session,
    expectations: Expectations,
    material: &ClusterMaterial,
    advertise: IpAddr,
) -> Result<Option<Preflighted>> {
    let facts = preflight::gather(session).await.map_err(|e| Error::Plan {
        reason: "PreflightFailed",
        message: e.to_string(),
    })?;
    let mut expectations = expectations.in_cluster(cluster_identity(material));
    expectations.advertise_address = Some(advertise);
    let report = preflight::evaluate(&facts, &expectations);
    let Some(profile) = facts.host_profile().filter(|_| report.is_ok()) else {
        let why = format!(
            "{}; nothing was changed on the host\n{}",
            report.summary(),
            report.table()
        );
        book.phase(Phase::Failed)
            .set(PREFLIGHT_PASSED, false, "Failed", why)
            .set(READY, false, "PreflightFailed", report.summary());
        book.write().await?;
        publish(
            ctx,
            obj,
            EventType::Warning,
            "PreflightFailed",
            report.summary(),
        )
        .await;
        return Ok(None);
    };
    book.set(PREFLIGHT_PASSED, true, "Passed", report.summary());
    book.write().await?;
    let hostname = facts
        .system
        .as_ref()
        .map(|s| s.hostname.clone())
        .unwrap_or_default();
    Ok(Some(Preflighted { profile, hostname }))
}

/// Refuses (as an error, so the finalizer keeps the object) a removal that
/// would cost etcd its quorum; the status says why.
pub async fn refuse_if_quorum_at_risk<K: Member>(
    book: &mut StatusBook<'_, K>,
    etcd: &EtcdClient,
    members: &[EtcdMemberInfo],
    member: &EtcdMemberInfo,
) -> Result<()> {
    let healthy = etcd_access::healthy_members(etcd, members).await;
    if let Err(refused) = quorum_after_removal(members, member.id, &healthy) {
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
    Ok(())
}

/// Takes `member` out of etcd: leadership moved away first when it holds
/// it, then removed.
pub async fn remove_from_etcd<K: Member>(
    ctx: &Context,
    obj: &K,
    etcd: &EtcdClient,
    members: &[EtcdMemberInfo],
    member: &EtcdMemberInfo,
) -> Result<()> {
    if member.is_voter() {
        let leader = etcd.leader_status().await?;
        if leader.member_id == member.id {
            let to = members
                .iter()
                .find(|o| o.id != member.id && o.is_voter() && o.is_started())
                .map(|o| o.id);
            if let Some(to) = to {
                etcd.move_leader(to).await?;
                info!(from = %member.id, to = %to, "etcd leadership moved");
            }
        }
    }
    etcd.remove(member.id).await?;
    publish(
        ctx,
        obj,
        EventType::Normal,
        "EtcdMemberRemoved",
        format!("etcd member {} removed", member.id),
    )
    .await;
    Ok(())
}

/// Runs a join's `tasks` on the host with `Provisioned` saying so; a failed
/// task sets `Provisioned` and `Ready` False with its reason and where the
/// host's journal (`/var/lib/kubeseed/journal/<journal>.json`) is.
pub async fn run_join<K: Member>(
    ctx: &Context,
    book: &mut StatusBook<'_, K>,
    obj: &K,
    session: &Session,
    journal: &str,
    tasks: &[Box<dyn kubeseed_provision::tasks::Task>],
) -> Result<()> {
    book.phase(Phase::Provisioning).set(
        PROVISIONED,
        false,
        "Joining",
        format!("running {} tasks on {}", tasks.len(), session.host()),
    );
    book.write().await?;
    if let Err(e) = crate::run_plan::run(ctx, obj, session, Some(journal), tasks).await {
        let reason = e.reason;
        book.phase(Phase::Failed)
            .set(
                PROVISIONED,
                false,
                reason,
                format!("{e}; the host's progress is in /var/lib/kubeseed/journal/{journal}.json and the join resumes from there"),
            )
            .set(READY, false, reason, "the join stopped; see Provisioned");
        book.write().await?;
        return Err(Error::Task(e));
    }
    Ok(())
}

/// A refusal before anything is touched: `Ready` False with `reason`, the
/// phase Failed, and a Warning Event.
pub async fn refuse<K: Member>(
    ctx: &Context,
    book: &mut StatusBook<'_, K>,
    obj: &K,
    reason: &'static str,
    why: String,
) -> Result<()> {
    book.phase(Phase::Failed)
        .set(READY, false, reason, why.clone());
    book.write().await?;
    publish(ctx, obj, EventType::Warning, reason, why).await;
    Ok(())
}

/// A leave of an object that never reached its host: nothing to undo, so
/// the finalizer may go. `Some` is the leave's result; `None`: go on.
pub async fn release_if_untouched<K: Member + SingleHostObject>(
    ctx: &Context,
    obj: &K,
) -> Option<Action> {
    // A recorded host key means it connected, and only a connection can
    // have changed anything.
    let touched = obj
        .recorded_host_key()
        .is_some_and(|k| k.observed_host_key.is_some() || k.host_key_fingerprint.is_some())
        || obj.conditions().iter().any(|c| c.type_ == PROVISIONED);
    if touched {
        return None;
    }
    publish(
        ctx,
        obj,
        EventType::Normal,
        "Released",
        "nothing was done on the host".to_owned(),
    )
    .await;
    Some(Action::await_change())
}

/// A plan that cannot be composed from the object (nothing was run).
pub fn plan_error(e: impl std::fmt::Display) -> Error {
    Error::Plan {
        reason: "PlanInvalid",
        message: e.to_string(),
    }
}

/// A UTC timestamp that names a backup (`20261202T101500Z`).
pub fn backup_suffix() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string()
}
