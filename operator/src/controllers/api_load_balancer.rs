//! Controller of `ApiLoadBalancer`: HAProxy or nginx `stream` with a
//! keepalived VIP in front of the apiservers, on hosts reached over SSH.
//!
//! A reconcile reads as its plan: refuse what cannot be done (a second
//! balancer, a host that serves an apiserver on the same port, a VIP a
//! member uses) touching nothing; reach every host (its key recorded
//! before any command) and preflight every host before changing any (the
//! proxy and keepalived installed, the interface there, the VIP in its
//! subnet and nobody's address, the port free); choose the backends (the
//! Ready masters whose `/readyz` answers); render each host's files and run
//! its plan, the VIP's holder last (configurations validated by their
//! programs before they are swapped in, then reloaded); observe which host
//! holds the VIP and what each proxy thinks of each backend; once the VIP
//! serves the API, publish it as the cluster's endpoint, so every master's
//! certificate names it and `admin.conf` points at it.
//!
//! It looks again every few seconds (backend health, VIP holder) and at
//! every change of a `ControlPlaneMember` (a master turning Ready is added,
//! a leaving one is dropped before its teardown starts).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use serde_json::json;
use tracing::info;

use kubeseed_crds::v1alpha1::conditions::{
    ENDPOINT_PUBLISHED, HOST_REACHABLE, PREFLIGHT_PASSED, PROVISIONED, READY, VIP_HELD,
    VIP_SERVING, holds,
};
use kubeseed_crds::v1alpha1::{
    ApiLoadBalancer, ApiLoadBalancerSpec, BackendHealth, ComponentVersions, ControlPlaneMember,
    EtcdMember, HostSpec, LoadBalancerHostStatus, LoadBalancerImplementation, Phase,
};
use kubeseed_provision::api_probe::ApiProbe;
use kubeseed_provision::plans::{self, LoadBalancerHostInput};
use kubeseed_provision::preflight::{
    LoadBalancerExpectations, LoadBalancerHostProfile, evaluate_load_balancer, gather_load_balancer,
};
use kubeseed_provision::render::load_balancer::{
    Backend, DEFAULT_ADVERT_INTERVAL_MS, HAPROXY_STATS_SOCKET, LoadBalancerInput, Proxy,
    VRRP_STATE_FILE, Vrrp,
};
use kubeseed_provision::ssh::Session;
use kubeseed_provision::ssh::shell::quote;

use super::status::StatusBook;
use super::steps::{self, plan_error};
use super::{Member, StopSignal, publish};
use crate::cluster::ClusterMaterial;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::load_balancers::{self, Endpoint, Probed};
use crate::{hosts, run_plan};

/// How often health and the VIP's holder are looked at again.
const REFRESH: Duration = Duration::from_secs(15);
/// How soon a refused balancer is looked at again.
const REFUSED_RETRY: Duration = Duration::from_secs(60);
/// How long one `/readyz` probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// keepalived's VRRP instance.
const INSTANCE: &str = "kubeseed_api";
/// The host journal of the plan.
const JOURNAL: &str = "load-balancer";

impl Member for ApiLoadBalancer {
    fn apply(obj: Arc<Self>, ctx: Arc<Context>) -> BoxFuture<'static, Result<Action>> {
        Box::pin(async move { reconcile(obj, ctx).await })
    }

    fn cleanup(obj: Arc<Self>, ctx: Arc<Context>) -> BoxFuture<'static, Result<Action>> {
        Box::pin(async move { leave(obj, ctx).await })
    }

    /// Every balancer looks again when a master changes: one turning Ready
    /// becomes a backend, one leaving stops being one.
    fn watch_related(controller: Controller<Self>, ctx: &Context) -> Controller<Self> {
        let store = controller.store();
        let masters: Api<ControlPlaneMember> = Api::all(ctx.client.clone());
        controller.watches(masters, watcher::Config::default(), move |_| {
            store
                .state()
                .iter()
                .map(|o| ObjectRef::from_obj(o.as_ref()))
                .collect::<Vec<_>>()
        })
    }
}

/// Runs the `ApiLoadBalancer` controller until `stop` completes.
pub async fn run(ctx: Arc<Context>, stop: StopSignal) {
    super::run::<ApiLoadBalancer>(ctx, stop).await;
}

