//! What the API load balancer and the control-plane members need of each
//! other: which masters are backends (the Ready ones whose `/readyz`
//! answers), a leaving master waiting until no balancer forwards to it, and
//! the cluster record naming the balancer's VIP as the API endpoint.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::events::EventType;
use tracing::info;

use kubeseed_crds::v1alpha1::conditions::{PROVISIONED, READY, REASON_QUORUM_AT_RISK, holds};
use kubeseed_crds::v1alpha1::{ApiLoadBalancer, ApiLoadBalancerSpec, ControlPlaneMember};
use kubeseed_provision::api_probe::ApiProbe;
use kubeseed_provision::cluster::ClusterRecord;
use kubeseed_provision::render::load_balancer::Backend;

use crate::cluster::{CLUSTER_OBJECT, RECORD_KEY};
use crate::context::Context;
use crate::controllers::publish;
use crate::error::{Error, Result};

/// How long a leaving master waits for the balancers to drop it.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(120);

/// A master that may serve behind the balancer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its object's name (the backend's name).
    pub name: String,
    /// Its apiserver's address.
    pub address: IpAddr,
    /// Its apiserver's port.
    pub port: u16,
}

impl Candidate {
    /// `address:port`, as the status lists backends.
    pub fn endpoint(&self) -> String {
        std::net::SocketAddr::new(self.address, self.port).to_string()
    }
}

