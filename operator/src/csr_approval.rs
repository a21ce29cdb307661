//! Approval of the workers' kubelet serving certificates.
//!
//! Workers join by TLS bootstrapping with `serverTLSBootstrap: true`: once
//! its client certificate is issued, the kubelet asks for a serving
//! certificate with a CertificateSigningRequest for the signer
//! `kubernetes.io/kubelet-serving`, and no built-in controller approves
//! those (anyone who can create a CSR could otherwise get a certificate for
//! any name the kube-apiserver trusts for `kubectl logs/exec`). This
//! controller approves one only when it is exactly what the kubelet of a
//! [`WorkerNode`] kubeseed provisions asks for, and denies every other one
//! with a reason saying what was wrong; see [`decide`]:
//!
//! - requested by the node itself: user `system:node:<N>` in group
//!   `system:nodes` (set by the API server from the kubelet's credentials);
//! - `<N>` is the node name of a WorkerNode (`status.nodeName`, else
//!   `spec.kubelet.nodeName`);
//! - subject exactly `CN=system:node:<N>, O=system:nodes`;
//! - at least one SAN; every IP SAN is the WorkerNode's advertise address,
//!   every DNS SAN is `<N>` (or `spec.host.address` when that is a name); no
//!   other kind of SAN;
//! - usages `digital signature` and `server auth`, optionally `key
//!   encipherment` (RSA keys), and nothing else: exactly the two sets the
//!   kube-controller-manager's signer issues for this signer.
//!
//! A decision is written once, through the `approval` subresource with the
//! resourceVersion it was made on: a request someone (or another replica)
//! decided meanwhile is never touched again, and a conflict is retried
//! after reading the request anew. Each decision is recorded as an Event on
//! the WorkerNode (the request as its related object), or on the request
//! when no WorkerNode matched. Runs on the leader, beside the controllers.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use tracing::{Instrument, debug, field, info, info_span, warn};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::cri_attributes::ParsedCriAttribute;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{
    OID_X509_COMMON_NAME, OID_X509_EXT_SUBJECT_ALT_NAME, OID_X509_ORGANIZATION_NAME,
};
use x509_parser::prelude::FromDer;

use kubeseed_crds::v1alpha1::WorkerNode;

use crate::context::Context;
use crate::controllers::{StopSignal, truncate_note};
use crate::error::{Error, Result};

/// The signer of kubelet serving certificates: the only one looked at.
pub const SIGNER: &str = "kubernetes.io/kubelet-serving";
/// The group every kubelet's credentials carry.
pub const NODES_GROUP: &str = "system:nodes";
/// The prefix of a kubelet's user name (and of its certificates' CN).
pub const NODE_USER_PREFIX: &str = "system:node:";

/// The CSR condition's reason when approved.
pub const REASON_APPROVED: &str = "KubeseedApproved";
/// Denied: no WorkerNode has the node name the request is for.
pub const REASON_UNKNOWN_NODE: &str = "UnknownNode";
/// Denied: not requested by a node's own credentials.
pub const REASON_REQUESTER_MISMATCH: &str = "RequesterMismatch";
/// Denied: the subject is not `CN=system:node:<N>, O=system:nodes`.
pub const REASON_SUBJECT_MISMATCH: &str = "SubjectMismatch";
/// Denied: a SAN that is not the node's name or address, or none at all.
pub const REASON_UNEXPECTED_SAN: &str = "UnexpectedSan";
/// Denied: usages other than those of a serving certificate.
pub const REASON_UNEXPECTED_USAGE: &str = "UnexpectedUsage";
/// Denied: `spec.request` is not a PEM certificate request.
pub const REASON_MALFORMED_REQUEST: &str = "MalformedRequest";

/// Event reason on the WorkerNode (or the request) when approved.
pub const EVENT_APPROVED: &str = "ServingCertificateApproved";
/// Event reason on the WorkerNode (or the request) when denied.
pub const EVENT_DENIED: &str = "ServingCertificateDenied";

/// Usages a kubelet serving certificate may have: `digital signature` and
/// `server auth` are required, `key encipherment` is allowed (RSA keys).
const REQUIRED_USAGES: [&str; 2] = ["digital signature", "server auth"];
const OPTIONAL_USAGES: [&str; 1] = ["key encipherment"];
/// How many times a decision is written again after a conflict before the
/// reconcile gives up (and is retried later).
const CONFLICT_ATTEMPTS: u32 = 5;
/// How soon a request whose decision could not be written is tried again.
const RETRY: Duration = Duration::from_secs(10);
/// The kind label of this controller's metrics.
const KIND: &str = "CertificateSigningRequest";
/// How many offending SANs a message lists.
const LISTED: usize = 8;

