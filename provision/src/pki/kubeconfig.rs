//! Kubeconfig files with embedded credentials (`admin.conf` and friends).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;

use super::error::{PkiError, Result};
use super::leaf::IssuedCert;
use super::token::BootstrapToken;

/// How the kubeconfig's user authenticates.
#[derive(Clone, Copy)]
pub enum Credentials<'a> {
    /// A client certificate and key.
    ClientCert(&'a IssuedCert),
    /// A kubelet bootstrap token.
    BootstrapToken(&'a BootstrapToken),
    /// A certificate and key in files on the host, such as the kubelet's
    /// rotated `kubelet-client-current.pem` (certificate and key in one
    /// file) after TLS bootstrapping.
    Files {
        /// Path of the certificate.
        cert: &'a str,
        /// Path of the key.
        key: &'a str,
    },
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClientCert(_) => f.write_str("ClientCert(<redacted>)"),
            Self::BootstrapToken(t) => write!(f, "BootstrapToken({})", t.id()),
            Self::Files { cert, key } => write!(f, "Files({cert}, {key})"),
        }
    }
}

/// One kubeconfig: a cluster, a user and the context joining them.
#[derive(Debug, Clone, Copy)]
pub struct KubeconfigSpec<'a> {
    /// Cluster name (kubeadm: `kubernetes`).
    pub cluster_name: &'a str,
    /// `https://host:port` of the API server.
    pub server: &'a str,
    /// The cluster CA certificate (PEM) that signs the serving certificate.
    pub ca_pem: &'a str,
    /// User name in the file (kubeadm uses the certificate's CN).
    pub user_name: &'a str,
    /// The user's credentials.
    pub credentials: Credentials<'a>,
}

#[derive(Debug, Serialize)]
struct Cluster {
    #[serde(rename = "certificate-authority-data")]
    ca_data: String,
    server: String,
}

#[derive(Debug, Serialize)]
struct Context {
    cluster: String,
    user: String,
}

#[derive(Debug, Default, Serialize)]
struct User {
    #[serde(
        rename = "client-certificate-data",
        skip_serializing_if = "Option::is_none"
    )]
    cert_data: Option<String>,
    #[serde(rename = "client-key-data", skip_serializing_if = "Option::is_none")]
    key_data: Option<String>,
    #[serde(rename = "client-certificate", skip_serializing_if = "Option::is_none")]
    cert_file: Option<String>,
    #[serde(rename = "client-key", skip_serializing_if = "Option::is_none")]
    key_file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

/// Renders the kubeconfig as YAML.
pub fn render(spec: &KubeconfigSpec<'_>) -> Result<String> {
    let context = format!("{}@{}", spec.user_name, spec.cluster_name);
    let user = match spec.credentials {
        Credentials::ClientCert(issued) => User {
            cert_data: Some(STANDARD.encode(&issued.cert_pem)),
            key_data: Some(STANDARD.encode(&issued.key_pem)),
            ..User::default()
        },
        Credentials::BootstrapToken(token) => User {
            token: Some(token.to_string()),
            ..User::default()
        },
        Credentials::Files { cert, key } => User {
            cert_file: Some(cert.to_owned()),
            key_file: Some(key.to_owned()),
            ..User::default()
        },
    };
    let doc = serde_yaml::Value::Mapping(
        [
            ("apiVersion", serde_yaml::Value::from("v1")),
            ("kind", "Config".into()),
            (
                "clusters",
                named(
                    spec.cluster_name,
                    "cluster",
                    &Cluster {
                        ca_data: STANDARD.encode(spec.ca_pem),
                        server: spec.server.to_owned(),
                    },
                )?,
            ),
            (
                "contexts",
                named(
                    &context,
                    "context",
                    &Context {
                        cluster: spec.cluster_name.to_owned(),
                        user: spec.user_name.to_owned(),
                    },
                )?,
            ),
            ("current-context", context.as_str().into()),
            ("users", named(spec.user_name, "user", &user)?),
        ]
        .into_iter()
        .map(|(k, v)| (serde_yaml::Value::from(k), v))
        .collect(),
    );
    serde_yaml::to_string(&doc).map_err(|e| PkiError::Kubeconfig {
        what: context,
        reason: e.to_string(),
    })
}

// kubeconfig lists are `[{name, <kind>: {...}}]`; built by hand because the
// inner key differs per list.
fn named(name: &str, kind: &str, inner: &impl Serialize) -> Result<serde_yaml::Value> {
    let inner = serde_yaml::to_value(inner).map_err(|e| PkiError::Kubeconfig {
        what: name.to_owned(),
        reason: e.to_string(),
    })?;
    let mut entry = serde_yaml::Mapping::new();
    entry.insert("name".into(), name.into());
    entry.insert(kind.into(), inner);
    Ok(serde_yaml::Value::Sequence(vec![
        serde_yaml::Value::Mapping(entry),
    ]))
}

/// The client certificate (PEM) embedded in a kubeconfig, if its first user has one.
pub fn client_certificate(what: &str, kubeconfig_yaml: &str) -> Result<Option<String>> {
    let bad = |reason: String| PkiError::Kubeconfig {
        what: what.to_owned(),
        reason,
    };
    let doc: serde_yaml::Value =
        serde_yaml::from_str(kubeconfig_yaml).map_err(|e| bad(format!("not YAML: {e}")))?;
    let Some(data) = doc
        .get("users")
        .and_then(|u| u.get(0))
        .and_then(|u| u.get("user"))
        .and_then(|u| u.get("client-certificate-data"))
        .and_then(|d| d.as_str())
    else {
        return Ok(None);
    };
    let pem = STANDARD
        .decode(data)
        .map_err(|e| bad(format!("client-certificate-data is not base64: {e}")))?;
    String::from_utf8(pem)
        .map(Some)
        .map_err(|_| bad("client-certificate-data is not PEM text".into()))
}

