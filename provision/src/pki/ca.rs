//! Certificate authorities: made fresh, or loaded back and checked before use.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;

use super::algorithm::KeyAlgorithm;
use super::error::{PkiError, Result, rcgen_err};
use super::inspect::{self, CertificateInfo};
use super::leaf::{self, IssuedCert, LeafSpec};
use super::validity::{Validity, rfc3339};

/// A CA that can sign leaves: its certificate, its key and what was read from them.
pub struct CertificateAuthority {
    label: String,
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
    info: CertificateInfo,
}

impl std::fmt::Debug for CertificateAuthority {
    // The private key stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("label", &self.label)
            .field("subject", &self.info.subject)
            .field("not_after", &rfc3339(self.info.not_after))
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Makes a new self-signed CA named `common_name`. `label` names it in
    /// messages ("cluster CA", "etcd CA", ...).
    pub fn generate(
        label: &str,
        common_name: &str,
        algorithm: KeyAlgorithm,
        validity: &Validity,
    ) -> Result<Self> {
        validity.check()?;
        let key = algorithm.generate()?;
        let (not_before, not_after) = validity.window(OffsetDateTime::now_utc(), validity.ca);
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = leaf::key_usages(algorithm.is_rsa(), true);
        params.serial_number = Some(leaf::random_serial());
        params.not_before = not_before;
        params.not_after = not_after;
        let cert = params
            .self_signed(&key)
            .map_err(rcgen_err(format!("self-sign the {label}")))?;
        let cert_pem = cert.pem();
        let info = inspect::inspect_pem(label, &cert_pem)?;
        let key_pem = key.serialize_pem();
        Ok(Self {
            label: label.to_owned(),
            cert_pem,
            key_pem,
            issuer: Issuer::new(params, key),
            info,
        })
    }

    /// Loads a CA from its certificate and key (PEM), refusing one that is not
    /// a CA, is outside its validity period now, or whose key does not match.
    pub fn from_pem(label: &str, cert_pem: &str, key_pem: &str) -> Result<Self> {
        Self::from_pem_at(label, cert_pem, key_pem, OffsetDateTime::now_utc())
    }

