//! Is a kube-apiserver ready? `GET /readyz` over TLS, its certificate
//! verified against the cluster CA under the name every apiserver
//! certificate carries (`kubernetes`), whatever address was dialled: a
//! member's own address, or a VIP its certificate does not name yet.
//!
//! `/readyz` is readable without credentials (the `system:public-info-viewer`
//! role), so the probe sends none. Same HTTP stack as the etcd client.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, Uri};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::error_text::chain;

/// The name every apiserver serving certificate carries.
pub const APISERVER_NAME: &str = "kubernetes";

/// Why an apiserver is not (known to be) ready.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The CA PEM could not be used.
    #[error("the cluster CA: {0}")]
    Ca(String),
    /// Nothing answered in time, or the connection failed.
    #[error("{target}: {reason}")]
    Unreachable {
        /// `address:port`.
        target: String,
        /// What failed.
        reason: String,
    },
    /// It answered, but not ready.
    #[error("{target}: /readyz answered {status}: {body}")]
    NotReady {
        /// `address:port`.
        target: String,
        /// The HTTP status.
        status: u16,
        /// The start of what it said.
        body: String,
    },
}

/// A reusable prober (one connection pool).
#[derive(Clone)]
pub struct ApiProbe {
    http: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for ApiProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiProbe")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl ApiProbe {
    /// A prober trusting only `ca_pem`, giving each probe `timeout`.
    pub fn new(ca_pem: &str, timeout: Duration) -> Result<Self, ProbeError> {
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let ca = ca.map_err(|e| ProbeError::Ca(e.to_string()))?;
            roots.add(ca).map_err(|e| ProbeError::Ca(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(ProbeError::Ca("no certificate in the PEM".into()));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ProbeError::Ca(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(APISERVER_NAME)
            .map_err(|e| ProbeError::Ca(e.to_string()))?
            .to_owned();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .with_server_name_resolver(FixedServerNameResolver::new(name))
            .enable_http1()
            .wrap_connector(tcp);
        // No pooling: a probe must see the apiserver as it is now, not
        // through a connection a proxy kept to a backend that since went.
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(0)
            .build(connector);
        Ok(ApiProbe { http, timeout })
    }

    /// `Ok` when the apiserver at `address:port` answers `/readyz` with 200.
    pub async fn readyz(&self, address: IpAddr, port: u16) -> Result<(), ProbeError> {
        let target = SocketAddr::new(address, port).to_string();
        let unreachable = |reason: String| ProbeError::Unreachable {
            target: target.clone(),
            reason,
        };
        let uri: Uri = format!("https://{target}/readyz")
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| unreachable(e.to_string()))?;
        let request = Request::get(uri)
            .header(hyper::header::USER_AGENT, "kubeseed-probe")
            .body(Empty::new())
            .map_err(|e| unreachable(e.to_string()))?;
        let answer = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| unreachable(chain(&e)))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), 64 << 10)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, ProbeError>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, answer)
            .await
            .map_err(|_| unreachable(format!("no answer within {:?}", self.timeout)))??;
        if status == 200 {
            return Ok(());
        }
        Err(ProbeError::NotReady {
            target,
            status,
            body: String::from_utf8_lossy(&body).chars().take(300).collect(),
        })
    }
}