/// What to do with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The kubelet of WorkerNode `worker` asks for what it should get.
    Approve {
        /// The WorkerNode's name.
        worker: String,
    },
    /// Refuse it, for `reason`.
    Deny {
        /// CamelCase reason (one of the `REASON_*` constants).
        reason: &'static str,
        /// What was wrong and what was expected.
        message: String,
        /// The WorkerNode the request claims to be for, when one matched.
        worker: Option<String>,
    },
    /// Not this controller's to decide (another signer, or decided already).
    Ignore(&'static str),
}

/// The node name a WorkerNode has (`status.nodeName`, once registered) or
/// will have (`spec.kubelet.nodeName`); `None` while it is to be learned
/// from the host.
pub fn worker_node_name(worker: &WorkerNode) -> Option<&str> {
    registered_name(worker).or_else(|| {
        worker
            .spec
            .kubelet
            .as_ref()
            .and_then(|k| k.node_name.as_deref())
    })
}

fn registered_name(worker: &WorkerNode) -> Option<&str> {
    worker.status.as_ref().and_then(|s| s.node_name.as_deref())
}

/// Whether no Approved, Denied (or Failed) condition was written yet.
pub fn is_pending(csr: &CertificateSigningRequest) -> bool {
    !csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| matches!(c.type_.as_str(), "Approved" | "Denied" | "Failed"))
        })
}

/// The node a request's requester is, from `spec.username`
/// (`system:node:<N>`).
pub fn requesting_node(csr: &CertificateSigningRequest) -> Option<&str> {
    csr.spec
        .username
        .as_deref()
        .and_then(|u| u.strip_prefix(NODE_USER_PREFIX))
        .filter(|n| !n.is_empty())
}

/// The WorkerNode whose node name is `node`: one that registered as it
/// first, then the oldest (then first by name) that asks for it, as the
/// WorkerNode controller settles such conflicts.
fn matching_worker<'a>(node: &str, workers: &'a [WorkerNode]) -> Option<&'a WorkerNode> {
    workers
        .iter()
        .filter(|w| worker_node_name(w) == Some(node))
        .min_by(|a, b| {
            let key = |w: &WorkerNode| {
                (
                    registered_name(w) != Some(node),
                    w.metadata.creation_timestamp.clone(),
                    w.name_any(),
                )
            };
            key(a)
                .partial_cmp(&key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
}

/// What a request asks for, as read from its PEM.
#[derive(Debug, Default)]
struct Requested {
    common_names: Vec<String>,
    organizations: Vec<String>,
    /// Subject attributes other than CN and O, as their OIDs.
    other_subject: Vec<String>,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
    /// SANs of other kinds (e-mail, URI, ...), described.
    other_sans: Vec<String>,
}

/// Reads the subject and SANs of the PEM certificate request `pem`.
fn parse_request(pem: &[u8]) -> std::result::Result<Requested, String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|e| format!("spec.request is not PEM: {e}"))?;
    if !block.label.ends_with("CERTIFICATE REQUEST") {
        return Err(format!(
            "spec.request holds a PEM block of type {:?}, expected \"CERTIFICATE REQUEST\"",
            block.label
        ));
    }
    let (rest, csr) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| format!("spec.request is not a PKCS#10 certificate request: {e}"))?;
    if !rest.is_empty() {
        return Err("spec.request has trailing data after the certificate request".into());
    }
    let info = &csr.certification_request_info;
    let mut out = Requested::default();
    for attr in info.subject.iter_attributes() {
        let oid = attr.attr_type();
        if *oid == OID_X509_COMMON_NAME || *oid == OID_X509_ORGANIZATION_NAME {
            let value = attr
                .as_str()
                .map_err(|e| format!("the subject's {oid} is not a string: {e}"))?
                .to_owned();
            if *oid == OID_X509_COMMON_NAME {
                out.common_names.push(value);
            } else {
                out.organizations.push(value);
            }
        } else {
            out.other_subject.push(oid.to_id_string());
        }
    }
    // Every extensionRequest attribute and every SAN extension in them: Go's
    // parser (the signer's) reads them all.
    for attr in info.iter_attributes() {
        let ParsedCriAttribute::ExtensionRequest(req) = attr.parsed_attribute() else {
            continue;
        };
        for ext in &req.extensions {
            if ext.oid != OID_X509_EXT_SUBJECT_ALT_NAME {
                continue;
            }
            let ParsedExtension::SubjectAlternativeName(san) = ext.parsed_extension() else {
                return Err("the subject alternative name extension cannot be parsed".into());
            };
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => out.dns.push((*d).to_owned()),
                    GeneralName::IPAddress(bytes) => match ip_from(bytes) {
                        Some(ip) => out.ips.push(ip),
                        None => {
                            return Err(format!(
                                "an IP address SAN has {} bytes (expected 4 or 16)",
                                bytes.len()
                            ));
                        }
                    },
                    GeneralName::RFC822Name(m) => out.other_sans.push(format!("email:{m}")),
                    GeneralName::URI(u) => out.other_sans.push(format!("URI:{u}")),
                    GeneralName::Invalid(..) => {
                        return Err("a subject alternative name cannot be parsed".into());
                    }
                    other => out.other_sans.push(describe_other(other)),
                }
            }
        }
    }
    Ok(out)
}

