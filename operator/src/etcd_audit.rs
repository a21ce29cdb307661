//! Accounting for etcd's members: every member etcd lists should be an
//! `EtcdMember` object (or the stacked member of a `ControlPlaneMember` that
//! is joining, before its `EtcdMember` is recorded). One that nobody
//! accounts for (added by hand, or left by a tool that crashed) is reported
//! on every `EtcdMember`, as a condition and a Warning Event, and never
//! removed: removing a member is a decision about quorum that only a person
//! (or the deletion of its object) makes.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use serde_json::json;
use tracing::{info, warn};

use kubeseed_crds::v1alpha1::conditions::{
    ETCD_MEMBERS_ACCOUNTED, REASON_UNACCOUNTED_ETCD_MEMBER, met,
};
use kubeseed_crds::v1alpha1::{ControlPlaneMember, EtcdMember, EtcdTopology};
use kubeseed_provision::cluster::url_for;
use kubeseed_provision::etcd::EtcdMemberInfo;

use crate::cluster::ClusterMaterial;
use crate::context::Context;
use crate::controllers::{StopSignal, publish};
use crate::error::{Error, Result};

/// How often etcd's member list is compared with the objects (two list
/// calls and one etcd request: cheap).
const PERIOD: Duration = Duration::from_secs(20);
/// The audit's own field manager: it owns only its condition, so the
/// controllers' status writes and its own never remove each other's.
const FIELD_MANAGER: &str = "kubeseed-operator-etcd-audit";

/// The peer URLs the objects account for: every `EtcdMember`, and every
/// Stacked `ControlPlaneMember` (a joining master adds its learner before it
/// records its `EtcdMember`).
pub fn accounted_peer_urls(etcd: &[EtcdMember], masters: &[ControlPlaneMember]) -> Vec<String> {
    let mut urls = Vec::new();
    for m in etcd {
        if let Ok(ip) = m.spec.advertise_address().parse() {
            urls.push(url_for(ip, m.spec.peer_port()));
        }
    }
    for m in masters {
        if m.spec.etcd.topology == EtcdTopology::Stacked
            && let Ok(ip) = m.spec.advertise_address().parse()
        {
            urls.push(url_for(ip, m.spec.etcd.peer_port()));
        }
    }
    urls
}

/// The members none of `accounted` names.
pub fn unaccounted<'a>(
    members: &'a [EtcdMemberInfo],
    accounted: &[String],
) -> Vec<&'a EtcdMemberInfo> {
    members
        .iter()
        .filter(|m| !m.peer_urls.iter().any(|u| accounted.contains(u)))
        .collect()
}

/// What the condition says about `ghosts`.
pub fn describe(ghosts: &[&EtcdMemberInfo]) -> String {
    let list: Vec<String> = ghosts
        .iter()
        .map(|m| {
            let name = if m.name.is_empty() {
                "(not started)"
            } else {
                m.name.as_str()
            };
            let role = if m.is_learner { "learner" } else { "voter" };
            format!("{} {name} {role} at {}", m.id, m.peer_urls.join(","))
        })
        .collect();
    format!(
        "etcd has {} member(s) no EtcdMember accounts for: {}. kubeseed does not remove them: create an EtcdMember for each, or remove it with `etcdctl member remove <id>` once you know what it is",
        ghosts.len(),
        list.join("; ")
    )
}

/// Audits every [`PERIOD`] until `stop`.
pub async fn run(ctx: Arc<Context>, stop: StopSignal) {
    let mut stop = std::pin::pin!(stop);
    loop {
        if let Err(e) = audit(&ctx).await {
            // No cluster material yet, or etcd unreachable: the members'
            // own conditions say so; the next round tries again.
            info!(error = %e, "etcd membership audit skipped");
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(PERIOD) => {}
        }
    }
}

/// One comparison, and the condition written where it changed.
pub async fn audit(ctx: &Context) -> Result<()> {
    let objects: Api<EtcdMember> = Api::all(ctx.client.clone());
    let etcd_objects = objects.list(&ListParams::default()).await?.items;
    if etcd_objects.is_empty() {
        return Ok(());
    }
    let masters: Api<ControlPlaneMember> = Api::all(ctx.client.clone());
    let masters = masters.list(&ListParams::default()).await?.items;
    let material = ClusterMaterial::load(ctx).await?;
    let etcd = crate::etcd_access::client(ctx, &material).await?;
    let members = etcd.members().await?;
    let accounted = accounted_peer_urls(&etcd_objects, &masters);
    let ghosts = unaccounted(&members, &accounted);
    let (ok, reason, message) = if ghosts.is_empty() {
        (
            true,
            "Accounted",
            format!(
                "every one of etcd's {} members has an object",
                members.len()
            ),
        )
    } else {
        (false, REASON_UNACCOUNTED_ETCD_MEMBER, describe(&ghosts))
    };
    for obj in &etcd_objects {
        let current = obj
            .status
            .as_ref()
            .and_then(|s| {
                s.common
                    .conditions
                    .iter()
                    .find(|c| c.type_ == ETCD_MEMBERS_ACCOUNTED)
            })
            .map(|c| (c.status == "True", c.reason.clone(), c.message.clone()));
        if current == Some((ok, reason.to_owned(), message.clone())) {
            continue;
        }
        let mut condition = met(
            ETCD_MEMBERS_ACCOUNTED,
            reason,
            message.clone(),
            obj.meta().generation,
        );
        if !ok {
            condition.status = "False".to_owned();
            warn!(name = %obj.name_any(), "{message}");
            publish(
                ctx,
                obj,
                EventType::Warning,
                REASON_UNACCOUNTED_ETCD_MEMBER,
                message.clone(),
            )
            .await;
        }
        let body = json!({
            "apiVersion": EtcdMember::api_version(&()),
            "kind": EtcdMember::kind(&()),
            "status": {"conditions": [condition]},
        });
        objects
            .patch_status(
                &obj.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(Error::Kube)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeseed_crds::v1alpha1::{EtcdMemberSpec, HostSpec};
    use kubeseed_provision::etcd::MemberId;

    fn object(name: &str, address: &str) -> EtcdMember {
        EtcdMember::new(
            name,
            EtcdMemberSpec {
                host: HostSpec::new(address, "k"),
                advertise_address: None,
                client_port: None,
                peer_port: None,
                data_dir: None,
                etcd_version: None,
                extra_sans: Vec::new(),
                extra_args: Default::default(),
            },
        )
    }

    fn member(id: u64, name: &str, peer: &str) -> EtcdMemberInfo {
        EtcdMemberInfo {
            id: MemberId(id),
            name: name.into(),
            peer_urls: vec![peer.into()],
            client_urls: Vec::new(),
            is_learner: false,
        }
    }

    #[test]
    fn a_member_no_object_names_is_reported_and_the_others_are_not() {
        let objects = [object("host1", "10.0.0.11"), object("host2", "10.0.0.12")];
        let accounted = accounted_peer_urls(&objects, &[]);
        let members = [
            member(1, "host1", "https://10.0.0.11:2380"),
            member(2, "host2", "https://10.0.0.12:2380"),
            member(3, "", "https://10.0.0.99:2380"),
        ];
        let ghosts = unaccounted(&members, &accounted);
        assert_eq!(ghosts.len(), 1);
        let text = describe(&ghosts);
        assert!(
            text.contains("(not started)") && text.contains("10.0.0.99"),
            "{text}"
        );
        assert!(text.contains("does not remove"), "{text}");
    }
}
