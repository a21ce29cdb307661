//! The client: JSON requests to etcd's gRPC gateway over mutual TLS.
//!
//! The HTTP stack is the bundle downloader's (`bundle/download.rs`): hyper 1
//! with hyper-util's legacy pooled client and hyper-rustls, on rustls with
//! the `ring` provider named explicitly (never the process default, which
//! depends on other crates' features). HTTP/1.1, `https://` only: etcd's
//! client port serves the gateway on the same TLS listener as gRPC, and a
//! membership change is never sent unencrypted.

use crate::error_text::chain;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, Uri, header};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::Instrument;

use super::error::{self, EtcdError};
use super::membership::learner_caught_up;
use super::types::{
    EndpointStatus, EtcdMemberInfo, MemberId, WireMemberAdd, WireMembers, WireStatus,
};

const USER_AGENT: &str = concat!("kubeseed/", env!("CARGO_PKG_VERSION"));

/// Answers are small (a member list, a status); anything bigger is not etcd.
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// The longest a TCP connect may take before the next endpoint is tried.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often `move_leader` starts again when the leader changed under it.
const MOVE_LEADER_ATTEMPTS: u32 = 3;

/// The credentials for etcd's client port, all PEM: the etcd CA that signed
/// the server certificates, and a client certificate (chain) and key signed
/// by it (for example `/etc/kubernetes/pki/etcd/ca.crt`,
/// `healthcheck-client.crt`, `healthcheck-client.key`, or the apiserver's
/// `apiserver-etcd-client` pair).
#[derive(Clone)]
pub struct EtcdTls {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdTls")
            .field("ca_pem", &format_args!("{} bytes", self.ca_pem.len()))
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// How far a learner is behind the leader ([`EtcdClient::learner_progress`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerProgress {
    /// The member as the member list has it.
    pub member: EtcdMemberInfo,
    /// The leader's status.
    pub leader: EndpointStatus,
    /// The learner's own status; `None` while it has not started (no
    /// client URLs published yet).
    pub learner: Option<EndpointStatus>,
}

impl LearnerProgress {
    /// [`learner_caught_up`] of the two statuses; false while not started.
    pub fn caught_up(&self) -> bool {
        self.learner
            .as_ref()
            .is_some_and(|l| learner_caught_up(&self.leader, l))
    }
}

/// A client of one etcd cluster's membership API.
///
/// Requests go to the configured endpoints in order: the first that answers
/// decides. For a change (add, promote, remove, move leader) the next
/// endpoint is tried only when the request cannot have reached etcd (the
/// TCP connection or the TLS handshake failed); a timeout or a connection
/// lost after the request was sent is returned as is, because the change
/// may have been applied: list the members before trying again. A read
/// (member list, status) goes on to the next endpoint after any transport
/// failure. Any call goes on after a learner's refusal to serve it
/// (`etcdserver: rpc not supported for learner`: a learner answers its
/// status and nothing else, not even a member list or a promotion of
/// itself). Each request has `timeout` from start to
/// the last byte of the answer; a TCP connect gives up after half of it (at
/// most 5 s) so that another endpoint still has time.
///
/// A leader refuses membership changes until it has been connected to a
/// majority of its peers for 5 s (etcd's `HealthInterval`): right after an
/// election, a leadership move or a member's start, expect
/// [`EtcdError::Unhealthy`] for a few seconds. It is transient
/// ([`EtcdError::is_transient`]): retry.
#[derive(Clone)]
pub struct EtcdClient {
    endpoints: Vec<String>,
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for EtcdClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdClient")
            .field("endpoints", &self.endpoints)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The calls, with their gateway paths.
#[derive(Debug, Clone, Copy)]
enum Op {
    MemberList,
    MemberAdd,
    MemberPromote,
    MemberRemove,
    Status,
    MoveLeader,
}

impl Op {
    fn path(self) -> &'static str {
        match self {
            Op::MemberList => "/v3/cluster/member/list",
            Op::MemberAdd => "/v3/cluster/member/add",
            Op::MemberPromote => "/v3/cluster/member/promote",
            Op::MemberRemove => "/v3/cluster/member/remove",
            Op::Status => "/v3/maintenance/status",
            Op::MoveLeader => "/v3/maintenance/transfer-leadership",
        }
    }