fn ip_from(bytes: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Some(IpAddr::from(v4))
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Some(IpAddr::from(v6))
    } else {
        None
    }
}

fn describe_other(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::OtherName(oid, _) => format!("otherName:{oid}"),
        GeneralName::X400Address(_) => "x400Address".into(),
        GeneralName::DirectoryName(n) => format!("dirName:{n}"),
        GeneralName::EDIPartyName(_) => "ediPartyName".into(),
        GeneralName::RegisteredID(oid) => format!("registeredID:{oid}"),
        _ => "unknown name".into(),
    }
}

fn listed<T: std::fmt::Display>(items: &[T]) -> String {
    let mut shown: Vec<String> = items.iter().take(LISTED).map(|i| i.to_string()).collect();
    if items.len() > LISTED {
        shown.push(format!("and {} more", items.len() - LISTED));
    }
    shown.join(", ")
}

/// Decides what to do with `csr` given the `workers` that exist.
pub fn decide(csr: &CertificateSigningRequest, workers: &[WorkerNode]) -> Decision {
    if csr.spec.signer_name != SIGNER {
        return Decision::Ignore("not a kubelet serving certificate request");
    }
    if !is_pending(csr) {
        return Decision::Ignore("already decided");
    }
    let deny = |reason, message, worker: Option<&WorkerNode>| Decision::Deny {
        reason,
        message,
        worker: worker.map(|w| w.name_any()),
    };

    // ---- who asks ------------------------------------------------------------------
    let username = csr.spec.username.as_deref().unwrap_or_default();
    let Some(node) = requesting_node(csr) else {
        return deny(
            REASON_REQUESTER_MISMATCH,
            format!(
                "requested by {username:?}, not by a kubelet: a serving certificate is approved only when the node itself asks, as user system:node:<node name> in group {NODES_GROUP}"
            ),
            None,
        );
    };
    let groups = csr.spec.groups.as_deref().unwrap_or_default();
    if !groups.iter().any(|g| g == NODES_GROUP) {
        return deny(
            REASON_REQUESTER_MISMATCH,
            format!(
                "requested by {username} without group {NODES_GROUP} (groups: [{}]); expected a kubelet's own credentials, which carry it",
                groups.join(", ")
            ),
            None,
        );
    }
    let Some(worker) = matching_worker(node, workers) else {
        return deny(
            REASON_UNKNOWN_NODE,
            format!(
                "no WorkerNode has node name {node} (status.nodeName, or spec.kubelet.nodeName before it registers): kubeseed approves serving certificates only for the workers it provisions"
            ),
            None,
        );
    };
    let worker_name = worker.name_any();
    let deny = |reason, message| deny(reason, message, Some(worker));

    // ---- what it asks for ---------------------------------------------------------
    let requested = match parse_request(&csr.spec.request.0) {
        Ok(r) => r,
        Err(why) => {
            return deny(
                REASON_MALFORMED_REQUEST,
                format!("{why}; expected a PEM \"CERTIFICATE REQUEST\" from the kubelet"),
            );
        }
    };
    let expected_cn = format!("{NODE_USER_PREFIX}{node}");
    if requested.common_names != [expected_cn.as_str()]
        || requested.organizations != [NODES_GROUP]
        || !requested.other_subject.is_empty()
    {
        let mut got = Vec::new();
        got.extend(requested.common_names.iter().map(|cn| format!("CN={cn}")));
        got.extend(requested.organizations.iter().map(|o| format!("O={o}")));
        got.extend(
            requested
                .other_subject
                .iter()
                .map(|oid| format!("{oid}=...")),
        );
        return deny(
            REASON_SUBJECT_MISMATCH,
            format!(
                "subject is [{}], expected exactly CN={expected_cn}, O={NODES_GROUP} (the requester's own name)",
                got.join(", ")
            ),
        );
    }

    // ---- names the certificate would carry -------------------------------------------
    let advertise = worker.spec.advertise_address();
    let advertise_ip = advertise.parse::<IpAddr>().ok();
    let host_name = (worker.spec.host.address.parse::<IpAddr>().is_err())
        .then_some(worker.spec.host.address.as_str());
    let mut allowed_names = vec![node];
    allowed_names.extend(host_name.filter(|h| !h.eq_ignore_ascii_case(node)));
    let expected_sans = {
        let mut e: Vec<String> = allowed_names.iter().map(|n| format!("DNS:{n}")).collect();
        match advertise_ip {
            Some(ip) => e.push(format!("IP:{ip}")),
            None => e.push(format!(
                "no IP (advertise address {advertise:?} is not an IP address)"
            )),
        }
        e.join(", ")
    };
    let bad_ips: Vec<IpAddr> = requested
        .ips
        .iter()
        .filter(|ip| Some(ip.to_canonical()) != advertise_ip.map(|a| a.to_canonical()))
        .copied()
        .collect();
    let bad_dns: Vec<&str> = requested
        .dns
        .iter()
        .map(String::as_str)
        .filter(|d| !allowed_names.iter().any(|n| n.eq_ignore_ascii_case(d)))
        .collect();
    let mut unexpected: Vec<String> = Vec::new();
    unexpected.extend(bad_dns.iter().map(|d| format!("DNS:{d}")));
    unexpected.extend(bad_ips.iter().map(|ip| format!("IP:{ip}")));
    unexpected.extend(requested.other_sans.iter().cloned());
    if !unexpected.is_empty() {
        return deny(
            REASON_UNEXPECTED_SAN,
            format!(
                "unexpected subject alternative name(s) {} for Node {node} of WorkerNode {worker_name}; allowed: {expected_sans}",
                listed(&unexpected)
            ),
        );
    }
    if requested.dns.is_empty() && requested.ips.is_empty() {
        return deny(
            REASON_UNEXPECTED_SAN,
            format!(
                "the request names no subject alternative name; expected some of: {expected_sans}"
            ),
        );
    }

    // ---- usages ------------------------------------------------------------------------
    let usages = csr.spec.usages.as_deref().unwrap_or_default();
    let stray: Vec<&str> = usages
        .iter()
        .map(String::as_str)
        .filter(|u| !REQUIRED_USAGES.contains(u) && !OPTIONAL_USAGES.contains(u))
        .collect();
    let missing: Vec<&str> = REQUIRED_USAGES
        .iter()
        .copied()
        .filter(|r| !usages.iter().any(|u| u == r))
        .collect();
    if !stray.is_empty() || !missing.is_empty() {
        let mut what = Vec::new();
        if !stray.is_empty() {
            what.push(format!("unexpected [{}]", listed(&stray)));
        }
        if !missing.is_empty() {
            what.push(format!("missing [{}]", missing.join(", ")));
        }
        return deny(
            REASON_UNEXPECTED_USAGE,
            format!(
                "usages [{}]: {}; a kubelet serving certificate has exactly {}, optionally with {}",
                usages.join(", "),
                what.join(", "),
                REQUIRED_USAGES.join(" and "),
                OPTIONAL_USAGES.join(", ")
            ),
        );
    }

    Decision::Approve {
        worker: worker_name,
    }
}

