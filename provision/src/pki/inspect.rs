//! Reading certificates back: what `bootstrap certs` and the operator's status show.

use std::net::IpAddr;

use serde::Serialize;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::public_key::PublicKey;

use super::error::{PkiError, Result};
use super::leaf::{LeafSpec, Usage};
use super::san::SubjectAltName;
use super::validity::rfc3339;

/// What one certificate says, in a form fit for status and tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateInfo {
    /// The full subject, e.g. `CN=kubernetes-admin, O=kubeadm:cluster-admins`.
    pub subject: String,
    /// The subject common name (the user name for client certificates).
    pub common_name: String,
    /// Subject organisations (the groups for client certificates).
    pub organizations: Vec<String>,
    /// The issuer's subject.
    pub issuer: String,
    /// Serial number, hex bytes separated by colons.
    pub serial: String,
    /// Subject alternative names as `DNS:name` / `IP:address`.
    pub sans: Vec<String>,
    /// Start of validity.
    #[serde(serialize_with = "ser_time")]
    pub not_before: OffsetDateTime,
    /// End of validity.
    #[serde(serialize_with = "ser_time")]
    pub not_after: OffsetDateTime,
    /// Whether it is a CA (basicConstraints CA:TRUE).
    pub is_ca: bool,
    /// Key kind and size, e.g. `ECDSA-P256`, `RSA-2048`.
    pub key_algorithm: String,
    /// Extended key usages (`serverAuth`, `clientAuth`).
    pub extended_key_usages: Vec<String>,
}

fn ser_time<S: serde::Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

impl CertificateInfo {
    /// Reads what a parsed certificate says.
    pub fn from_x509(cert: &X509Certificate<'_>) -> Self {
        let strings =
            |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
                it.filter_map(|a| a.as_str().ok().map(str::to_owned))
                    .collect::<Vec<_>>()
            };
        let subject = cert.subject();
        let common_name = strings(&mut subject.iter_common_name())
            .into_iter()
            .next()
            .unwrap_or_default();
        let organizations = strings(&mut subject.iter_organization());
        let sans = general_names(cert)
            .into_iter()
            .map(|n| match n {
                Ok(san) => san.to_string(),
                Err(other) => other,
            })
            .collect();
        let extended_key_usages = match cert.extended_key_usage() {
            Ok(Some(eku)) => {
                let mut v = Vec::new();
                if eku.value.server_auth {
                    v.push("serverAuth".to_owned());
                }
                if eku.value.client_auth {
                    v.push("clientAuth".to_owned());
                }
                v.extend(eku.value.other.iter().map(|o| o.to_id_string()));
                v
            }
            _ => Vec::new(),
        };
        Self {
            subject: subject.to_string(),
            common_name,
            organizations,
            issuer: cert.issuer().to_string(),
            serial: cert.raw_serial_as_string(),
            sans,
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            is_ca: cert.is_ca(),
            key_algorithm: key_algorithm(cert),
            extended_key_usages,
        }
    }

    /// Time left until expiry at `now` (negative once expired).
    pub fn remaining(&self, now: OffsetDateTime) -> time::Duration {
        self.not_after - now
    }
}

fn key_algorithm(cert: &X509Certificate<'_>) -> String {
    match cert.public_key().parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA-{}", rsa.key_size()),
        // An uncompressed point is 1 + 2 * field size bytes.
        Ok(PublicKey::EC(point)) => match point.data().len() {
            65 => "ECDSA-P256".to_owned(),
            97 => "ECDSA-P384".to_owned(),
            _ => "ECDSA".to_owned(),
        },
        Ok(_) | Err(_) => cert.public_key().algorithm.algorithm.to_id_string(),
    }
}

/// SANs of a certificate: the kinds kubeseed issues, or a description of
/// anything else that is there.
fn general_names(cert: &X509Certificate<'_>) -> Vec<std::result::Result<SubjectAltName, String>> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => Ok(SubjectAltName::Dns((*dns).to_owned())),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => Ok(SubjectAltName::Ip(IpAddr::from(
                    <[u8; 4]>::try_from(*bytes).unwrap_or_default(),
                ))),
                16 => Ok(SubjectAltName::Ip(IpAddr::from(
                    <[u8; 16]>::try_from(*bytes).unwrap_or_default(),
                ))),
                _ => Err(format!("IP:<{} bytes>", bytes.len())),
            },
            other => Err(other.to_string()),
        })
        .collect()
}

/// The [`LeafSpec`] that would issue a certificate like `cert` (for renewal).
pub(crate) fn leaf_spec_of(what: &str, cert: &X509Certificate<'_>) -> Result<LeafSpec> {
    let not_renewable = |reason: String| PkiError::NotRenewable {
        what: what.to_owned(),
        reason,
    };
    if cert.is_ca() {
        return Err(not_renewable(
            "it is a CA certificate; CAs are rotated, not renewed".into(),
        ));
    }
    let info = CertificateInfo::from_x509(cert);
    let sans = general_names(cert)
        .into_iter()
        .map(|n| {
            n.map_err(|other| {
                not_renewable(format!("it has a SAN kubeseed does not issue: {other}"))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let eku = &info.extended_key_usages;
    let usage = match (
        eku.iter().any(|u| u == "serverAuth"),
        eku.iter().any(|u| u == "clientAuth"),
    ) {
        (true, true) => Usage::ServerAndClient,
        (true, false) => Usage::Server,
        (false, true) => Usage::Client,
        (false, false) => {
            return Err(not_renewable(
                "it has neither serverAuth nor clientAuth extended key usage".into(),
            ));
        }
    };
    Ok(LeafSpec {
        common_name: info.common_name,
        organizations: info.organizations,
        sans,
        usage,
    })
}

/// The DER bytes of the one `CERTIFICATE` in `pem`.
pub(crate) fn pem_to_der(what: &str, pem: &str) -> Result<Vec<u8>> {
    let bad = |reason: String| PkiError::BadCertificate {
        what: what.to_owned(),
        reason,
    };
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| bad(format!("not PEM ({e})")))?;
    if block.label != "CERTIFICATE" {
        return Err(bad(format!("the PEM block is a `{}`", block.label)));
    }
    Ok(block.contents)
}

pub(crate) fn parse_der<'a>(what: &str, der: &'a [u8]) -> Result<X509Certificate<'a>> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, cert)| cert)
        .map_err(|e| PkiError::BadCertificate {
            what: what.to_owned(),
            reason: format!("not an X.509 certificate ({e})"),
        })
}

/// Reads a PEM certificate; `what` names it in errors.
pub fn inspect_pem(what: &str, pem: &str) -> Result<CertificateInfo> {
    let der = pem_to_der(what, pem)?;
    let cert = parse_der(what, &der)?;
    Ok(CertificateInfo::from_x509(&cert))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_not_a_certificate() {
        let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        let err = inspect_pem("admin.crt", &key).unwrap_err().to_string();
        assert!(
            err.contains("admin.crt") && err.contains("PRIVATE KEY"),
            "{err}"
        );
        let err = inspect_pem("admin.crt", "nothing").unwrap_err().to_string();
        assert!(err.contains("not PEM"), "{err}");
    }
}