/// The proxy the spec asks for.
pub fn proxy_of(spec: &ApiLoadBalancerSpec) -> Proxy {
    match spec.implementation {
        LoadBalancerImplementation::HaProxy => Proxy::HaProxy,
        LoadBalancerImplementation::Nginx => Proxy::Nginx,
    }
}

/// `10.0.0.100/24` as address and prefix length.
pub fn parse_vip(vip: &str) -> std::result::Result<(IpAddr, u8), String> {
    let (ip, len) = vip
        .split_once('/')
        .ok_or_else(|| format!("vip {vip:?} has no prefix length"))?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("vip {vip:?}: {ip:?} is not an IP address"))?;
    let len: u8 = len
        .parse()
        .map_err(|_| format!("vip {vip:?}: {len:?} is not a prefix length"))?;
    Ok((ip, len))
}

/// The VRRP virtual router id: the spec's, else one derived from the name
/// (stable, 1-255).
pub fn router_id(obj: &ApiLoadBalancer) -> u8 {
    if let Some(id) = obj
        .spec
        .virtual_router_id
        .and_then(|i| u8::try_from(i).ok())
    {
        return id;
    }
    let sum = obj
        .name_any()
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    u8::try_from(sum % 255).unwrap_or(0) + 1
}

/// A host's VRRP priority: the spec's, else 100 for the first host and 10
/// less for each next one.
pub fn priority(spec: &ApiLoadBalancerSpec, index: usize) -> u8 {
    spec.hosts
        .get(index)
        .and_then(|h| h.priority)
        .and_then(|p| u8::try_from(p).ok())
        .unwrap_or_else(|| {
            let step = u8::try_from(index.min(9)).unwrap_or(9) * 10;
            100 - step
        })
}

/// An older balancer: the cluster has one API endpoint, and it serves it.
pub fn older_balancer(obj: &ApiLoadBalancer, all: &[ApiLoadBalancer]) -> Option<String> {
    let key = |o: &ApiLoadBalancer| (o.metadata.creation_timestamp.clone(), o.name_any());
    all.iter()
        .filter(|o| o.name_any() != obj.name_any() && key(o) < key(obj))
        .map(|o| {
            format!(
                "ApiLoadBalancer {} already serves this cluster's API endpoint ({}): a cluster has one; delete one of them; nothing was done to the hosts",
                o.name_any(),
                o.spec.vip
            )
        })
        .next()
}

/// A load-balancer host that also runs an apiserver on the balancer's port.
pub fn conflict_with_masters(
    spec: &ApiLoadBalancerSpec,
    masters: &[ControlPlaneMember],
    api_port: u16,
) -> Option<String> {
    if spec.port() != api_port {
        return None;
    }
    spec.hosts.iter().find_map(|h| {
        masters
            .iter()
            .find(|m| {
                m.spec.host.address == h.host.address
                    || m.spec.advertise_address() == h.host.address
            })
            .map(|m| {
                format!(
                    "host {} runs ControlPlaneMember {}'s kube-apiserver on port {api_port}, the port the load balancer would listen on: set spec.port to another port (such as 8443) or use another host; nothing was done to the hosts",
                    h.host.address,
                    m.name_any()
                )
            })
    })
}

/// A member that already uses the VIP as its address.
pub fn vip_in_use(
    vip: IpAddr,
    masters: &[ControlPlaneMember],
    etcd: &[EtcdMember],
) -> Option<String> {
    let ip = vip.to_string();
    masters
        .iter()
        .find(|m| m.spec.host.address == ip || m.spec.advertise_address() == ip)
        .map(|m| format!("ControlPlaneMember {}", m.name_any()))
        .or_else(|| {
            etcd.iter()
                .find(|e| e.spec.host.address == ip || e.spec.advertise_address() == ip)
                .map(|e| format!("EtcdMember {}", e.name_any()))
        })
        .map(|who| {
            format!(
                "the VIP {vip} is {who}'s address: choose an address no host uses; nothing was done to the hosts"
            )
        })
}

