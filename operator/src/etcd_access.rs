//! The operator's way into etcd: a short-lived client certificate issued
//! from the etcd CA in the cluster's Secret (never written anywhere), the
//! client URLs of the members the cluster records, and the `EtcdMember`
//! object a stacked master owns.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;

use kubeseed_crds::v1alpha1::conditions::{
    ETCD_VOTING, HOST_REACHABLE, PREFLIGHT_PASSED, PROVISIONED, READY, met,
};
use kubeseed_crds::v1alpha1::{ControlPlaneMember, EtcdMember, EtcdMemberSpec};
use kubeseed_provision::cluster::url_for;
use kubeseed_provision::etcd::{EtcdClient, EtcdTls, find_by_peer_url};
use kubeseed_provision::pki::{LeafSpec, Validity};

use crate::cluster::ClusterMaterial;
use crate::context::{Context, FIELD_MANAGER};
use crate::controllers::write_status;
use crate::error::{Error, Result};

/// How long a request to etcd may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A client of the cluster's etcd, reaching every member an `EtcdMember`
/// records (the seed's included).
pub async fn client(ctx: &Context, material: &ClusterMaterial) -> Result<EtcdClient> {
    let api: Api<EtcdMember> = Api::all(ctx.client.clone());
    let mut endpoints: Vec<String> = api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter_map(|m| {
            let ip = m.spec.advertise_address().parse().ok()?;
            Some(url_for(ip, m.spec.client_port()))
        })
        .collect();
    if endpoints.is_empty() {
        endpoints.push(url_for(
            material.record.seed.advertise_address,
            kubeseed_crds::v1alpha1::ETCD_CLIENT_PORT,
        ));
    }
    endpoints.sort();
    endpoints.dedup();
    Ok(EtcdClient::new(endpoints, tls(material)?, TIMEOUT)?)
}

/// Every `EtcdMember` whose status says Ready, as the cluster description
/// takes them (an External master's `--etcd-servers`), by name.
pub async fn ready_members(ctx: &Context) -> Result<Vec<kubeseed_provision::cluster::EtcdMember>> {
    let api: Api<EtcdMember> = Api::all(ctx.client.clone());
    let mut ready: Vec<kubeseed_provision::cluster::EtcdMember> = api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|m| {
            m.metadata.deletion_timestamp.is_none()
                && m.status.as_ref().is_some_and(|s| {
                    s.common
                        .conditions
                        .iter()
                        .any(|c| c.type_ == READY && c.status == "True")
                })
        })
        .filter_map(|m| {
            let ip = m.spec.advertise_address().parse().ok()?;
            Some(kubeseed_provision::cluster::EtcdMember {
                member: kubeseed_provision::cluster::Member::new(m.name_any(), ip),
                client_port: m.spec.client_port(),
                peer_port: m.spec.peer_port(),
                data_dir: m.spec.data_dir().to_owned(),
            })
        })
        .collect();
    ready.sort_by(|a, b| a.member.name.cmp(&b.member.name));
    Ok(ready)
}

/// The members that answer their status now (the voters a quorum can
/// count on).
pub async fn healthy_members(
    etcd: &EtcdClient,
    members: &[kubeseed_provision::etcd::EtcdMemberInfo],
) -> Vec<kubeseed_provision::etcd::MemberId> {
    let mut healthy = Vec::new();
    for m in members {
        for url in &m.client_urls {
            if let Ok(status) = etcd.status(url).await
                && status.errors.is_empty()
            {
                healthy.push(m.id);
                break;
            }
        }
    }
    healthy
}

/// A client certificate for this process only: one day, never stored.
fn tls(material: &ClusterMaterial) -> Result<EtcdTls> {
    let validity = Validity {
        leaf: time::Duration::days(1),
        ..Validity::default()
    };
    let issued = material
        .cas
        .etcd
        .issue(
            &LeafSpec::client("kubeseed-operator", &[]),
            kubeseed_provision::pki::KeyAlgorithm::default(),
            &validity,
        )
        .map_err(|e| Error::Plan {
            reason: "CertificatesFailed",
            message: format!("cannot issue the operator's etcd client certificate: {e}"),
        })?;
    Ok(EtcdTls {
        ca_pem: material.cas.etcd.cert_pem().to_owned(),
        cert_pem: issued.cert_pem,
        key_pem: issued.key_pem,
    })
}

/// Creates (or keeps) the `EtcdMember` a stacked master owns, with a status
/// that says it is provisioned and voting, so the `EtcdMember` controller
/// adopts it as it is.
pub async fn record_stacked_member(
    ctx: &Context,
    owner: &ControlPlaneMember,
    etcd: &EtcdClient,
    peer_url: &str,
    material: &ClusterMaterial,
) -> Result<()> {
    let name = owner.name_any();
    let api: Api<EtcdMember> = Api::all(ctx.client.clone());
    let mut member = EtcdMember::new(
        &name,
        EtcdMemberSpec {
            host: owner.spec.host.clone(),
            advertise_address: owner.spec.advertise_address.clone(),
            client_port: owner.spec.etcd.client_port,
            peer_port: owner.spec.etcd.peer_port,
            data_dir: owner.spec.etcd.data_dir.clone(),
            etcd_version: Some(material.record.etcd_version.clone()),
            extra_sans: Vec::new(),
            extra_args: Default::default(),
        },
    );
    if let Some(key) = owner
        .status
        .as_ref()
        .and_then(|s| s.host_key.observed_host_key.clone())
    {
        // The key the master recorded on first sight pins the member's too.
        member.spec.host.host_key.get_or_insert(key);
    }
    member.metadata.owner_references = Some(vec![OwnerReference {
        api_version: ControlPlaneMember::api_version(&()).into_owned(),
        kind: ControlPlaneMember::kind(&()).into_owned(),
        name: name.clone(),
        uid: owner.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let applied = api.patch(&name, &params, &Patch::Apply(&member)).await?;
    let members = etcd.members().await?;
    let id = find_by_peer_url(&members, peer_url).map(|m| m.id.to_string());
    let generation = applied.metadata.generation;
    let condition = |type_: &str, message: &str| met(type_, "Joined", message, generation);
    let status = json!({
        "phase": "Ready",
        "observedGeneration": generation,
        "conditions": [
            condition(READY, "the member is healthy"),
            condition(HOST_REACHABLE, "reached by its ControlPlaneMember"),
            condition(PREFLIGHT_PASSED, "its ControlPlaneMember's preflight passed"),
            condition(PROVISIONED, &format!("provisioned by ControlPlaneMember {name}")),
            condition(ETCD_VOTING, "joined as a learner and promoted"),
        ],
        "memberId": id,
        "isLearner": false,
        "versions": {"etcd": material.record.etcd_version},
    });
    write_status::<EtcdMember>(&api, &name, status).await
}