    /// [`Self::from_pem`], judging validity at `now`.
    pub fn from_pem_at(
        label: &str,
        cert_pem: &str,
        key_pem: &str,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let der = inspect::pem_to_der(label, cert_pem)?;
        let cert = inspect::parse_der(label, &der)?;
        let info = CertificateInfo::from_x509(&cert);
        let can_sign = cert
            .key_usage()
            .ok()
            .flatten()
            .is_some_and(|ku| ku.value.key_cert_sign());
        if !cert.is_ca() || !can_sign {
            return Err(PkiError::NotCa {
                what: label.to_owned(),
            });
        }
        if now > info.not_after {
            return Err(PkiError::CaExpired {
                what: label.to_owned(),
                not_after: rfc3339(info.not_after),
            });
        }
        if now < info.not_before {
            return Err(PkiError::CaNotYetValid {
                what: label.to_owned(),
                not_before: rfc3339(info.not_before),
            });
        }
        let key = KeyPair::from_pem(key_pem).map_err(|e| PkiError::BadKey {
            what: label.to_owned(),
            reason: e.to_string(),
        })?;
        if key.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
            return Err(PkiError::KeyMismatch {
                what: label.to_owned(),
            });
        }
        let issuer = Issuer::from_ca_cert_der(&der.clone().into(), key)
            .map_err(rcgen_err(format!("use the {label} as an issuer")))?;
        Ok(Self {
            label: label.to_owned(),
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
            issuer,
            info,
        })
    }

    /// What this CA is called in messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The CA certificate (PEM): what everyone trusts.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key (PEM). Keep it in a Secret or the owner-only state directory.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Subject, validity and so on of the CA certificate.
    pub fn info(&self) -> &CertificateInfo {
        &self.info
    }

    /// Signs a new leaf with a fresh `algorithm` key.
    pub fn issue(
        &self,
        spec: &LeafSpec,
        algorithm: KeyAlgorithm,
        validity: &Validity,
    ) -> Result<IssuedCert> {
        self.issue_at(spec, algorithm, validity, OffsetDateTime::now_utc())
    }

    /// [`Self::issue`] as if signed at `now`.
    pub fn issue_at(
        &self,
        spec: &LeafSpec,
        algorithm: KeyAlgorithm,
        validity: &Validity,
        now: OffsetDateTime,
    ) -> Result<IssuedCert> {
        validity.check()?;
        let key = algorithm.generate()?;
        let (not_before, mut not_after) = validity.window(now, validity.leaf);
        if not_after > self.info.not_after {
            // A leaf outliving its CA would fail verification at the CA's end
            // anyway; cap it so the expiry kubeseed reports is the real one.
            tracing::warn!(
                ca = %self.label,
                leaf = %spec.common_name,
                ca_not_after = %rfc3339(self.info.not_after),
                "leaf lifetime capped at the CA's expiry; rotate the CA soon"
            );
            not_after = self.info.not_after;
        }
        let params = spec.params(not_before, not_after, algorithm.is_rsa())?;
        leaf::sign(&params, &key, &self.issuer, &spec.common_name)
    }

    /// Whether `cert` carries this CA's signature.
    pub fn signed(&self, cert: &X509Certificate<'_>) -> bool {
        let Ok(ca_der) = inspect::pem_to_der(&self.label, &self.cert_pem) else {
            return false;
        };
        let Ok(ca) = inspect::parse_der(&self.label, &ca_der) else {
            return false;
        };
        cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok()
    }

    /// Re-issues an existing leaf of this CA: same subject, names and purpose,
    /// a fresh key of `algorithm`, a new serial and a new validity period.
    pub fn renew(
        &self,
        what: &str,
        cert_pem: &str,
        algorithm: KeyAlgorithm,
        validity: &Validity,
    ) -> Result<IssuedCert> {
        let der = inspect::pem_to_der(what, cert_pem)?;
        let cert = inspect::parse_der(what, &der)?;
        if !self.signed(&cert) {
            return Err(PkiError::NotIssuedBy {
                what: what.to_owned(),
                ca: format!("the {} ({})", self.label, self.info.subject),
                issuer: cert.issuer().to_string(),
            });
        }
        let spec = inspect::leaf_spec_of(what, &cert)?;
        self.issue(&spec, algorithm, validity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn ca() -> CertificateAuthority {
        CertificateAuthority::generate(
            "cluster CA",
            "kubernetes",
            KeyAlgorithm::EcdsaP256,
            &Validity::default(),
        )
        .unwrap()
    }

    #[test]
    fn reloaded_ca_keeps_its_identity() {
        let ca = ca();
        let back =
            CertificateAuthority::from_pem("cluster CA", ca.cert_pem(), ca.key_pem()).unwrap();
        assert_eq!(back.info().subject, ca.info().subject);
        assert_eq!(back.info().not_after, ca.info().not_after);
        assert!(format!("{back:?}").contains("cluster CA"));
        assert!(!format!("{back:?}").contains("PRIVATE"));
    }

    #[test]
    fn expired_and_future_cas_are_refused() {
        let ca = ca();
        let later = OffsetDateTime::now_utc() + Duration::days(3651);
        let err =
            CertificateAuthority::from_pem_at("cluster CA", ca.cert_pem(), ca.key_pem(), later)
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("cluster CA expired at") && err.contains("Rotate"),
            "{err}"
        );
        let earlier = OffsetDateTime::now_utc() - Duration::hours(1);
        let err =
            CertificateAuthority::from_pem_at("cluster CA", ca.cert_pem(), ca.key_pem(), earlier)
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("not valid before") && err.contains("clock"),
            "{err}"
        );
    }

    #[test]
    fn key_of_another_ca_is_refused() {
        let (a, b) = (ca(), ca());
        let err = CertificateAuthority::from_pem("cluster CA", a.cert_pem(), b.key_pem())
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not match its certificate"), "{err}");
    }

    #[test]
    fn a_leaf_is_not_a_ca() {
        let ca = ca();
        let leaf = ca
            .issue(
                &LeafSpec::client("x", &[]),
                KeyAlgorithm::EcdsaP256,
                &Validity::default(),
            )
            .unwrap();
        let err = CertificateAuthority::from_pem("cluster CA", &leaf.cert_pem, &leaf.key_pem)
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not a certificate authority"), "{err}");
    }

    #[test]
    fn garbage_is_refused_with_the_expected_format() {
        let ca = ca();
        let err = CertificateAuthority::from_pem("cluster CA", "hello", ca.key_pem())
            .unwrap_err()
            .to_string();
        assert!(err.contains("CERTIFICATE"), "{err}");
        let err = CertificateAuthority::from_pem("cluster CA", ca.cert_pem(), "hello")
            .unwrap_err()
            .to_string();
        assert!(err.contains("PKCS#8"), "{err}");
    }

    #[test]
    fn leaves_never_outlive_their_ca() {
        let short = Validity {
            ca: Duration::days(10),
            ..Validity::default()
        };
        let ca =
            CertificateAuthority::generate("etcd CA", "etcd-ca", KeyAlgorithm::EcdsaP256, &short)
                .unwrap();
        let leaf = ca
            .issue(
                &LeafSpec::client("x", &[]),
                KeyAlgorithm::EcdsaP256,
                &Validity::default(),
            )
            .unwrap();
        let info = inspect::inspect_pem("x", &leaf.cert_pem).unwrap();
        assert_eq!(info.not_after, ca.info().not_after);
    }
}