/// The status of each spec host, in the spec's order, carrying what was
/// recorded of it (matched by address).
fn host_statuses(obj: &ApiLoadBalancer) -> Vec<LoadBalancerHostStatus> {
    let recorded = obj
        .status
        .as_ref()
        .map(|s| s.hosts.clone())
        .unwrap_or_default();
    obj.spec
        .hosts
        .iter()
        .map(|h| {
            recorded
                .iter()
                .find(|r| r.address == h.host.address)
                .cloned()
                .unwrap_or_else(|| LoadBalancerHostStatus {
                    address: h.host.address.clone(),
                    ..Default::default()
                })
        })
        .collect()
}

/// Connects to host `i`, recording its key (and its bastion's) in
/// `status.hosts` before returning: nothing runs on a host whose key is not
/// on record. `Ok(None)`: the host does not answer (down, or its network
/// is) — the others still serve and are still configured; a host that
/// answers with the wrong key, or a key the operator cannot use, is an
/// error that stops the whole reconcile.
async fn reach_host(
    ctx: &Context,
    book: &mut StatusBook<'_, ApiLoadBalancer>,
    statuses: &mut [LoadBalancerHostStatus],
    i: usize,
    host: &HostSpec,
) -> Result<std::result::Result<Session, String>> {
    let recorded = statuses[i].host_key.clone();
    // A balancer host that is down is what the VIP is for: find out soon,
    // rather than with the long retries a join affords.
    let mut limits = ctx.ssh_limits.clone();
    limits.connect_timeout = Duration::from_secs(5);
    limits.connect_attempts = 2;
    let connected = match hosts::target(ctx, host, &recorded).await {
        Ok(target) => Session::connect(&target, &limits)
            .await
            .map_err(Error::from),
        Err(e) => Err(e),
    };
    match connected {
        Ok((session, keys)) => {
            if let Some(record) = hosts::to_record(&keys, &recorded) {
                statuses[i].host_key = record;
                book.field("hosts", json!(statuses));
                book.write().await?;
            }
            Ok(Ok(session))
        }
        Err(Error::Ssh(e)) if e.is_transient() => Ok(Err(format!("{}: {e}", host.address))),
        Err(e) => {
            book.set(
                HOST_REACHABLE,
                false,
                e.event_reason(),
                format!("{}: {e}", host.address),
            )
            .set(
                READY,
                false,
                e.event_reason(),
                format!(
                    "{} cannot be used; nothing was changed on any host",
                    host.address
                ),
            );
            book.write().await?;
            Err(e)
        }
    }
}

/// What one look at a host found.
#[derive(Debug, Default)]
struct Observed {
    vrrp_state: Option<String>,
    holds_vip: bool,
    backends: Vec<BackendHealth>,
}

/// Reads the host's VRRP state, whether it holds the VIP, and (HAProxy)
/// its proxy's view of each backend, in one command.
async fn observe(
    session: &Session,
    proxy: Proxy,
    vip: IpAddr,
    backends: &[Backend],
    probed: &[Probed],
) -> Result<Observed> {
    let family = if vip.is_ipv4() { "inet" } else { "inet6" };
    let stats = match proxy {
        Proxy::HaProxy => format!(
            "curl -s --max-time 2 --unix-socket {} 'http://localhost/;csv' 2>/dev/null",
            quote(HAPROXY_STATS_SOCKET)
        ),
        Proxy::Nginx => "true".to_owned(),
    };
    let script = format!(
        "cat {state} 2>/dev/null || echo UNKNOWN; echo @@; if ip -o addr show 2>/dev/null | grep -qF {needle}; then echo yes; else echo no; fi; echo @@; {stats}",
        state = quote(VRRP_STATE_FILE),
        needle = quote(&format!("{family} {vip}/")),
    );
    let out = session
        .exec(&script, kubeseed_provision::ssh::ExecOptions::sudo())
        .await?;
    let text = out.stdout_text();
    let mut parts = text.split("@@\n");
    let state = parts.next().unwrap_or_default().trim().to_owned();
    let holds_vip = parts.next().unwrap_or_default().trim() == "yes";
    let csv = parts.next().unwrap_or_default();
    let health = match proxy {
        Proxy::HaProxy => haproxy_health(csv, backends),
        Proxy::Nginx => backends
            .iter()
            .map(|b| {
                let failed = probed
                    .iter()
                    .find(|(c, _)| c.name == b.name)
                    .and_then(|(_, f)| f.clone());
                BackendHealth {
                    address: format!("{}:{}", b.address, b.port),
                    healthy: failed.is_none(),
                    detail: failed,
                }
            })
            .collect(),
    };
    Ok(Observed {
        vrrp_state: Some(state).filter(|s| !s.is_empty() && s != "UNKNOWN"),
        holds_vip,
        backends: health,
    })
}

