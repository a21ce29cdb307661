//! Downloads from a bundle's base URL, hashed while they stream to disk.
//!
//! The client is hyper 1 with hyper-util's legacy pooled client and
//! hyper-rustls, on rustls with the `ring` provider: the same stack kube
//! already builds for the operator and `bootstrap`, so downloading adds no
//! new crate to the build (reqwest would have brought a second HTTP stack
//! and its own TLS configuration). The price is a few lines that reqwest
//! would hide: status and Content-Length checks, timeouts, retries. HTTP/1.1
//! only: a static file server is all a bundle needs. The provider is named
//! explicitly rather than taken from rustls' process default, so the result
//! does not depend on which rustls features other crates enable.
//!
//! Trust for `https://`: the system's CA certificates (rustls-native-certs)
//! plus [`HttpOptions::extra_ca_files`]. There is no way to skip
//! verification; the files' sha256s are checked anyway, but the manifest
//! itself is only as trustworthy as the connection it came over unless it is
//! pinned.

use crate::error_text::chain;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::{StatusCode, Uri, header};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::digest::Sha256Digest;
use super::error::BundleError;
use super::source::HttpOptions;

const USER_AGENT: &str = concat!("kubeseed/", env!("CARGO_PKG_VERSION"));

/// A validated base URL, ending with `/`.
#[derive(Debug, Clone)]
pub(crate) struct BaseUrl {
    base: String,
    https: bool,
}

impl BaseUrl {
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.contains('#') || s.contains('?') {
            return Err("a base URL takes no query or fragment".into());
        }
        let uri: Uri = s.parse().map_err(|e| format!("not a URL: {e}"))?;
        let https = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("only http:// and https:// URLs are supported".into()),
        };
        let Some(authority) = uri.authority() else {
            return Err("the URL names no host".into());
        };
        let path = uri.path().trim_end_matches('/');
        let scheme = if https { "https" } else { "http" };
        Ok(Self {
            base: format!("{scheme}://{authority}{path}/"),
            https,
        })
    }

    /// The URL of a relative path of the bundle, each segment
    /// percent-encoded.
    pub fn join(&self, relative: &str) -> String {
        let mut url = self.base.clone();
        for (i, segment) in relative.split('/').enumerate() {
            if i > 0 {
                url.push('/');
            }
            for b in segment.bytes() {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    url.push(char::from(b));
                } else {
                    url.push_str(&format!("%{b:02X}"));
                }
            }
        }
        url
    }
}

/// What a download produced.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Downloaded {
    pub sha256: Sha256Digest,
    pub size: u64,
}

/// A cap on a download: small files of the bundle (the manifest) must not
/// let a wrong URL fill the disk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    pub bytes: u64,
    pub name: &'static str,
}

/// The pooled client of one open bundle.
pub(crate) struct Http {
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    options: HttpOptions,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Http {
    pub fn new(base: &BaseUrl, options: &HttpOptions) -> Result<Self, String> {
        let tls = tls_config(base.https, options)?;
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(options.connect_timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            client,
            options: options.clone(),
        })
    }

