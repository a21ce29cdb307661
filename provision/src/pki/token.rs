//! Bootstrap tokens: what a TLS-bootstrapped kubelet first authenticates with.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rand::Rng as _;
use time::OffsetDateTime;

use super::error::{PkiError, Result};
use super::validity::rfc3339;

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Group kubeadm gives node bootstrap tokens; its RBAC lets a kubelet create
/// and auto-approve its first CSR.
pub const NODE_BOOTSTRAP_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// A bootstrap token `<id>.<secret>` (6 and 16 characters of `[a-z0-9]`).
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    id: String,
    secret: String,
}

impl fmt::Debug for BootstrapToken {
    // The secret half stays out of logs; the id is public (it names the Secret).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BootstrapToken({}.<redacted>)", self.id)
    }
}

impl BootstrapToken {
    /// A fresh random token.
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut pick = |n: usize| -> String {
            (0..n)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect()
        };
        Self {
            id: pick(6),
            secret: pick(16),
        }
    }

    /// The public half; the Secret is `bootstrap-token-<id>`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Data of the `bootstrap.kubernetes.io/token` Secret (in `kube-system`,
    /// named `bootstrap-token-<id>`) that makes the API server accept this
    /// token until `expires`, as user `system:bootstrap:<id>` in
    /// [`NODE_BOOTSTRAP_GROUP`].
    pub fn secret_data(&self, expires: OffsetDateTime) -> BTreeMap<String, Vec<u8>> {
        [
            ("token-id", self.id.clone()),
            ("token-secret", self.secret.clone()),
            ("expiration", rfc3339(expires)),
            ("usage-bootstrap-authentication", "true".to_owned()),
            ("usage-bootstrap-signing", "true".to_owned()),
            ("auth-extra-groups", NODE_BOOTSTRAP_GROUP.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into_bytes()))
        .collect()
    }
}

impl fmt::Display for BootstrapToken {
    /// The whole token, secret included: only for kubeconfigs and Secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.id, self.secret)
    }
}

impl FromStr for BootstrapToken {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self> {
        let (id, secret) = s
            .split_once('.')
            .ok_or_else(|| PkiError::InvalidBootstrapToken("it has no '.'".into()))?;
        let ok = |part: &str, len: usize| {
            part.len() == len && part.bytes().all(|b| ALPHABET.contains(&b))
        };
        if !ok(id, 6) {
            return Err(PkiError::InvalidBootstrapToken(format!(
                "the id {id:?} is not 6 characters of [a-z0-9]"
            )));
        }
        if !ok(secret, 16) {
            return Err(PkiError::InvalidBootstrapToken(
                "the secret part is not 16 characters of [a-z0-9]".into(),
            ));
        }
        Ok(Self {
            id: id.to_owned(),
            secret: secret.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_differ() {
        let a = BootstrapToken::generate();
        let b = BootstrapToken::generate();
        assert_eq!(a.to_string().parse::<BootstrapToken>().unwrap(), a);
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(&a.secret));
    }

    #[test]
    fn malformed_tokens_are_explained() {
        for (bad, why) in [
            ("abcdef0123456789abcdef", "no '.'"),
            ("ABCDEF.0123456789abcdef", "id"),
            ("abcdef.short", "secret part"),
        ] {
            let err = bad.parse::<BootstrapToken>().unwrap_err().to_string();
            assert!(
                err.contains(why) && err.contains("abcdef.0123456789abcdef"),
                "{err}"
            );
            assert!(!err.contains("0123456789abcdef\""), "secret echoed: {err}");
        }
    }

    #[test]
    fn secret_data_has_the_bootstrap_fields() {
        let t: BootstrapToken = "abcdef.0123456789abcdef".parse().unwrap();
        let data = t.secret_data(OffsetDateTime::from_unix_timestamp(0).unwrap());
        assert_eq!(data["token-id"], b"abcdef");
        assert_eq!(data["expiration"], b"1970-01-01T00:00:00Z");
        assert_eq!(data["auth-extra-groups"], NODE_BOOTSTRAP_GROUP.as_bytes());
    }
}