/// Each configured backend's health from HAProxy's stats CSV (by server
/// name); a backend the CSV lacks is reported unknown.
pub fn haproxy_health(csv: &str, backends: &[Backend]) -> Vec<BackendHealth> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (sv, status, check, last) = (
        col("svname"),
        col("status"),
        col("check_status"),
        col("last_chk"),
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    backends
        .iter()
        .map(|b| {
            let address = format!("{}:{}", b.address, b.port);
            let row = rows
                .iter()
                .find(|r| sv.and_then(|i| r.get(i)) == Some(&b.name.as_str()));
            let Some(row) = row else {
                return BackendHealth {
                    address,
                    healthy: false,
                    detail: Some("not in the proxy's statistics yet".into()),
                };
            };
            let get = |i: Option<usize>| i.and_then(|i| row.get(i)).copied().unwrap_or_default();
            let healthy = get(status).starts_with("UP");
            let detail = [get(check), get(last)]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(": ");
            BackendHealth {
                address,
                healthy,
                detail: (!healthy).then(|| format!("{} ({detail})", get(status))),
            }
        })
        .collect()
}

async fn reconcile(obj: Arc<ApiLoadBalancer>, ctx: Arc<Context>) -> Result<Action> {
    let name = obj.name_any();
    let spec = &obj.spec;
    let api: Api<ApiLoadBalancer> = Api::all(ctx.client.clone());
    let mut book = StatusBook::new(&api, obj.as_ref(), &name);

    // ---- refuse what cannot be done, touching nothing ----------------------
    let balancers = api.list(&ListParams::default()).await?.items;
    if let Some(why) = older_balancer(&obj, &balancers) {
        steps::refuse(&ctx, &mut book, obj.as_ref(), "Conflict", why).await?;
        return Ok(Action::requeue(REFUSED_RETRY));
    }
    let masters: Api<ControlPlaneMember> = Api::all(ctx.client.clone());
    let masters = masters.list(&ListParams::default()).await?.items;
    let etcd: Api<EtcdMember> = Api::all(ctx.client.clone());
    let etcd = etcd.list(&ListParams::default()).await?.items;
    let material = steps::material(&ctx, &mut book).await?;
    let api_port = material.record.endpoint_port;
    let (vip, prefix_len) = parse_vip(&spec.vip).map_err(plan_error)?;
    if let Some(why) = conflict_with_masters(spec, &masters, api_port) {
        steps::refuse(&ctx, &mut book, obj.as_ref(), "Conflict", why).await?;
        return Ok(Action::requeue(REFUSED_RETRY));
    }
    if let Some(why) = vip_in_use(vip, &masters, &etcd) {
        steps::refuse(&ctx, &mut book, obj.as_ref(), "VipInUse", why).await?;
        return Ok(Action::requeue(REFUSED_RETRY));
    }
    let proxy = proxy_of(spec);
    let port = spec.port();

    // ---- reach and preflight every host before changing any ---------------
    let mut statuses = host_statuses(&obj);
    let expect = LoadBalancerExpectations {
        proxy,
        port,
        vip,
        prefix_len,
        interface: spec.interface.clone(),
        cluster_id: material.record.id.clone(),
    };
    let mut reached: Vec<Option<(Session, LoadBalancerHostProfile)>> = Vec::new();
    let mut unreachable: Vec<String> = Vec::new();
    for (i, h) in spec.hosts.iter().enumerate() {
        let session = match reach_host(&ctx, &mut book, &mut statuses, i, &h.host).await? {
            Ok(session) => session,
            Err(why) => {
                unreachable.push(why);
                reached.push(None);
                continue;
            }
        };
        let facts = gather_load_balancer(&session, &expect)
            .await
            .map_err(|e| Error::Plan {
                reason: "PreflightFailed",
                message: format!("{}: {e}", h.host.address),
            })?;
        let (report, profile) = evaluate_load_balancer(&facts, &expect);
        let Some(profile) = profile else {
            let details: Vec<String> = report
                .failures()
                .iter()
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect();
            let summary = format!("{}; {}", report.summary(), details.join("; "));
            book.phase(Phase::Failed)
                .set(
                    PREFLIGHT_PASSED,
                    false,
                    "Failed",
                    format!(
                        "{summary}; nothing was changed on any host\n{}",
                        report.table()
                    ),
                )
                .set(READY, false, "PreflightFailed", summary.clone());
            book.write().await?;
            publish(
                &ctx,
                obj.as_ref(),
                EventType::Warning,
                "PreflightFailed",
                summary,
            )
            .await;
            return Ok(Action::requeue(REFUSED_RETRY));
        };
        statuses[i].versions = Some(ComponentVersions {
            load_balancer: profile.proxy_version.clone(),
            keepalived: profile.keepalived_version.clone(),
            ..Default::default()
        });
        statuses[i].unicast_source = Some(profile.source.to_string());
        reached.push(Some((session, profile)));
    }
    let addresses: Vec<&str> = spec.hosts.iter().map(|h| h.host.address.as_str()).collect();
    // Every host's VRRP address: seen now, or recorded when it was last seen.
    let sources: Vec<Option<IpAddr>> = statuses
        .iter()
        .map(|s| s.unicast_source.as_deref().and_then(|a| a.parse().ok()))
        .collect();
    if unreachable.is_empty() {
        book.set(
            HOST_REACHABLE,
            true,
            "Reachable",
            format!("SSH to {}", addresses.join(", ")),
        );
    } else {
        book.set(
            HOST_REACHABLE,
            false,
            "Unreachable",
            format!(
                "{}; the other hosts are configured and serve",
                unreachable.join("; ")
            ),
        );
        if sources.iter().any(Option::is_none) {
            // A pair cannot be configured without every peer's address.
            book.phase(Phase::Provisioning).set(
                READY,
                false,
                "Unreachable",
                "a host was never reached: nothing is configured until every host answers once",
            );
            book.field("hosts", json!(statuses));
            book.write().await?;
            return Ok(Action::requeue(REFUSED_RETRY));
        }
    }
    let sources: Vec<IpAddr> = sources.into_iter().flatten().collect();
    book.set(
        PREFLIGHT_PASSED,
        true,
        "Passed",
        format!(
            "{} and keepalived present, VIP {vip}/{prefix_len} in the subnet of {} on every host reached",
            proxy.package(),
            reached
                .iter()
                .flatten()
                .map(|(_, p)| p.interface.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );

    // ---- the backends -----------------------------------------------------------
    let probe =
        ApiProbe::new(material.cas.cluster.cert_pem(), PROBE_TIMEOUT).map_err(plan_error)?;
    let candidates = load_balancers::candidates(&masters, api_port);
    let probed = load_balancers::probe_all(&probe, candidates).await;
    let current: Vec<String> = obj
        .status
        .as_ref()
        .map(|s| s.backends.clone())
        .unwrap_or_default();
    let backends = load_balancers::choose(spec, &probed, &current, proxy == Proxy::HaProxy);
    let listed: Vec<String> = backends
        .iter()
        .map(|b| format!("{}:{}", b.address, b.port))
        .collect();

    // ---- each host's plan; the VIP's holder last ------------------------------
    let holder = obj.status.as_ref().and_then(|s| s.vip_holder.clone());
    let mut order: Vec<usize> = (0..reached.len())
        .filter(|i| reached[*i].is_some())
        .collect();
    order.sort_by_key(|i| Some(addresses[*i]) == holder.as_deref());
    let first_time = !obj.conditions().iter().any(|c| c.type_ == PROVISIONED);
    let router = router_id(&obj);
    let mut changed = Vec::new();
    for i in order {
        let Some((session, profile)) = &reached[i] else {
            continue;
        };
        let input = LoadBalancerInput {
            proxy,
            port,
            vip,
            prefix_len,
            interface: profile.interface.clone(),
            backends: backends.clone(),
            vrrp: Vrrp {
                instance: INSTANCE.to_owned(),
                router_id: router,
                priority: priority(spec, i),
                advert_interval_ms: DEFAULT_ADVERT_INTERVAL_MS,
                unicast_source: profile.source,
                unicast_peers: sources
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, s)| *s)
                    .collect(),
            },
            ca_pem: material.cas.cluster.cert_pem().to_owned(),
            programs: profile.programs.clone(),
            nginx_stream_module: profile.nginx_stream_module.clone(),
        };
        let plan = LoadBalancerHostInput {
            proxy,
            rendered: input.render().map_err(plan_error)?,
            cluster_id: material.record.id.clone(),
        };
        let digest = plans::load_balancer_inputs_digest(&plan);
        if statuses[i].inputs.as_deref() == Some(digest.as_str())
            && holds(obj.conditions(), PROVISIONED)
        {
            continue;
        }
        if first_time {
            book.phase(Phase::Provisioning).set(
                PROVISIONED,
                false,
                "Provisioning",
                format!(
                    "configuring {} and keepalived on {}",
                    proxy.package(),
                    addresses[i]
                ),
            );
            book.write().await?;
        }
        let tasks = plans::load_balancer_host(plan);
        if let Err(e) = run_plan::run(&ctx, obj.as_ref(), session, Some(JOURNAL), &tasks).await {
            let reason = e.reason;
            book.phase(Phase::Failed)
                .set(PROVISIONED, false, reason, format!("{}: {e}", addresses[i]))
                .set(
                    READY,
                    false,
                    reason,
                    format!("{} was not configured; see Provisioned", addresses[i]),
                );
            book.field("hosts", json!(statuses));
            book.write().await?;
            return Err(Error::Task(e));
        }
        statuses[i].inputs = Some(digest);
        changed.push(addresses[i]);
        book.field("hosts", json!(statuses));
        book.write().await?;
    }
    book.set(
        PROVISIONED,
        true,
        "Configured",
        format!(
            "{} and keepalived on {}; backends: {}",
            proxy.package(),
            addresses.join(", "),
            if listed.is_empty() {
                "none yet".to_owned()
            } else {
                listed.join(", ")
            }
        ),
    )
    .field("backends", json!(listed));
    if !changed.is_empty() {
        info!(hosts = %changed.join(","), backends = %listed.join(","), "load balancer configured");
        publish(
            &ctx,
            obj.as_ref(),
            EventType::Normal,
            "Configured",
            format!(
                "configured {} (backends: {})",
                changed.join(", "),
                listed.join(", ")
            ),
        )
        .await;
    }

    // ---- observe: who holds the VIP, what each proxy sees ---------------------
    let mut holders = Vec::new();
    for (i, host) in reached.iter().enumerate() {
        let Some((session, _)) = host else {
            statuses[i].vrrp_state = None;
            statuses[i].backends = Vec::new();
            continue;
        };
        let seen = observe(session, proxy, vip, &backends, &probed).await?;
        if seen.holds_vip {
            holders.push(addresses[i].to_owned());
        }
        statuses[i].vrrp_state = seen.vrrp_state;
        statuses[i].backends = seen.backends;
    }
    book.field("hosts", json!(statuses));
    let new_holder = (holders.len() == 1).then(|| holders[0].clone());
    match holders.len() {
        1 => book.set(VIP_HELD, true, "Held", format!("{vip} is on {}", holders[0])),
        0 => book.set(VIP_HELD, false, "NoHolder", format!("no host holds {vip}")),
        _ => book.set(
            VIP_HELD,
            false,
            "SplitBrain",
            format!(
                "{vip} is on {} at once: the hosts do not hear each other's VRRP adverts (check that unicast VRRP, IP protocol 112, passes between them)",
                holders.join(" and ")
            ),
        ),
    };
    book.field("vipHolder", json!(new_holder));
    if new_holder.is_some() && new_holder != holder {
        publish(
            &ctx,
            obj.as_ref(),
            EventType::Normal,
            "VipMoved",
            format!(
                "{vip} moved from {} to {}",
                holder.as_deref().unwrap_or("nobody"),
                new_holder.as_deref().unwrap_or("nobody")
            ),
        )
        .await;
    }

    // ---- does the API answer through the VIP? then it is the endpoint ---------
    let serving = probe.readyz(vip, port).await;
    match &serving {
        Ok(()) => book.set(
            VIP_SERVING,
            true,
            "Serving",
            format!(
                "https://{}/readyz answers",
                std::net::SocketAddr::new(vip, port)
            ),
        ),
        Err(e) => book.set(VIP_SERVING, false, "NotServing", e.to_string()),
    };
    let endpoint = Endpoint {
        vip: Some(vip),
        dns_names: spec.dns_names.clone(),
        balancer_port: (port != api_port).then_some(port),
    };
    let published = if serving.is_ok() {
        load_balancers::publish_endpoint(&ctx, obj.as_ref(), &endpoint).await?;
        true
    } else {
        Endpoint::of(&material.record) == endpoint
    };
    if published {
        book.set(
            ENDPOINT_PUBLISHED,
            true,
            "Published",
            "the cluster's record names this VIP: every master's certificate and admin.conf follow it (run `bootstrap use-endpoint` on the workstation)",
        );
    } else {
        book.set(
            ENDPOINT_PUBLISHED,
            false,
            "WaitingForVip",
            "published once the API answers through the VIP",
        );
    }
    let healthy = serving.is_ok() && holders.len() == 1 && unreachable.is_empty();
    if healthy {
        book.phase(Phase::Ready).set(
            READY,
            true,
            "Serving",
            format!("the API answers through {vip}"),
        );
    } else {
        book.phase(Phase::Degraded)
            .set(READY, false, "NotServing", "see VipHeld and VipServing");
    }
    book.write().await?;
    Ok(Action::requeue(REFRESH))
}