/// Watches kubelet serving CSRs and decides them until `stop` completes.
pub async fn run(ctx: Arc<Context>, stop: StopSignal) {
    info!("kubelet serving certificate approver starting");
    let api: Api<CertificateSigningRequest> = Api::all(ctx.client.clone());
    let only_serving = watcher::Config::default().fields(&format!("spec.signerName={SIGNER}"));
    Controller::new(api, only_serving)
        .graceful_shutdown_on(stop)
        .run(reconcile, error_policy, ctx)
        .for_each(|r| {
            match r {
                // Logged, counted and retried inside the reconcile's span.
                Ok(_) | Err(controller::Error::ReconcilerFailed(..)) => {}
                Err(e) => warn!(error = %e, "serving certificate approver: stream error"),
            }
            futures::future::ready(())
        })
        .await;
    info!("kubelet serving certificate approver stopped");
}

/// Decides one request, writes the decision and records it.
pub async fn reconcile(csr: Arc<CertificateSigningRequest>, ctx: Arc<Context>) -> Result<Action> {
    // The watch's copy is enough to skip what is not ours or decided.
    if csr.spec.signer_name != SIGNER || !is_pending(&csr) {
        return Ok(Action::await_change());
    }
    let name = csr.metadata.name.clone().ok_or(Error::MissingName)?;
    let node = requesting_node(&csr).unwrap_or("-").to_owned();
    let span = info_span!("serving_csr", csr = %name, node = %node, worker = field::Empty);
    async move {
        let _timer = ctx.metrics.reconcile_started(KIND);
        let result = settle(&ctx, &name, &node).await;
        if let Err(e) = &result {
            warn!(error = %e, reason = e.event_reason(), "cannot decide the serving certificate request; retrying");
            ctx.metrics.reconcile_failed(KIND, e);
        }
        result.map(|()| Action::await_change())
    }
    .instrument(span)
    .await
}

/// Retries a request whose decision could not be written.
pub fn error_policy(
    _csr: Arc<CertificateSigningRequest>,
    _err: &Error,
    _ctx: Arc<Context>,
) -> Action {
    Action::requeue(RETRY)
}