    /// GETs `url` into `dest` (created 0600, replaced if present), hashing
    /// as it streams; retries network trouble per [`HttpOptions::attempts`].
    /// A non-200 answer is [`BundleError::HttpStatus`], whatever the code.
    pub async fn download(
        &self,
        url: &str,
        dest: &Path,
        limit: Option<Limit>,
    ) -> Result<Downloaded, BundleError> {
        let uri: Uri = url.parse().map_err(|e| BundleError::InvalidSource {
            source_name: url.to_string(),
            problem: format!("not a URL: {e}"),
        })?;
        let attempts = self.options.attempts.max(1);
        let mut delay = self.options.retry_delay;
        let mut attempt = 1;
        loop {
            match self.attempt(url, &uri, dest, limit).await {
                Err(e) if e.is_transient() && attempt < attempts => {
                    tracing::warn!(attempt, error = %e, "download failed; retrying in {delay:?}");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn attempt(
        &self,
        url: &str,
        uri: &Uri,
        dest: &Path,
        limit: Option<Limit>,
    ) -> Result<Downloaded, BundleError> {
        let idle = self.options.idle_timeout;
        let request = hyper::Request::get(uri.clone())
            .header(header::USER_AGENT, USER_AGENT)
            .body(Empty::new())
            .map_err(|e| BundleError::InvalidSource {
                source_name: url.to_string(),
                problem: e.to_string(),
            })?;
        let response = match tokio::time::timeout(idle, self.client.request(request)).await {
            Err(_) => {
                return Err(BundleError::Timeout {
                    url: url.to_string(),
                    waiting_for: "the response headers",
                    after: idle,
                });
            }
            Ok(Err(e)) => {
                return Err(BundleError::Unreachable {
                    url: url.to_string(),
                    detail: chain(&e),
                });
            }
            Ok(Ok(response)) => response,
        };
        if response.status() != StatusCode::OK {
            return Err(BundleError::HttpStatus {
                url: url.to_string(),
                status: response.status().as_u16(),
            });
        }
        let announced = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let too_large = || BundleError::FileTooLarge {
            location: url.to_string(),
            name: limit.map(|l| l.name).unwrap_or_default(),
            limit: limit.map(|l| l.bytes).unwrap_or_default(),
        };
        if let (Some(limit), Some(n)) = (limit, announced)
            && n > limit.bytes
        {
            return Err(too_large());
        }
        let write_err = |source| BundleError::Cache {
            path: dest.to_path_buf(),
            action: "write",
            source,
        };
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(dest)
            .await
            .map_err(write_err)?;
        let mut body = response.into_body();
        let mut hasher = Sha256::new();
        let mut received = 0u64;
        let truncated = |received, detail| BundleError::Truncated {
            url: url.to_string(),
            expected: announced.map_or_else(|| "an unknown number of".into(), |n| n.to_string()),
            received,
            detail,
        };
        loop {
            let frame = match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => {
                    return Err(BundleError::Timeout {
                        url: url.to_string(),
                        waiting_for: "the body",
                        after: idle,
                    });
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => return Err(truncated(received, chain(&e))),
                Ok(Some(Ok(frame))) => frame,
            };
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            received += data.len() as u64;
            if limit.is_some_and(|l| received > l.bytes) {
                return Err(too_large());
            }
            hasher.update(&data);
            file.write_all(&data).await.map_err(write_err)?;
        }
        if let Some(n) = announced
            && received != n
        {
            return Err(truncated(received, "the body ended early".into()));
        }
        file.flush().await.map_err(write_err)?;
        file.sync_all().await.map_err(write_err)?;
        Ok(Downloaded {
            sha256: Sha256Digest::from_hasher(hasher),
            size: received,
        })
    }
}

fn tls_config(https: bool, options: &HttpOptions) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    if https {
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::debug!(error = %e, "a system CA certificate could not be loaded");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        tracing::debug!(added, ignored, "system CA certificates");
        for file in &options.extra_ca_files {
            let cannot = |e: &dyn std::fmt::Display| {
                format!("cannot use the CA certificates in {}: {e}", file.display())
            };
            let certs = CertificateDer::pem_file_iter(file)
                .map_err(|e| cannot(&e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| cannot(&e))?;
            if certs.is_empty() {
                return Err(cannot(&"no PEM certificate in it"));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| cannot(&e))?;
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised_and_joined_encoded() {
        let b = BaseUrl::parse("HTTP://127.0.0.1:8080/bundles/v1").unwrap();
        assert_eq!(
            b.join("bin/kubelet"),
            "http://127.0.0.1:8080/bundles/v1/bin/kubelet"
        );
        assert_eq!(
            b.join("charts/kubeseed/templates/a b+c.yaml"),
            "http://127.0.0.1:8080/bundles/v1/charts/kubeseed/templates/a%20b%2Bc.yaml"
        );
        let b = BaseUrl::parse("https://mirror.example/").unwrap();
        assert!(b.https);
        assert_eq!(b.join("SHA256SUMS"), "https://mirror.example/SHA256SUMS");
    }

    #[test]
    fn refuses_what_is_not_an_http_base_url() {
        for bad in [
            "ftp://h/b",
            "http:///nohost",
            "/a/path",
            "http://h/b?x=1",
            "http://h/b#f",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