/// The way out: the cluster's endpoint no longer names the VIP (every
/// master goes back to the first master's address), then each host is
/// cleaned, keepalived first so the VIP moves at once.
async fn leave(obj: Arc<ApiLoadBalancer>, ctx: Arc<Context>) -> Result<Action> {
    let name = obj.name_any();
    let statuses = host_statuses(&obj);
    let touched = statuses.iter().any(|s| {
        s.host_key.observed_host_key.is_some() || s.host_key.host_key_fingerprint.is_some()
    });
    if !touched {
        publish(
            &ctx,
            obj.as_ref(),
            EventType::Normal,
            "Released",
            "nothing was done on the hosts".to_owned(),
        )
        .await;
        return Ok(Action::await_change());
    }
    let api: Api<ApiLoadBalancer> = Api::all(ctx.client.clone());
    let mut book = StatusBook::new(&api, obj.as_ref(), &name);
    book.phase(Phase::Deleting).set(
        READY,
        false,
        "Leaving",
        "taking the VIP out of the cluster's endpoint, then cleaning the hosts",
    );
    book.write().await?;
    let material = ClusterMaterial::load(&ctx).await?;
    if let Ok((vip, _)) = parse_vip(&obj.spec.vip)
        && material.record.endpoint_vip == Some(vip)
    {
        load_balancers::publish_endpoint(
            &ctx,
            obj.as_ref(),
            &Endpoint {
                vip: None,
                dns_names: Vec::new(),
                balancer_port: None,
            },
        )
        .await?;
    }
    for (h, status) in obj.spec.hosts.iter().zip(&statuses) {
        let (session, _) = hosts::connect(&ctx, &h.host, &status.host_key).await?;
        let tasks = plans::teardown_load_balancer();
        run_plan::run(&ctx, obj.as_ref(), &session, None, &tasks).await?;
        info!(host = %h.host.address, "load balancer removed from the host");
    }
    publish(
        &ctx,
        obj.as_ref(),
        EventType::Normal,
        "Left",
        format!("{name} removed from {}; its hosts are clean", obj.hosts()),
    )
    .await;
    Ok(Action::await_change())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeseed_crds::v1alpha1::{ControlPlaneMemberSpec, LoadBalancerHost};

    fn lb(name: &str, hosts: &[&str], port: Option<i32>) -> ApiLoadBalancer {
        ApiLoadBalancer::new(
            name,
            ApiLoadBalancerSpec {
                hosts: hosts
                    .iter()
                    .map(|a| LoadBalancerHost {
                        host: HostSpec::new(*a, "k"),
                        priority: None,
                    })
                    .collect(),
                vip: "10.0.0.100/24".into(),
                interface: None,
                port,
                implementation: Default::default(),
                virtual_router_id: None,
                dns_names: vec![],
                backends: vec![],
            },
        )
    }

    fn master(name: &str, address: &str) -> ControlPlaneMember {
        ControlPlaneMember::new(
            name,
            ControlPlaneMemberSpec {
                host: HostSpec::new(address, "k"),
                ..Default::default()
            },
        )
    }

    #[test]
    fn priorities_default_to_100_then_ten_less() {
        let mut o = lb("api", &["10.0.0.21", "10.0.0.22", "10.0.0.23"], None);
        assert_eq!(
            (0..3).map(|i| priority(&o.spec, i)).collect::<Vec<_>>(),
            [100, 90, 80]
        );
        o.spec.hosts[1].priority = Some(150);
        assert_eq!(priority(&o.spec, 1), 150);
    }

    #[test]
    fn the_router_id_is_the_specs_or_a_stable_one_from_the_name() {
        let mut o = lb("api", &["10.0.0.21"], None);
        let derived = router_id(&o);
        assert!(derived >= 1);
        assert_eq!(derived, router_id(&lb("api", &["10.0.0.99"], None)));
        o.spec.virtual_router_id = Some(42);
        assert_eq!(router_id(&o), 42);
    }

    #[test]
    fn a_balancer_on_a_masters_host_needs_another_port() {
        let masters = [master("m1", "10.0.0.11")];
        let o = lb("api", &["10.0.0.11"], None);
        let why = conflict_with_masters(&o.spec, &masters, 6443).unwrap();
        assert!(
            why.contains("ControlPlaneMember m1") && why.contains("spec.port"),
            "{why}"
        );
        let o = lb("api", &["10.0.0.11"], Some(8443));
        assert!(conflict_with_masters(&o.spec, &masters, 6443).is_none());
    }

    #[test]
    fn a_vip_a_member_uses_is_refused() {
        let masters = [master("m1", "10.0.0.100")];
        let why = vip_in_use("10.0.0.100".parse().unwrap(), &masters, &[]).unwrap();
        assert!(why.contains("ControlPlaneMember m1"), "{why}");
        assert!(vip_in_use("10.0.0.101".parse().unwrap(), &masters, &[]).is_none());
    }

    #[test]
    fn haproxy_statistics_give_each_backends_health() {
        let csv = "# pxname,svname,qcur,status,check_status,last_chk\n\
                   kube_apiservers,host1,0,UP,L7OK,HTTP status check returned code <200>\n\
                   kube_apiservers,host2,0,DOWN,L4CON,Connection refused\n\
                   kube_apiservers,BACKEND,0,UP,,\n";
        let backends = ["host1", "host2", "host3"]
            .iter()
            .enumerate()
            .map(|(i, n)| Backend {
                name: (*n).into(),
                address: format!("10.0.0.1{}", i + 1),
                port: 6443,
            })
            .collect::<Vec<_>>();
        let health = haproxy_health(csv, &backends);
        assert!(health[0].healthy && health[0].detail.is_none());
        assert!(!health[1].healthy);
        assert!(
            health[1]
                .detail
                .as_deref()
                .unwrap()
                .contains("Connection refused")
        );
        assert!(!health[2].healthy);
        assert_eq!(health[2].address, "10.0.0.13:6443");
    }

    #[test]
    fn the_older_balancer_wins() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        use k8s_openapi::jiff::Timestamp;
        let mut a = lb("a", &["10.0.0.21"], None);
        a.metadata.creation_timestamp = Some(Time(Timestamp::from_second(10).unwrap()));
        let mut b = lb("b", &["10.0.0.31"], None);
        b.metadata.creation_timestamp = Some(Time(Timestamp::from_second(20).unwrap()));
        let all = [a.clone(), b.clone()];
        assert!(older_balancer(&a, &all).is_none());
        assert!(
            older_balancer(&b, &all)
                .unwrap()
                .contains("ApiLoadBalancer a")
        );
    }
}