/// Reads the request and the WorkerNodes afresh, decides, and writes the
/// decision on the resourceVersion it was made on.
async fn settle(ctx: &Context, name: &str, node: &str) -> Result<()> {
    let csrs: Api<CertificateSigningRequest> = Api::all(ctx.client.clone());
    let workers: Api<WorkerNode> = Api::all(ctx.client.clone());
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(current) = csrs.get_opt(name).await? else {
            return Ok(());
        };
        let all = workers.list(&ListParams::default()).await?.items;
        let (condition, worker, reason, message) = match decide(&current, &all) {
            Decision::Ignore(why) => {
                debug!(why, "nothing to decide");
                return Ok(());
            }
            Decision::Approve { worker } => {
                let message = format!(
                    "approved by kubeseed: the kubelet of WorkerNode {worker} asks for a serving certificate for Node {node} with its own name and address"
                );
                ("Approved", Some(worker), REASON_APPROVED, message)
            }
            Decision::Deny {
                reason,
                message,
                worker,
            } => ("Denied", worker, reason, message),
        };
        if let Some(w) = &worker {
            tracing::Span::current().record("worker", field::display(w));
        }
        let mut update = current.clone();
        update
            .status
            .get_or_insert_default()
            .conditions
            .get_or_insert_default()
            .push(CertificateSigningRequestCondition {
                type_: condition.into(),
                status: "True".into(),
                reason: Some(reason.into()),
                message: Some(message.clone()),
                last_update_time: Some(Time(Timestamp::now())),
                last_transition_time: None,
            });
        // update carries current's resourceVersion: a request changed since
        // it was read is refused (409) instead of decided twice.
        match csrs
            .replace_subresource("approval", name, &PostParams::default(), &update)
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 && attempt < CONFLICT_ATTEMPTS => {
                debug!(attempt, "the request changed meanwhile; reading it again");
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        let approved = condition == "Approved";
        if approved {
            info!(message = %message, "serving certificate request approved");
        } else {
            warn!(reason, message = %message, "serving certificate request denied");
        }
        record(
            ctx,
            &current,
            worker.as_deref(),
            &all,
            approved,
            reason,
            &message,
        )
        .await;
        return Ok(());
    }
}