    /// Reads: safe to ask the next endpoint whatever happened to the
    /// request on this one.
    fn is_read(self) -> bool {
        matches!(self, Op::MemberList | Op::Status)
    }

    fn name(self) -> &'static str {
        match self {
            Op::MemberList => "member list",
            Op::MemberAdd => "member add",
            Op::MemberPromote => "member promote",
            Op::MemberRemove => "member remove",
            Op::Status => "status",
            Op::MoveLeader => "move leader",
        }
    }
}

/// One endpoint's failure: try the next endpoint, or stop here.
enum Failure {
    Next(EtcdError),
    Stop(EtcdError),
}

impl EtcdClient {
    /// A client for `endpoints` (client URLs, `https://host:2379`), with
    /// `timeout` per request. Checks the URLs and the PEM now; connects
    /// only when asked something.
    pub fn new(endpoints: Vec<String>, tls: EtcdTls, timeout: Duration) -> Result<Self, EtcdError> {
        if endpoints.is_empty() {
            return Err(config("no etcd endpoint given"));
        }
        if timeout.is_zero() {
            return Err(config("the request timeout must be more than zero"));
        }
        let endpoints = endpoints
            .iter()
            .map(|e| parse_endpoint(e))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = tls_config(&tls)?;
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some((timeout / 2).min(MAX_CONNECT_TIMEOUT)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(tcp);
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            endpoints,
            http,
            timeout,
        })
    }

    /// The endpoints, normalised (`https://authority`, no path).
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// Every member, learners and members not yet started included.
    /// Linearizable: answered by way of the leader, never stale.
    pub async fn members(&self) -> Result<Vec<EtcdMemberInfo>, EtcdError> {
        let (_, list) = self
            .call::<WireMembers>(
                &self.endpoints,
                Op::MemberList,
                json!({"linearizable": true}),
                None,
            )
            .await?;
        Ok(list.members.into_iter().map(Into::into).collect())
    }

    /// Adds a learner (a non-voting member) with these peer URLs; returns
    /// its ID and the members afterwards. Look for it with
    /// [`super::find_by_peer_url`] first: adding the same peer URL twice is
    /// refused ([`EtcdError::PeerUrlExists`]).
    pub async fn add_learner(
        &self,
        peer_urls: &[String],
    ) -> Result<(MemberId, Vec<EtcdMemberInfo>), EtcdError> {
        if peer_urls.is_empty() {
            return Err(config("a member needs at least one peer URL"));
        }
        let (endpoint, added) = self
            .call::<WireMemberAdd>(
                &self.endpoints,
                Op::MemberAdd,
                json!({"peerURLs": peer_urls, "isLearner": true}),
                None,
            )
            .await?;
        let Some(member) = added.member else {
            return Err(EtcdError::BadResponse {
                endpoint,
                operation: Op::MemberAdd.name(),
                detail: "no member in the answer".into(),
            });
        };
        let id = MemberId(member.id);
        tracing::info!(%endpoint, member = %id, ?peer_urls, "etcd learner added");
        Ok((id, added.members.into_iter().map(Into::into).collect()))
    }

    /// Promotes learner `id` to a voting member; returns the members
    /// afterwards.
    pub async fn promote(&self, id: MemberId) -> Result<Vec<EtcdMemberInfo>, EtcdError> {
        let (endpoint, list) = self
            .call::<WireMembers>(
                &self.endpoints,
                Op::MemberPromote,
                json!({"ID": id.wire()}),
                Some(id),
            )
            .await?;
        tracing::info!(%endpoint, member = %id, "etcd learner promoted");
        Ok(list.members.into_iter().map(Into::into).collect())
    }

    /// Removes member `id`; returns the members afterwards. Check
    /// [`super::quorum_after_removal`] first.
    pub async fn remove(&self, id: MemberId) -> Result<Vec<EtcdMemberInfo>, EtcdError> {
        let (endpoint, list) = self
            .call::<WireMembers>(
                &self.endpoints,
                Op::MemberRemove,
                json!({"ID": id.wire()}),
                Some(id),
            )
            .await?;
        tracing::info!(%endpoint, member = %id, "etcd member removed");
        Ok(list.members.into_iter().map(Into::into).collect())
    }

    /// The status of the member at `endpoint` (a client URL; it need not be
    /// one of the configured endpoints), asked of that member only.
    pub async fn status(&self, endpoint: &str) -> Result<EndpointStatus, EtcdError> {
        let endpoint = parse_endpoint(endpoint)?;
        self.status_of(std::slice::from_ref(&endpoint)).await
    }

    /// The status of the first of these client URLs that answers.
    async fn status_of(&self, endpoints: &[String]) -> Result<EndpointStatus, EtcdError> {
        let (endpoint, status) = self
            .call::<WireStatus>(endpoints, Op::Status, json!({}), None)
            .await?;
        Ok(status.into_status(&endpoint))
    }

    /// The leader's own status: the first configured endpoint that names a
    /// leader tells which member it is, then that member is asked.
    pub async fn leader_status(&self) -> Result<EndpointStatus, EtcdError> {
        self.leader_status_in(None).await
    }

    async fn leader_status_in(
        &self,
        members: Option<&[EtcdMemberInfo]>,
    ) -> Result<EndpointStatus, EtcdError> {
        let mut failures = Vec::new();
        let mut leader = None;
        for endpoint in &self.endpoints {
            match self.status_of(std::slice::from_ref(endpoint)).await {
                Ok(s) if s.is_leader() => return Ok(s),
                Ok(EndpointStatus {
                    leader: Some(l), ..
                }) => {
                    leader = Some(l);
                    break;
                }
                Ok(s) => failures.push(EtcdError::Unhealthy {
                    endpoint: s.endpoint,
                    message: if s.errors.is_empty() {
                        "it knows no leader".into()
                    } else {
                        s.errors.join("; ")
                    },
                }),
                Err(e) => failures.push(e),
            }
        }
        let Some(leader) = leader else {
            return Err(combine(failures, &self.endpoints));
        };
        let listed;
        let members = match members {
            Some(m) => m,
            None => {
                listed = self.members().await?;
                &listed
            }
        };
        let Some(urls) = members
            .iter()
            .find(|m| m.id == leader)
            .map(|m| &m.client_urls)
            .filter(|urls| !urls.is_empty())
        else {
            return Err(EtcdError::Unhealthy {
                endpoint: self.endpoints.join(", "),
                message: format!("the leader {leader} is not in the member list with client URLs"),
            });
        };
        let urls = urls
            .iter()
            .map(|u| parse_endpoint(u))
            .collect::<Result<Vec<_>, _>>()?;
        self.status_of(&urls).await
    }

    /// How far learner `id` is behind the leader: the member, the leader's
    /// status, and the learner's status once it has started.
    pub async fn learner_progress(&self, id: MemberId) -> Result<LearnerProgress, EtcdError> {
        let members = self.members().await?;
        let Some(member) = members.iter().find(|m| m.id == id).cloned() else {
            return Err(not_a_member(&self.endpoints, id));
        };
        let leader = self.leader_status_in(Some(&members)).await?;
        let learner = if member.client_urls.is_empty() {
            None
        } else {
            let urls = member
                .client_urls
                .iter()
                .map(|u| parse_endpoint(u))
                .collect::<Result<Vec<_>, _>>()?;
            Some(self.status_of(&urls).await?)
        };
        Ok(LearnerProgress {
            member,
            leader,
            learner,
        })
    }

    /// Moves leadership to voting member `to`, asking the current leader
    /// (etcd accepts this only from the leader); returns the member that
    /// led before. Nothing to do when `to` leads already. etcd answers once
    /// the new leader has taken over.
    pub async fn move_leader(&self, to: MemberId) -> Result<MemberId, EtcdError> {
        let members = self.members().await?;
        if !members.iter().any(|m| m.id == to) {
            return Err(not_a_member(&self.endpoints, to));
        }
        let mut attempt = 1;
        loop {
            let leader = self.leader_status_in(Some(&members)).await?;
            if leader.member_id == to {
                return Ok(to);
            }
            let result = self
                .call::<serde_json::Value>(
                    std::slice::from_ref(&leader.endpoint),
                    Op::MoveLeader,
                    json!({"targetID": to.wire()}),
                    Some(to),
                )
                .await;
            match result {
                Ok(_) => {
                    tracing::info!(from = %leader.member_id, %to, "etcd leadership moved");
                    return Ok(leader.member_id);
                }
                // The leader changed between the status and the request.
                Err(e) if error::is_not_leader(&e) && attempt < MOVE_LEADER_ATTEMPTS => {
                    tracing::info!(error = %e, "etcd leader changed; asking again");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// POSTs `body` to `op`'s path on `endpoints` in turn (see the type's
    /// doc for when the next one is tried); returns the endpoint that
    /// answered and its decoded answer.
    async fn call<T: DeserializeOwned>(
        &self,
        endpoints: &[String],
        op: Op,
        body: serde_json::Value,
        member: Option<MemberId>,
    ) -> Result<(String, T), EtcdError> {
        let body = Bytes::from(body.to_string());
        let mut failures = Vec::new();
        for endpoint in endpoints {
            let span = tracing::debug_span!("etcd", %endpoint, operation = op.name());
            let attempt = self
                .post(endpoint, op, body.clone(), member)
                .instrument(span);
            match attempt.await {
                Ok(answer) => {
                    let decoded =
                        serde_json::from_slice(&answer).map_err(|e| EtcdError::BadResponse {
                            endpoint: endpoint.clone(),
                            operation: op.name(),
                            detail: format!("not the JSON expected: {e}"),
                        })?;
                    return Ok((endpoint.clone(), decoded));
                }
                Err(Failure::Stop(e)) if !(op.is_read() && is_transport(&e)) => return Err(e),
                Err(Failure::Stop(e) | Failure::Next(e)) => {
                    tracing::info!(%endpoint, operation = op.name(), error = %e, "etcd endpoint skipped");
                    failures.push(e);
                }
            }
        }
        Err(combine(failures, endpoints))
    }

    /// One request to one endpoint; the body of a 2xx answer.
    async fn post(
        &self,
        endpoint: &str,
        op: Op,
        body: Bytes,
        member: Option<MemberId>,
    ) -> Result<Bytes, Failure> {
        let url = format!("{endpoint}{}", op.path());
        let uri: Uri = url
            .parse()
            .map_err(|e| Failure::Stop(config(format!("{url} is not a URL: {e}"))))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, USER_AGENT)
            .body(Full::new(body))
            .map_err(|e| Failure::Stop(config(e.to_string())))?;
        let started = Instant::now();
        let exchange = async {
            let response = self.http.request(request).await.map_err(Broken::Send)?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(Broken::Body)?
                .to_bytes();
            Ok::<_, Broken>((status, body))
        };
        let (status, answer) = match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => {
                return Err(Failure::Stop(EtcdError::Timeout {
                    endpoint: endpoint.to_string(),
                    operation: op.name(),
                    after: self.timeout,
                }));
            }
            Ok(Err(broken)) => return Err(broken.classify(endpoint)),
            Ok(Ok(answer)) => answer,
        };
        tracing::debug!(status = status.as_u16(), elapsed = ?started.elapsed(), "etcd answered");
        if status.is_success() {
            return Ok(answer);
        }
        let e = error::from_answer(endpoint, op.name(), status.as_u16(), &answer, member);
        if error::is_learner_refusal(&e) {
            Err(Failure::Next(e))
        } else {
            Err(Failure::Stop(e))
        }
    }
}

/// Why an exchange broke before an answer was read.
enum Broken {
    Send(hyper_util::client::legacy::Error),
    Body(Box<dyn std::error::Error + Send + Sync>),
}

impl Broken {
    fn classify(self, endpoint: &str) -> Failure {
        let (connect, err): (bool, &(dyn std::error::Error + 'static)) = match &self {
            Broken::Send(e) => (e.is_connect(), e),
            Broken::Body(e) => (false, e.as_ref()),
        };
        let detail = chain(err);
        let endpoint = endpoint.to_string();
        match find_tls_error(err) {
            // Our check of the server's certificate failed: nothing was sent.
            Some(rustls::Error::InvalidCertificate(_)) => {
                Failure::Next(EtcdError::ServerCertUntrusted { endpoint, detail })
            }
            // The server ended the TLS session with an alert (with TLS 1.3 a
            // refused client certificate is only seen on the first read):
            // the request was not processed.
            Some(rustls::Error::AlertReceived(_)) => {
                Failure::Next(EtcdError::ClientCertRejected { endpoint, detail })
            }
            _ if connect => Failure::Next(EtcdError::Unreachable {
                endpoints: vec![endpoint],
                detail,
            }),
            _ => Failure::Stop(EtcdError::Unreachable {
                endpoints: vec![endpoint],
                detail: format!(
                    "{detail}; the connection broke after the request was sent, so it may have \
                     been applied"
                ),
            }),
        }
    }
}

/// A failure of the connection rather than an answer from etcd.
fn is_transport(e: &EtcdError) -> bool {
    matches!(e, EtcdError::Unreachable { .. } | EtcdError::Timeout { .. }) || e.is_tls()
}

/// The rustls error somewhere in `e`'s chain. `io::Error::source` skips
/// the error it wraps, and hyper-rustls wraps tokio-rustls' `io::Error` in
/// another, so each `io::Error` is looked into rather than past.
fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(wrapped) => Some(wrapped),
            None => err.source(),
        };
    }
    None
}