/// The masters that may be backends, sorted by name: the Ready ones, and
/// those whose leave was refused (`QuorumAtRisk`: they still serve). A
/// leaving master turns `Ready=False` (`Leaving`) before anything on its
/// host is stopped, and stops being a candidate then.
pub fn candidates(masters: &[ControlPlaneMember], port: u16) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = masters
        .iter()
        .filter(|m| {
            let conditions = m
                .status
                .as_ref()
                .map(|s| s.common.conditions.as_slice())
                .unwrap_or_default();
            holds(conditions, READY)
                || conditions
                    .iter()
                    .any(|c| c.type_ == READY && c.reason == REASON_QUORUM_AT_RISK)
        })
        .filter_map(|m| {
            Some(Candidate {
                name: m.name_any(),
                address: m.spec.advertise_address().parse().ok()?,
                port,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One candidate's probe: `None` when `/readyz` answered, else why not.
pub type Probed = (Candidate, Option<String>);

/// Probes every candidate's `/readyz` at once.
pub async fn probe_all(probe: &ApiProbe, candidates: Vec<Candidate>) -> Vec<Probed> {
    let probes = candidates.into_iter().map(|c| async move {
        let result = probe.readyz(c.address, c.port).await;
        (c, result.err().map(|e| e.to_string()))
    });
    futures::future::join_all(probes).await
}

/// The backends to configure: the spec's fixed ones, else the probed
/// candidates that answered now or are configured already (`current`,
/// `address:port`) when the proxy checks health itself (HAProxy drops a
/// failing one on its own; a reload for every blip would only churn).
pub fn choose(
    spec: &ApiLoadBalancerSpec,
    probed: &[Probed],
    current: &[String],
    proxy_checks_health: bool,
) -> Vec<Backend> {
    if !spec.backends.is_empty() {
        return spec
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| Backend {
                name: format!("static-{i}"),
                address: b.address.clone(),
                port: b.port.and_then(|p| u16::try_from(p).ok()).unwrap_or(6443),
            })
            .collect();
    }
    probed
        .iter()
        .filter(|(c, failed)| {
            failed.is_none() || (proxy_checks_health && current.contains(&c.endpoint()))
        })
        .map(|(c, _)| Backend {
            name: c.name.clone(),
            address: c.address.to_string(),
            port: c.port,
        })
        .collect()
}

/// Waits until no balancer lists `master`'s apiserver among its backends:
/// the first step of its leave. A balancer that is itself broken (not
/// Provisioned) is not waited for: it cannot change, and its health checks
/// drop a master that is gone.
pub async fn wait_released(ctx: &Context, master: &ControlPlaneMember, port: u16) -> Result<()> {
    let endpoint = match master.spec.advertise_address().parse::<IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, port).to_string(),
        Err(_) => return Ok(()),
    };
    let api: Api<ApiLoadBalancer> = Api::all(ctx.client.clone());
    let started = Instant::now();
    loop {
        let holding: Vec<String> = api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|lb| {
                let status = lb.status.as_ref();
                let working = status.is_some_and(|s| holds(&s.common.conditions, PROVISIONED));
                working && status.is_some_and(|s| s.backends.contains(&endpoint))
            })
            .map(|lb| lb.name_any())
            .collect();
        if holding.is_empty() {
            return Ok(());
        }
        if started.elapsed() > RELEASE_TIMEOUT {
            return Err(Error::Plan {
                reason: "BackendNotReleased",
                message: format!(
                    "ApiLoadBalancer {} still forwards to {endpoint} after {} s: see its conditions; the leave goes on once it drops this master",
                    holding.join(", "),
                    RELEASE_TIMEOUT.as_secs()
                ),
            });
        }
        info!(%endpoint, balancers = %holding.join(","), "waiting for the load balancer to drop this master");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The endpoint a balancer publishes: its VIP, names and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The VIP.
    pub vip: Option<IpAddr>,
    /// DNS names of the VIP.
    pub dns_names: Vec<String>,
    /// Where the balancer listens, when not the apiservers' port.
    pub balancer_port: Option<u16>,
}

impl Endpoint {
    /// What `record` names now.
    pub fn of(record: &ClusterRecord) -> Self {
        Endpoint {
            vip: record.endpoint_vip,
            dns_names: record.endpoint_dns_names.clone(),
            balancer_port: record.balancer_port,
        }
    }
}

/// Writes `endpoint` into the cluster's record (ConfigMap
/// `kubeseed-cluster`), unless it names it already; every master then
/// re-issues its apiserver certificate and points `admin.conf` at it, one
/// at a time. `Ok(true)` when it changed the record.
pub async fn publish_endpoint<K: crate::controllers::Member>(
    ctx: &Context,
    obj: &K,
    endpoint: &Endpoint,
) -> Result<bool> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let mut cm = api.get(CLUSTER_OBJECT).await?;
    let data = cm.data.get_or_insert_default();
    let text = data.get(RECORD_KEY).cloned().unwrap_or_default();
    let mut record: ClusterRecord = serde_json::from_str(&text).map_err(|e| {
        Error::ClusterMaterial(format!(
            "ConfigMap {}/{CLUSTER_OBJECT}: {RECORD_KEY} is invalid: {e}",
            ctx.namespace
        ))
    })?;
    if Endpoint::of(&record) == *endpoint {
        return Ok(false);
    }
    let before = record.spec().server_url().unwrap_or_default();
    record.endpoint_vip = endpoint.vip;
    record.endpoint_dns_names = endpoint.dns_names.clone();
    record.balancer_port = endpoint.balancer_port;
    let after = record.spec().server_url().unwrap_or_default();
    data.insert(
        RECORD_KEY.to_owned(),
        serde_json::to_string_pretty(&record).map_err(Error::Serialize)?,
    );
    // A replace carries the resourceVersion read above: a concurrent writer
    // makes it fail (and the reconcile retry) instead of being overwritten.
    api.replace(CLUSTER_OBJECT, &PostParams::default(), &cm)
        .await?;
    info!(%before, %after, "the cluster's API endpoint changed");
    publish(
        ctx,
        obj,
        EventType::Normal,
        "EndpointPublished",
        format!("the cluster's API endpoint is now {after} (was {before}): every master re-issues its apiserver certificate and restarts it, one at a time"),
    )
    .await;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use k8s_openapi::jiff::Timestamp;
    use kubeseed_crds::v1alpha1::{
        ControlPlaneMemberSpec, ControlPlaneMemberStatus, HostSpec, LoadBalancerBackend,
        LoadBalancerHost,
    };

    fn master(name: &str, address: &str, ready: bool) -> ControlPlaneMember {
        let mut m = ControlPlaneMember::new(
            name,
            ControlPlaneMemberSpec {
                host: HostSpec::new(address, "k"),
                ..Default::default()
            },
        );
        let mut status = ControlPlaneMemberStatus::default();
        status.common.conditions.push(Condition {
            type_: READY.into(),
            status: if ready { "True" } else { "False" }.into(),
            reason: "R".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: Time(Timestamp::UNIX_EPOCH),
        });
        m.status = Some(status);
        m
    }

    fn spec() -> ApiLoadBalancerSpec {
        ApiLoadBalancerSpec {
            hosts: vec![LoadBalancerHost {
                host: HostSpec::new("10.0.0.21", "k"),
                priority: None,
            }],
            vip: "10.0.0.100/24".into(),
            interface: None,
            port: None,
            implementation: Default::default(),
            virtual_router_id: None,
            dns_names: vec![],
            backends: vec![],
        }
    }

    #[test]
    fn only_ready_masters_and_refused_leaves_are_candidates() {
        let mut refused = master("c", "10.0.0.13", false);
        refused.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        refused.status.as_mut().unwrap().common.conditions[0].reason = REASON_QUORUM_AT_RISK.into();
        let all = [
            master("b", "10.0.0.12", true),
            master("a", "10.0.0.11", true),
            master("d", "10.0.0.14", false),
            refused,
        ];
        let names: Vec<String> = candidates(&all, 6443).into_iter().map(|c| c.name).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn a_new_master_waits_for_its_readyz_and_a_configured_one_stays_under_haproxy() {
        let c = |name: &str, ip: &str| Candidate {
            name: name.into(),
            address: ip.parse().unwrap(),
            port: 6443,
        };
        let probed = vec![
            (c("a", "10.0.0.11"), None),
            (c("b", "10.0.0.12"), Some("refused".into())),
            (c("c", "10.0.0.13"), Some("refused".into())),
        ];
        let current = vec!["10.0.0.12:6443".to_owned()];
        let names = |v: Vec<Backend>| v.into_iter().map(|b| b.name).collect::<Vec<_>>();
        assert_eq!(names(choose(&spec(), &probed, &current, true)), ["a", "b"]);
        assert_eq!(names(choose(&spec(), &probed, &current, false)), ["a"]);
        let mut fixed = spec();
        fixed.backends = vec![LoadBalancerBackend {
            address: "api.example".into(),
            port: Some(443),
        }];
        let b = choose(&fixed, &probed, &current, true);
        assert_eq!((b[0].address.as_str(), b[0].port), ("api.example", 443));
    }
}
