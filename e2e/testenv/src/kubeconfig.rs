//! Kubeconfig documents for the test control plane.
//!
//! Written as JSON (a subset of YAML that kubectl, helm and kube-rs all read)
//! with the certificates embedded, so a kubeconfig stays valid when copied
//! out of the temporary directory.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// The credentials a kubeconfig's single user carries.
#[derive(Clone, Copy)]
pub enum Credentials<'a> {
    /// A client certificate and its key, both PEM.
    ClientCert {
        /// Certificate PEM.
        cert_pem: &'a str,
        /// Key PEM.
        key_pem: &'a str,
    },
    /// A bearer token (e.g. a ServiceAccount token).
    Token(&'a str),
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ClientCert { .. } => f.write_str("ClientCert(<redacted>)"),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// A kubeconfig with one cluster, one user and one context, all named `name`.
pub fn render(name: &str, server: &str, ca_pem: &str, creds: Credentials<'_>) -> Value {
    let user = match creds {
        Credentials::ClientCert { cert_pem, key_pem } => json!({
            "client-certificate-data": STANDARD.encode(cert_pem),
            "client-key-data": STANDARD.encode(key_pem),
        }),
        Credentials::Token(token) => json!({ "token": token }),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": name,
            "cluster": {
                "server": server,
                "certificate-authority-data": STANDARD.encode(ca_pem),
            },
        }],
        "users": [{ "name": name, "user": user }],
        "contexts": [{ "name": name, "context": { "cluster": name, "user": name } }],
        "current-context": name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_rs_reads_what_we_write() {
        let doc = render(
            "testenv",
            "https://127.0.0.1:6443",
            "CA",
            Credentials::ClientCert {
                cert_pem: "CERT",
                key_pem: "KEY",
            },
        );
        let kc: kube::config::Kubeconfig = serde_json::from_value(doc).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some("testenv"));
        let cluster = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:6443"));
        assert_eq!(
            cluster.certificate_authority_data.as_deref(),
            Some(STANDARD.encode("CA").as_str())
        );
        let user = kc.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(
            user.client_certificate_data.as_deref(),
            Some(STANDARD.encode("CERT").as_str())
        );
    }

    #[test]
    fn token_user_has_only_the_token() {
        let doc = render("sa", "https://127.0.0.1:1", "CA", Credentials::Token("t0k"));
        assert_eq!(doc["users"][0]["user"], json!({ "token": "t0k" }));
        assert_eq!(
            format!("{:?}", Credentials::Token("t0k")),
            "Token(<redacted>)"
        );
    }
}
