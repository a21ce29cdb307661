//! kube-apiserver's EncryptionConfiguration: Secrets encrypted at rest from
//! the first start.
//!
//! Only `secrets` are encrypted. ConfigMaps are, by the API's contract, for
//! non-confidential data; encrypting them would cost a decryption on every
//! read of some of the most-read objects (every namespace's
//! `kube-root-ca.crt`, CoreDNS's Corefile), and a lost key would then make
//! the whole control plane's configuration unreadable instead of only the
//! Secrets. Whoever keeps secrets in ConfigMaps should move them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;
use serde::Serialize;

use super::Component;
use super::error::{RenderError, Result};

const COMPONENT: Component = Component::KubeApiserver;

/// Length of every key: both providers take 32 bytes.
pub const KEY_LEN: usize = 32;

/// How Secrets are encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncryptionProvider {
    /// XSalsa20-Poly1305 (NaCl secretbox): authenticated, and the provider
    /// the Kubernetes documentation prefers among local-key ones.
    #[default]
    Secretbox,
    /// AES-CBC with PKCS#7 padding: unauthenticated; offered for
    /// compliance regimes that require AES.
    AesCbc,
}

impl EncryptionProvider {
    /// The provider's key in an EncryptionConfiguration.
    pub fn as_str(self) -> &'static str {
        match self {
            EncryptionProvider::Secretbox => "secretbox",
            EncryptionProvider::AesCbc => "aescbc",
        }
    }
}

/// One named 32-byte key. `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey {
    name: String,
    secret: [u8; KEY_LEN],
}

impl std::fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionKey")
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl EncryptionKey {
    /// A key from bytes the caller keeps (the cluster's Secret, the
    /// workstation's state directory). The name is stored with every
    /// encrypted object (`k8s:enc:secretbox:v1:<name>:`), so it must stay
    /// the same for as long as data encrypted with the key exists.
    pub fn new(name: impl Into<String>, secret: &[u8]) -> Result<Self> {
        let name = name.into();
        check_name(&name)?;
        let secret: [u8; KEY_LEN] = secret.try_into().map_err(|_| {
            RenderError::input(
                COMPONENT,
                format!("encryption key {name:?}"),
                format!("it has {} bytes; it must have {KEY_LEN}", secret.len()),
            )
        })?;
        Ok(Self { name, secret })
    }

    /// A fresh random key (at seed time, or to rotate).
    pub fn generate(name: impl Into<String>) -> Result<Self> {
        let mut secret = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut secret);
        Self::new(name, &secret)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key's bytes, for the caller to keep.
    pub fn secret(&self) -> &[u8; KEY_LEN] {
        &self.secret
    }
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(RenderError::input(
            COMPONENT,
            format!("encryption key name {name:?}"),
            "use 1 to 63 letters, digits, `-` or `_` (it is stored with every encrypted object)",
        ))
    }
}

/// Encryption at rest: the provider and its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptionConfig {
    /// The provider every key uses.
    pub provider: EncryptionProvider,
    /// The first key encrypts; the others only decrypt (rotation: put the
    /// new key first, rewrite every Secret, then drop the old one).
    pub keys: Vec<EncryptionKey>,
}

impl EncryptionConfig {
    /// The default provider with one key.
    pub fn new(key: EncryptionKey) -> Self {
        Self {
            provider: EncryptionProvider::default(),
            keys: vec![key],
        }
    }

    /// The EncryptionConfiguration document. `identity` comes last: it
    /// reads Secrets written before encryption was on and never writes.
    pub(crate) fn render(&self) -> Result<String> {
        if self.keys.is_empty() {
            return Err(RenderError::input(
                COMPONENT,
                "encryption configuration",
                "it has no key; give at least the one that encrypts",
            ));
        }
        for (i, key) in self.keys.iter().enumerate() {
            if self.keys[..i].iter().any(|k| k.name == key.name) {
                return Err(RenderError::input(
                    COMPONENT,
                    format!("encryption key name {:?}", key.name),
                    "it is used twice; every key needs its own name",
                ));
            }
        }
        let keys = self
            .keys
            .iter()
            .map(|k| Key {
                name: &k.name,
                secret: STANDARD.encode(k.secret),
            })
            .collect();
        let local = KeyProvider { keys };
        let provider = match self.provider {
            EncryptionProvider::Secretbox => Provider {
                secretbox: Some(local),
                ..Provider::default()
            },
            EncryptionProvider::AesCbc => Provider {
                aescbc: Some(local),
                ..Provider::default()
            },
        };
        let doc = Document {
            api_version: "apiserver.config.k8s.io/v1",
            kind: "EncryptionConfiguration",
            resources: vec![Resources {
                resources: vec!["secrets"],
                providers: vec![
                    provider,
                    Provider {
                        identity: Some(Empty {}),
                        ..Provider::default()
                    },
                ],
            }],
        };
        super::yaml_file(COMPONENT, "EncryptionConfiguration", &doc)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    api_version: &'static str,
    kind: &'static str,
    resources: Vec<Resources<'a>>,
}

#[derive(Serialize)]
struct Resources<'a> {
    resources: Vec<&'static str>,
    providers: Vec<Provider<'a>>,
}

#[derive(Serialize, Default)]
struct Provider<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    secretbox: Option<KeyProvider<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aescbc: Option<KeyProvider<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<Empty>,
}

#[derive(Serialize)]
struct KeyProvider<'a> {
    keys: Vec<Key<'a>>,
}

#[derive(Serialize)]
struct Key<'a> {
    name: &'a str,
    secret: String,
}

#[derive(Serialize)]
struct Empty {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_32_bytes_and_never_shown() {
        assert!(EncryptionKey::new("k", &[0u8; 16]).is_err());
        assert!(EncryptionKey::new("bad name", &[0u8; 32]).is_err());
        let key = EncryptionKey::new("key1", &[7u8; 32]).unwrap();
        assert!(!format!("{key:?}").contains("7"), "{key:?}");
        let a = EncryptionKey::generate("a").unwrap();
        let b = EncryptionKey::generate("a").unwrap();
        assert_ne!(a.secret(), b.secret());
    }

    #[test]
    fn identity_comes_last_and_only_secrets_are_encrypted() {
        let mut config = EncryptionConfig::new(EncryptionKey::new("new", &[1u8; 32]).unwrap());
        config
            .keys
            .push(EncryptionKey::new("old", &[2u8; 32]).unwrap());
        config.provider = EncryptionProvider::AesCbc;
        let text = config.render().unwrap();
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        let res = &doc["resources"][0];
        assert_eq!(res["resources"].as_sequence().unwrap().len(), 1);
        assert_eq!(res["resources"][0].as_str(), Some("secrets"));
        assert_eq!(
            res["providers"][0]["aescbc"]["keys"][0]["name"].as_str(),
            Some("new")
        );
        assert_eq!(
            res["providers"][0]["aescbc"]["keys"][1]["secret"].as_str(),
            Some(STANDARD.encode([2u8; 32]).as_str())
        );
        assert!(res["providers"][1]["identity"].is_mapping(), "{text}");
        assert_eq!(res["providers"].as_sequence().unwrap().len(), 2);
    }

    #[test]
    fn duplicate_and_missing_keys_are_refused() {
        let key = EncryptionKey::new("k", &[1u8; 32]).unwrap();
        let mut config = EncryptionConfig::new(key.clone());
        config.keys.push(key);
        assert!(config.render().unwrap_err().to_string().contains("twice"));
        config.keys.clear();
        assert!(config.render().unwrap_err().to_string().contains("no key"));
    }
}
