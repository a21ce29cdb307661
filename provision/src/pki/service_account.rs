//! The key pair that signs and verifies service-account tokens.

use rcgen::KeyPair;
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::algorithm::KeyAlgorithm;
use super::error::{PkiError, Result};

/// `sa.key` / `sa.pub`: kube-apiserver signs tokens with the private key
/// (`--service-account-signing-key-file`) and every apiserver and the
/// controller-manager verify with the public one
/// (`--service-account-key-file`). Not a CA, but just as shared: every
/// control-plane member must hold the same pair.
#[derive(Clone, PartialEq, Eq)]
pub struct ServiceAccountKey {
    private_pem: String,
    public_pem: String,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("public_pem", &self.public_pem)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    /// A fresh key pair (ES256 tokens for ECDSA, RS256 for RSA).
    pub fn generate(algorithm: KeyAlgorithm) -> Result<Self> {
        let key = algorithm.generate()?;
        Ok(Self {
            private_pem: key.serialize_pem(),
            public_pem: key.public_key_pem(),
        })
    }

    /// Loads a stored pair, refusing a public key that is not the private key's.
    pub fn from_pem(private_pem: &str, public_pem: &str) -> Result<Self> {
        let key = KeyPair::from_pem(private_pem).map_err(|e| PkiError::BadKey {
            what: "service-account key (sa.key)".into(),
            reason: e.to_string(),
        })?;
        let bad_pub = |reason: String| PkiError::BadKey {
            what: "service-account public key (sa.pub)".into(),
            reason,
        };
        let (_, block) = x509_parser::pem::parse_x509_pem(public_pem.as_bytes())
            .map_err(|e| bad_pub(format!("not PEM ({e})")))?;
        if block.label != "PUBLIC KEY" {
            return Err(bad_pub(format!(
                "the PEM block is a `{}`, expected `PUBLIC KEY`",
                block.label
            )));
        }
        let (_, spki) = SubjectPublicKeyInfo::from_der(&block.contents)
            .map_err(|e| bad_pub(format!("not a SubjectPublicKeyInfo ({e})")))?;
        if spki.subject_public_key.data.as_ref() != key.public_key_raw() {
            return Err(PkiError::KeyMismatch {
                what: "the service-account key pair (sa.key/sa.pub)".into(),
            });
        }
        Ok(Self {
            private_pem: private_pem.to_owned(),
            public_pem: public_pem.to_owned(),
        })
    }

    /// The private key (PEM), for `sa.key`.
    pub fn private_pem(&self) -> &str {
        &self.private_pem
    }

    /// The public key (PEM `PUBLIC KEY`), for `sa.pub`.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_pair_loads_and_mismatch_is_refused() {
        let a = ServiceAccountKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let b = ServiceAccountKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        assert_eq!(
            ServiceAccountKey::from_pem(a.private_pem(), a.public_pem()).unwrap(),
            a
        );
        let err = ServiceAccountKey::from_pem(a.private_pem(), b.public_pem())
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match"), "{err}");
        assert!(!format!("{a:?}").contains("PRIVATE"));
    }
}
