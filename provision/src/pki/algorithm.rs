//! Which kind of key every certificate gets.

use std::fmt;
use std::str::FromStr;

use rcgen::{KeyPair, RsaKeySize};

use super::error::{PkiError, Result, rcgen_err};

/// The key algorithm of generated keys (CAs, leaves, service-account key).
///
/// ECDSA P-256 is the default: kubeadm's `EncryptionAlgorithm: ECDSA-P256`
/// option, quick to generate and accepted everywhere the cluster uses a key
/// (Go TLS, etcd, ES256 service-account tokens). RSA is there for sites whose
/// policy or tooling still expects it (the seeds' cfssl used RSA 2048).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KeyAlgorithm {
    /// ECDSA on NIST P-256 with SHA-256 signatures.
    #[default]
    EcdsaP256,
    /// RSA 2048-bit, PKCS#1 v1.5 SHA-256 signatures.
    Rsa2048,
    /// RSA 3072-bit.
    Rsa3072,
    /// RSA 4096-bit.
    Rsa4096,
}

impl KeyAlgorithm {
    /// Every algorithm, in the order they are documented.
    pub const ALL: [KeyAlgorithm; 4] = [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::Rsa2048,
        KeyAlgorithm::Rsa3072,
        KeyAlgorithm::Rsa4096,
    ];

    /// The name used on the command line and in resources (`ecdsa-p256`, `rsa-2048`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
        }
    }

    /// Whether keys of this kind are RSA keys.
    pub fn is_rsa(self) -> bool {
        !matches!(self, Self::EcdsaP256)
    }

    /// Generates a fresh private key.
    pub fn generate(self) -> Result<KeyPair> {
        let doing = format!("generate a {} key", self.as_str());
        let size = match self {
            Self::EcdsaP256 => {
                return KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                    .map_err(rcgen_err(doing));
            }
            Self::Rsa2048 => RsaKeySize::_2048,
            Self::Rsa3072 => RsaKeySize::_3072,
            Self::Rsa4096 => RsaKeySize::_4096,
        };
        KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size).map_err(rcgen_err(doing))
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = PkiError;

    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        // kubeadm spells them ECDSA-P256 / RSA-2048; accept that too.
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == wanted)
            .ok_or_else(|| PkiError::UnknownAlgorithm(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_kubeadm_spelling_is_accepted() {
        for alg in KeyAlgorithm::ALL {
            assert_eq!(alg.as_str().parse::<KeyAlgorithm>().unwrap(), alg);
        }
        assert_eq!(
            "RSA-3072".parse::<KeyAlgorithm>().unwrap(),
            KeyAlgorithm::Rsa3072
        );
        assert_eq!(
            "ECDSA-P256".parse::<KeyAlgorithm>().unwrap(),
            KeyAlgorithm::EcdsaP256
        );
    }

    #[test]
    fn unknown_name_lists_the_choices() {
        let err = "dsa".parse::<KeyAlgorithm>().unwrap_err().to_string();
        assert!(err.contains("\"dsa\"") && err.contains("rsa-4096"), "{err}");
    }

    #[test]
    fn generated_keys_have_the_requested_kind() {
        let ec = KeyAlgorithm::EcdsaP256.generate().unwrap();
        assert_eq!(ec.algorithm(), &rcgen::PKCS_ECDSA_P256_SHA256);
        let rsa = KeyAlgorithm::Rsa2048.generate().unwrap();
        assert_eq!(rsa.algorithm(), &rcgen::PKCS_RSA_SHA256);
        // A 2048-bit modulus: the PKCS#1 public key is a little over 256 bytes.
        assert!((266..300).contains(&rsa.public_key_raw().len()));
    }
}