/// Publishes the decision as an Event on the WorkerNode (the request as
/// related object, so each request has its own Event), or on the request
/// when none matched; a failure is logged only (the condition says it all).
async fn record(
    ctx: &Context,
    csr: &CertificateSigningRequest,
    worker: Option<&str>,
    workers: &[WorkerNode],
    approved: bool,
    reason: &str,
    message: &str,
) {
    let csr_name = csr.name_any();
    let (type_, event_reason, action) = if approved {
        (EventType::Normal, EVENT_APPROVED, "Approve")
    } else {
        (EventType::Warning, EVENT_DENIED, "Deny")
    };
    let note = if approved {
        format!("CertificateSigningRequest {csr_name}: {message}")
    } else {
        format!("CertificateSigningRequest {csr_name} denied ({reason}): {message}")
    };
    let csr_ref = csr.object_ref(&());
    let (regarding, secondary) =
        match worker.and_then(|w| workers.iter().find(|o| o.name_any() == w)) {
            Some(w) => (w.object_ref(&()), Some(csr_ref)),
            None => (csr_ref, None),
        };
    let event = KubeEvent {
        type_,
        reason: event_reason.into(),
        note: Some(truncate_note(note)),
        action: action.into(),
        secondary,
    };
    if let Err(e) = ctx.recorder.publish(&event, &regarding).await {
        warn!(error = %e, "cannot publish the decision's event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestSpec, CertificateSigningRequestStatus,
    };
    use kubeseed_crds::v1alpha1::{HostSpec, KubeletSpec, WorkerNodeSpec, WorkerNodeStatus};
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

    const NODE: &str = "worker-1";
    const IP: &str = "10.213.0.21";

    fn worker(
        name: &str,
        address: &str,
        spec_node: Option<&str>,
        status_node: Option<&str>,
    ) -> WorkerNode {
        let mut w = WorkerNode::new(
            name,
            WorkerNodeSpec {
                host: HostSpec::new(address, "ssh"),
                advertise_address: None,
                kubernetes_version: None,
                kubelet: spec_node.map(|n| KubeletSpec {
                    node_name: Some(n.into()),
                    ..Default::default()
                }),
                kube_proxy_extra_args: Default::default(),
            },
        );
        w.status = status_node.map(|n| WorkerNodeStatus {
            node_name: Some(n.into()),
            ..Default::default()
        });
        w
    }

    /// The kubeseed worker `w1`, registered as worker-1 at 10.213.0.21.
    fn workers() -> Vec<WorkerNode> {
        vec![
            worker("w1", IP, Some(NODE), Some(NODE)),
            worker("w9", "10.213.0.29", Some("worker-9"), None),
        ]
    }

    fn pem(subject: &[(DnType, &str)], sans: Vec<SanType>) -> String {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        for (t, v) in subject {
            params.distinguished_name.push(t.clone(), *v);
        }
        params.subject_alt_names = sans;
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    fn dns(n: &str) -> SanType {
        SanType::DnsName(n.try_into().unwrap())
    }

    fn ip(a: &str) -> SanType {
        SanType::IpAddress(a.parse().unwrap())
    }

    fn node_subject(node: &str) -> Vec<(DnType, String)> {
        vec![
            (DnType::CommonName, format!("system:node:{node}")),
            (DnType::OrganizationName, "system:nodes".into()),
        ]
    }

    struct Csr {
        signer: &'static str,
        username: String,
        groups: Vec<&'static str>,
        subject: Vec<(DnType, String)>,
        sans: Vec<SanType>,
        usages: Vec<&'static str>,
        request: Option<String>,
    }

    /// What the kubelet of worker-1 sends.
    fn kubelet() -> Csr {
        Csr {
            signer: SIGNER,
            username: format!("system:node:{NODE}"),
            groups: vec!["system:nodes", "system:authenticated"],
            subject: node_subject(NODE),
            sans: vec![dns(NODE), ip(IP)],
            usages: vec!["digital signature", "server auth"],
            request: None,
        }
    }

    impl Csr {
        fn build(self) -> CertificateSigningRequest {
            let subject: Vec<(DnType, &str)> = self
                .subject
                .iter()
                .map(|(t, v)| (t.clone(), v.as_str()))
                .collect();
            let request = self.request.unwrap_or_else(|| pem(&subject, self.sans));
            CertificateSigningRequest {
                metadata: kube::api::ObjectMeta {
                    name: Some("csr-1".into()),
                    ..Default::default()
                },
                spec: CertificateSigningRequestSpec {
                    request: ByteString(request.into_bytes()),
                    signer_name: self.signer.into(),
                    username: Some(self.username),
                    groups: Some(self.groups.iter().map(|g| (*g).to_owned()).collect()),
                    usages: Some(self.usages.iter().map(|u| (*u).to_owned()).collect()),
                    ..Default::default()
                },
                status: None,
            }
        }
    }

    fn approve(w: &str) -> Decision {
        Decision::Approve { worker: w.into() }
    }

    #[track_caller]
    fn denied(d: Decision, reason: &str, worker: Option<&str>, says: &[&str]) {
        match d {
            Decision::Deny {
                reason: r,
                message,
                worker: w,
            } => {
                assert_eq!(r, reason, "{message}");
                assert_eq!(w.as_deref(), worker, "{message}");
                for s in says {
                    assert!(message.contains(s), "{message:?} does not say {s:?}");
                }
            }
            other => panic!("expected a denial for {reason}, got {other:?}"),
        }
    }

    #[test]
    fn what_the_kubelet_of_a_worker_asks_for_is_approved() {
        assert_eq!(decide(&kubelet().build(), &workers()), approve("w1"));
        // With an RSA key the kubelet also asks for key encipherment.
        let mut c = kubelet();
        c.usages = vec!["digital signature", "key encipherment", "server auth"];
        assert_eq!(decide(&c.build(), &workers()), approve("w1"));
        // Only its name, or only its address.
        let mut c = kubelet();
        c.sans = vec![dns(NODE)];
        assert_eq!(decide(&c.build(), &workers()), approve("w1"));
        let mut c = kubelet();
        c.sans = vec![ip(IP)];
        assert_eq!(decide(&c.build(), &workers()), approve("w1"));
    }

    #[test]
    fn the_node_name_comes_from_the_status_else_the_spec() {
        // Not registered yet: spec.kubelet.nodeName.
        let mut c = kubelet();
        c.username = "system:node:worker-9".into();
        c.subject = node_subject("worker-9");
        c.sans = vec![dns("worker-9"), ip("10.213.0.29")];
        assert_eq!(decide(&c.build(), &workers()), approve("w9"));
        // Registered under the host's name (no spec.kubelet.nodeName).
        let registered = vec![worker("w2", "10.213.0.22", None, Some("host-2"))];
        let mut c = kubelet();
        c.username = "system:node:host-2".into();
        c.subject = node_subject("host-2");
        c.sans = vec![dns("host-2"), ip("10.213.0.22")];
        assert_eq!(decide(&c.build(), &registered), approve("w2"));
        // A worker whose name is not known yet matches nothing.
        let unnamed = vec![worker("w3", IP, None, None)];
        denied(
            decide(&kubelet().build(), &unnamed),
            REASON_UNKNOWN_NODE,
            None,
            &["worker-1"],
        );
    }

    #[test]
    fn the_one_that_registered_as_the_node_wins_over_another_that_asks_for_its_name() {
        let mut w_other = worker("w0-other", "10.213.0.50", Some(NODE), None);
        w_other.metadata.creation_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        let list = vec![w_other, worker("w1", IP, Some(NODE), Some(NODE))];
        assert_eq!(decide(&kubelet().build(), &list), approve("w1"));
    }

    #[test]
    fn a_host_address_that_is_a_name_is_allowed_as_a_dns_san() {
        let mut w = worker("w2", "worker-2.lab.example", None, Some("worker-2"));
        w.spec.advertise_address = Some("10.213.0.22".into());
        let mut c = kubelet();
        c.username = "system:node:worker-2".into();
        c.subject = node_subject("worker-2");
        c.sans = vec![
            dns("worker-2"),
            dns("worker-2.lab.example"),
            ip("10.213.0.22"),
        ];
        assert_eq!(decide(&c.build(), &[w.clone()]), approve("w2"));
        // The SSH address is not a SAN when it is an IP; nor is any other IP.
        let mut c = kubelet();
        c.username = "system:node:worker-2".into();
        c.subject = node_subject("worker-2");
        c.sans = vec![dns("worker-2"), ip("10.213.0.22"), ip("10.213.0.99")];
        denied(
            decide(&c.build(), &[w]),
            REASON_UNEXPECTED_SAN,
            Some("w2"),
            &[
                "IP:10.213.0.99",
                "DNS:worker-2",
                "DNS:worker-2.lab.example",
                "IP:10.213.0.22",
            ],
        );
    }

    #[test]
    fn other_signers_and_decided_requests_are_ignored() {
        let mut c = kubelet();
        c.signer = "kubernetes.io/kube-apiserver-client-kubelet";
        assert!(matches!(
            decide(&c.build(), &workers()),
            Decision::Ignore(_)
        ));
        for t in ["Approved", "Denied", "Failed"] {
            let mut csr = kubelet().build();
            csr.status = Some(CertificateSigningRequestStatus {
                conditions: Some(vec![CertificateSigningRequestCondition {
                    type_: t.into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            });
            assert_eq!(
                decide(&csr, &workers()),
                Decision::Ignore("already decided")
            );
        }
    }

    #[test]
    fn only_the_node_itself_may_ask() {
        let mut c = kubelet();
        c.username = "kubernetes-admin".into();
        c.groups = vec!["system:masters", "system:authenticated"];
        denied(
            decide(&c.build(), &workers()),
            REASON_REQUESTER_MISMATCH,
            None,
            &["kubernetes-admin", "system:node:<node name>"],
        );
        let mut c = kubelet();
        c.groups = vec!["system:authenticated"];
        denied(
            decide(&c.build(), &workers()),
            REASON_REQUESTER_MISMATCH,
            None,
            &["without group system:nodes"],
        );
        let mut c = kubelet();
        c.username = "system:node:".into();
        denied(
            decide(&c.build(), &workers()),
            REASON_REQUESTER_MISMATCH,
            None,
            &[],
        );
    }

    #[test]
    fn a_node_no_worker_registers_as_is_unknown() {
        let mut c = kubelet();
        c.username = "system:node:stranger".into();
        c.subject = node_subject("stranger");
        denied(
            decide(&c.build(), &workers()),
            REASON_UNKNOWN_NODE,
            None,
            &["stranger", "WorkerNode"],
        );
    }

    #[test]
    fn the_subject_must_be_the_requesters_own_name() {
        // Another node's name.
        let mut c = kubelet();
        c.subject = node_subject("worker-9");
        denied(
            decide(&c.build(), &workers()),
            REASON_SUBJECT_MISMATCH,
            Some("w1"),
            &[
                "CN=system:node:worker-9",
                "expected exactly CN=system:node:worker-1, O=system:nodes",
            ],
        );
        // No organisation, another one, or an extra attribute.
        for subject in [
            vec![(DnType::CommonName, "system:node:worker-1".to_owned())],
            vec![
                (DnType::CommonName, "system:node:worker-1".to_owned()),
                (DnType::OrganizationName, "system:masters".to_owned()),
            ],
            vec![
                (DnType::CommonName, "system:node:worker-1".to_owned()),
                (DnType::OrganizationName, "system:nodes".to_owned()),
                (DnType::OrganizationName, "system:masters".to_owned()),
            ],
            vec![
                (DnType::CommonName, "system:node:worker-1".to_owned()),
                (DnType::OrganizationName, "system:nodes".to_owned()),
                (DnType::OrganizationalUnitName, "ops".to_owned()),
            ],
        ] {
            let mut c = kubelet();
            c.subject = subject;
            denied(
                decide(&c.build(), &workers()),
                REASON_SUBJECT_MISMATCH,
                Some("w1"),
                &["expected exactly"],
            );
        }
    }

    #[test]
    fn every_san_must_be_the_nodes_name_or_address() {
        for (sans, says) in [
            (vec![dns(NODE), ip(IP), ip("10.0.0.99")], "IP:10.0.0.99"),
            (
                vec![dns(NODE), dns("kubernetes.default"), ip(IP)],
                "DNS:kubernetes.default",
            ),
            (vec![dns("worker-9"), ip(IP)], "DNS:worker-9"),
            (vec![dns(NODE), ip("10.213.0.29")], "IP:10.213.0.29"),
            (
                vec![
                    dns(NODE),
                    SanType::Rfc822Name("a@b.example".try_into().unwrap()),
                ],
                "email:a@b.example",
            ),
            (
                vec![dns(NODE), SanType::URI("spiffe://x/y".try_into().unwrap())],
                "URI:spiffe://x/y",
            ),
            (vec![], "no subject alternative name"),
        ] {
            let mut c = kubelet();
            c.sans = sans;
            denied(
                decide(&c.build(), &workers()),
                REASON_UNEXPECTED_SAN,
                Some("w1"),
                &[says],
            );
        }
    }

    #[test]
    fn usages_are_those_of_a_serving_certificate() {
        for (usages, says) in [
            (
                vec!["digital signature", "server auth", "client auth"],
                "unexpected [client auth]",
            ),
            (
                vec!["digital signature", "key encipherment"],
                "missing [server auth]",
            ),
            (vec!["server auth"], "missing [digital signature]"),
            (vec![], "missing [digital signature, server auth]"),
        ] {
            let mut c = kubelet();
            c.usages = usages;
            denied(
                decide(&c.build(), &workers()),
                REASON_UNEXPECTED_USAGE,
                Some("w1"),
                &[says, "digital signature and server auth"],
            );
        }
    }

    #[test]
    fn a_request_that_does_not_parse_is_malformed() {
        let cert = {
            let key = KeyPair::generate().unwrap();
            CertificateParams::new(vec![NODE.to_owned()])
                .unwrap()
                .self_signed(&key)
                .unwrap()
                .pem()
        };
        for (request, says) in [
            ("not pem at all".to_owned(), "not PEM"),
            (cert, "\"CERTIFICATE\""),
            (
                "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
                    .to_owned(),
                "not a PKCS#10",
            ),
        ] {
            let mut c = kubelet();
            c.request = Some(request);
            denied(
                decide(&c.build(), &workers()),
                REASON_MALFORMED_REQUEST,
                Some("w1"),
                &[says],
            );
        }
    }

    #[test]
    fn a_second_extension_request_is_read_too() {
        // The signer reads every extensionRequest attribute: a SAN hidden in
        // a second one must be seen.
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        for (t, v) in node_subject(NODE) {
            params.distinguished_name.push(t, v);
        }
        params.subject_alt_names = vec![dns(NODE)];
        // A second extensionRequest carrying SAN DNS:evil.example.
        let san = extension_request_with_san("evil.example");
        let attr = rcgen::Attribute {
            oid: &[1, 2, 840, 113549, 1, 9, 14],
            values: san,
        };
        let pem = params
            .serialize_request_with_attributes(&key, vec![attr])
            .unwrap()
            .pem()
            .unwrap();
        let mut c = kubelet();
        c.request = Some(pem);
        denied(
            decide(&c.build(), &workers()),
            REASON_UNEXPECTED_SAN,
            Some("w1"),
            &["DNS:evil.example"],
        );
    }

    /// DER of `SET { SEQUENCE { SEQUENCE { OID subjectAltName, OCTET
    /// STRING { SEQUENCE { [2] name } } } } }`, the value of an
    /// extensionRequest attribute.
    fn extension_request_with_san(name: &str) -> Vec<u8> {
        fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
            assert!(content.len() < 128);
            let mut v = vec![tag, content.len() as u8];
            v.extend_from_slice(content);
            v
        }
        let general_names = tlv(0x30, &tlv(0x82, name.as_bytes()));
        let oid = tlv(0x06, &[0x55, 0x1d, 0x11]);
        let ext = tlv(0x30, &[oid, tlv(0x04, &general_names)].concat());
        let exts = tlv(0x30, &ext);
        tlv(0x31, &exts)
    }

    #[test]
    fn a_message_lists_a_bounded_number_of_sans() {
        let mut c = kubelet();
        c.sans = (0..40).map(|i| dns(&format!("n{i}.example"))).collect();
        match decide(&c.build(), &workers()) {
            Decision::Deny { message, .. } => {
                assert!(message.contains("and 32 more"), "{message}");
                assert!(message.len() < 1024, "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}
