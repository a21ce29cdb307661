//! What a leaf certificate says: subject, names and purpose.

use rand::Rng as _;
use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SerialNumber,
};
use time::OffsetDateTime;

use super::error::{Result, rcgen_err};
use super::san::SubjectAltName;

/// What a leaf certificate may be used for (its extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Usage {
    /// TLS server (`serverAuth`).
    Server,
    /// TLS client (`clientAuth`).
    Client,
    /// Both: etcd members use one certificate to serve and to dial peers.
    ServerAndClient,
}

impl Usage {
    fn purposes(self) -> Vec<ExtendedKeyUsagePurpose> {
        match self {
            Self::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Self::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Self::ServerAndClient => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        }
    }
}

/// The contents of one leaf certificate, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafSpec {
    /// Subject common name: the user name Kubernetes sees for client certificates.
    pub common_name: String,
    /// Subject organisations: the groups Kubernetes sees for client certificates.
    pub organizations: Vec<String>,
    /// Subject alternative names (servers are checked against these).
    pub sans: Vec<SubjectAltName>,
    /// What the certificate is for.
    pub usage: Usage,
}

impl LeafSpec {
    /// A client certificate for user `common_name` in `groups`.
    pub fn client(common_name: impl Into<String>, groups: &[&str]) -> Self {
        Self {
            common_name: common_name.into(),
            organizations: groups.iter().map(|g| (*g).to_owned()).collect(),
            sans: Vec::new(),
            usage: Usage::Client,
        }
    }

    /// rcgen parameters for this leaf, valid from `not_before` to `not_after`.
    pub(crate) fn params(
        &self,
        not_before: OffsetDateTime,
        not_after: OffsetDateTime,
        rsa_key: bool,
    ) -> Result<CertificateParams> {
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, self.common_name.as_str());
        for org in &self.organizations {
            params
                .distinguished_name
                .push(DnType::OrganizationName, org.as_str());
        }
        params.subject_alt_names = self
            .sans
            .iter()
            .map(SubjectAltName::to_rcgen)
            .collect::<Result<_>>()?;
        // CA:FALSE written out, as kubeadm does, so no verifier has to guess.
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = key_usages(rsa_key, false);
        params.extended_key_usages = self.usage.purposes();
        params.use_authority_key_identifier_extension = true;
        params.serial_number = Some(random_serial());
        params.not_before = not_before;
        params.not_after = not_after;
        Ok(params)
    }
}

/// Key usages for a certificate whose key is RSA or not.
///
/// keyEncipherment only means something for RSA key transport; RFC 5480
/// forbids it for ECDSA keys, so (like Go's own generator) it is left out there.
pub(crate) fn key_usages(rsa_key: bool, ca: bool) -> Vec<KeyUsagePurpose> {
    let mut usages = vec![KeyUsagePurpose::DigitalSignature];
    if rsa_key {
        usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    if ca {
        usages.push(KeyUsagePurpose::KeyCertSign);
    }
    usages
}

/// A random positive serial of 20 bytes (RFC 5280's maximum), so serials never
/// repeat even when several operators sign under one CA.
pub(crate) fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 20];
    rand::rng().fill(&mut bytes);
    // High bit clear keeps the INTEGER positive; the next bit set keeps the
    // first byte non-zero, so the encoding is always exactly 20 bytes.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

/// A signed certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// The certificate (`CERTIFICATE`).
    pub cert_pem: String,
    /// Its private key (PKCS#8 `PRIVATE KEY`).
    pub key_pem: String,
}

impl std::fmt::Debug for IssuedCert {
    // Private keys stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

pub(crate) fn sign(
    params: &CertificateParams,
    key: &rcgen::KeyPair,
    issuer: &rcgen::Issuer<'_, rcgen::KeyPair>,
    what: &str,
) -> Result<IssuedCert> {
    let cert = params
        .signed_by(key, issuer)
        .map_err(rcgen_err(format!("sign the {what} certificate")))?;
    Ok(IssuedCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_twenty_bytes_and_differ() {
        let a = random_serial().to_bytes();
        let b = random_serial().to_bytes();
        assert_eq!(a.len(), 20);
        assert!(a[0] & 0x80 == 0 && a[0] != 0);
        assert_ne!(a, b);
    }

    #[test]
    fn ecdsa_keys_get_no_key_encipherment() {
        assert_eq!(
            key_usages(false, false),
            [KeyUsagePurpose::DigitalSignature]
        );
        assert!(key_usages(true, false).contains(&KeyUsagePurpose::KeyEncipherment));
        assert!(key_usages(false, true).contains(&KeyUsagePurpose::KeyCertSign));
    }

    #[test]
    fn debug_hides_the_key() {
        let issued = IssuedCert {
            cert_pem: "CERT".into(),
            key_pem: "-----BEGIN PRIVATE KEY-----".into(),
        };
        assert!(!format!("{issued:?}").contains("PRIVATE"));
    }
}