/// The error to report when no endpoint answered: a TLS failure first (it
/// will not go away by itself), else every endpoint's connection error,
/// else the first other error.
fn combine(mut failures: Vec<EtcdError>, endpoints: &[String]) -> EtcdError {
    if let Some(i) = failures.iter().position(EtcdError::is_tls) {
        return failures.swap_remove(i);
    }
    if let Some(i) = failures
        .iter()
        .position(|e| !matches!(e, EtcdError::Unreachable { .. }))
    {
        return failures.swap_remove(i);
    }
    let detail = failures
        .iter()
        .filter_map(|e| match e {
            EtcdError::Unreachable { endpoints, detail } => {
                Some(format!("{}: {detail}", endpoints.join(", ")))
            }
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("; ");
    EtcdError::Unreachable {
        endpoints: endpoints.to_vec(),
        detail: if detail.is_empty() {
            "no endpoint to try".into()
        } else {
            detail
        },
    }
}

fn config(problem: impl Into<String>) -> EtcdError {
    EtcdError::Config {
        problem: problem.into(),
    }
}

fn not_a_member(endpoints: &[String], id: MemberId) -> EtcdError {
    EtcdError::MemberNotFound {
        endpoint: endpoints.join(", "),
        member: id,
        message: "no such member in the member list".into(),
    }
}

/// `https://authority` from a client URL; anything else is refused.
fn parse_endpoint(s: &str) -> Result<String, EtcdError> {
    let bad = |why: &str| config(format!("etcd endpoint {s:?}: {why}"));
    let uri: Uri = s
        .trim()
        .parse()
        .map_err(|e| bad(&format!("not a URL: {e}")))?;
    if !uri
        .scheme_str()
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https"))
    {
        return Err(bad(
            "only https:// is supported (etcd's client port with TLS)",
        ));
    }
    let Some(authority) = uri.authority() else {
        return Err(bad("no host"));
    };
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(bad("a client URL has no path or query"));
    }
    Ok(format!("https://{authority}"))
}

fn tls_config(tls: &EtcdTls) -> Result<rustls::ClientConfig, EtcdError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| config(format!("{what}: {e}"));
    let cas = CertificateDer::pem_slice_iter(tls.ca_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("the etcd CA PEM", &e))?;
    if cas.is_empty() {
        return Err(config("the etcd CA PEM holds no certificate"));
    }
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca)
            .map_err(|e| bad("the etcd CA certificate", &e))?;
    }
    let chain = CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("the client certificate PEM", &e))?;
    if chain.is_empty() {
        return Err(config("the client certificate PEM holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes())
        .map_err(|e| bad("the client key PEM", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS versions", &e))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| bad("the client certificate and key", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalised_and_plain_http_is_refused() {
        assert_eq!(
            parse_endpoint("HTTPS://10.0.0.1:2379/").unwrap(),
            "https://10.0.0.1:2379"
        );
        assert_eq!(
            parse_endpoint("https://[::1]:2379").unwrap(),
            "https://[::1]:2379"
        );
        for bad in [
            "http://10.0.0.1:2379",
            "10.0.0.1:2379",
            "https://10.0.0.1:2379/v3",
            "https://10.0.0.1:2379/?x=1",
            "unix:///run/etcd.sock",
            "",
        ] {
            let e = parse_endpoint(bad).unwrap_err();
            assert_eq!(e.reason(), "EtcdClientConfigInvalid", "{bad}: {e}");
        }
    }

    #[test]
    fn bad_pem_is_refused_before_any_connection() {
        let tls = EtcdTls {
            ca_pem: "not PEM".into(),
            cert_pem: String::new(),
            key_pem: "SECRET KEY MATERIAL".into(),
        };
        assert!(!format!("{tls:?}").contains("SECRET"));
        let e = EtcdClient::new(
            vec!["https://127.0.0.1:2379".into()],
            tls.clone(),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("etcd CA PEM holds no certificate"),
            "{e}"
        );
        let e = EtcdClient::new(vec![], tls, Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.reason(), "EtcdClientConfigInvalid");
    }

    #[test]
    fn tls_errors_are_found_inside_nested_io_errors() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let nested = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            tls.clone(),
        ));
        assert_eq!(find_tls_error(&nested), Some(&tls));
        assert_eq!(find_tls_error(&std::io::Error::other("refused")), None);
    }

    #[test]
    fn tls_failures_win_over_connection_failures_when_combined() {
        let unreachable = |ep: &str| EtcdError::Unreachable {
            endpoints: vec![ep.into()],
            detail: "connection refused".into(),
        };
        let eps = vec!["https://a:2379".to_string(), "https://b:2379".to_string()];
        let e = combine(
            vec![unreachable("https://a:2379"), unreachable("https://b:2379")],
            &eps,
        );
        assert_eq!(
            e.to_string(),
            "no etcd endpoint could be reached (https://a:2379: connection refused; \
             https://b:2379: connection refused); check that etcd runs on https://a:2379, \
             https://b:2379 and that this host can connect to its client port"
        );
        let e = combine(
            vec![
                unreachable("https://a:2379"),
                EtcdError::ClientCertRejected {
                    endpoint: "https://b:2379".into(),
                    detail: "received fatal alert: BadCertificate".into(),
                },
            ],
            &eps,
        );
        assert_eq!(e.reason(), "EtcdClientCertRejected");
    }
}