/// The client key (PEM) and the CA data (PEM) embedded in a kubeconfig, if
/// its first user and cluster carry them.
pub(crate) fn key_and_ca(
    what: &str,
    kubeconfig_yaml: &str,
) -> Result<(Option<String>, Option<String>)> {
    let bad = |reason: String| PkiError::Kubeconfig {
        what: what.to_owned(),
        reason,
    };
    let doc: serde_yaml::Value =
        serde_yaml::from_str(kubeconfig_yaml).map_err(|e| bad(format!("not YAML: {e}")))?;
    let decode = |v: Option<&serde_yaml::Value>, field: &str| -> Result<Option<String>> {
        let Some(data) = v.and_then(|d| d.as_str()) else {
            return Ok(None);
        };
        let bytes = STANDARD
            .decode(data)
            .map_err(|e| bad(format!("{field} is not base64: {e}")))?;
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| bad(format!("{field} is not PEM text")))
    };
    let key = decode(
        doc.get("users")
            .and_then(|u| u.get(0))
            .and_then(|u| u.get("user"))
            .and_then(|u| u.get("client-key-data")),
        "client-key-data",
    )?;
    let ca = decode(
        doc.get("clusters")
            .and_then(|c| c.get(0))
            .and_then(|c| c.get("cluster"))
            .and_then(|c| c.get("certificate-authority-data")),
        "certificate-authority-data",
    )?;
    Ok((key, ca))
}

/// The names and server of a kubeconfig kubeseed wrote (for re-rendering on renewal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parts {
    pub cluster_name: String,
    pub server: String,
    pub user_name: String,
}

pub(crate) fn parts(what: &str, kubeconfig_yaml: &str) -> Result<Parts> {
    let bad = |reason: String| PkiError::Kubeconfig {
        what: what.to_owned(),
        reason,
    };
    let doc: serde_yaml::Value =
        serde_yaml::from_str(kubeconfig_yaml).map_err(|e| bad(format!("not YAML: {e}")))?;
    let text = |v: Option<&serde_yaml::Value>, field: &str| {
        v.and_then(|v| v.as_str())
            .map(str::to_owned)
            .ok_or_else(|| bad(format!("has no {field}")))
    };
    let cluster = doc.get("clusters").and_then(|c| c.get(0));
    Ok(Parts {
        cluster_name: text(cluster.and_then(|c| c.get("name")), "clusters[0].name")?,
        server: text(
            cluster
                .and_then(|c| c.get("cluster"))
                .and_then(|c| c.get("server")),
            "clusters[0].cluster.server",
        )?,
        user_name: text(
            doc.get("users")
                .and_then(|u| u.get(0))
                .and_then(|u| u.get("name")),
            "users[0].name",
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued() -> IssuedCert {
        IssuedCert {
            cert_pem: "CERT".into(),
            key_pem: "KEY".into(),
        }
    }

    #[test]
    fn layout_is_kubeadms() {
        let issued = issued();
        let yaml = render(&KubeconfigSpec {
            cluster_name: "kubernetes",
            server: "https://10.0.0.100:6443",
            ca_pem: "CA",
            user_name: "kubernetes-admin",
            credentials: Credentials::ClientCert(&issued),
        })
        .unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(
            doc["current-context"].as_str(),
            Some("kubernetes-admin@kubernetes")
        );
        assert_eq!(doc["clusters"][0]["name"].as_str(), Some("kubernetes"));
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"].as_str(),
            Some("https://10.0.0.100:6443")
        );
        assert_eq!(
            doc["contexts"][0]["context"]["user"].as_str(),
            Some("kubernetes-admin")
        );
        assert_eq!(
            doc["users"][0]["user"]["client-key-data"].as_str(),
            Some(STANDARD.encode("KEY").as_str())
        );
        assert_eq!(
            client_certificate("admin.conf", &yaml).unwrap().as_deref(),
            Some("CERT")
        );
        let parts = parts("admin.conf", &yaml).unwrap();
        assert_eq!(parts.server, "https://10.0.0.100:6443");
        assert_eq!(parts.user_name, "kubernetes-admin");
        assert_eq!(parts.cluster_name, "kubernetes");
    }

    #[test]
    fn token_user_carries_only_the_token() {
        let token: BootstrapToken = "abcdef.0123456789abcdef".parse().unwrap();
        let yaml = render(&KubeconfigSpec {
            cluster_name: "kubernetes",
            server: "https://10.0.0.100:6443",
            ca_pem: "CA",
            user_name: "tls-bootstrap-token-user",
            credentials: Credentials::BootstrapToken(&token),
        })
        .unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        let user = doc["users"][0]["user"].as_mapping().unwrap();
        assert_eq!(user.len(), 1);
        assert_eq!(user["token"].as_str(), Some("abcdef.0123456789abcdef"));
        assert_eq!(client_certificate("bootstrap", &yaml).unwrap(), None);
    }
}
