//! Certificates and keys for a throw-away control plane.
//!
//! By default [`ControlPlanePki::generate`] makes everything fresh with rcgen.
//! Every field is public PEM text so a test can swap in material made
//! elsewhere (kubeseed's own PKI engine) and prove real etcd and a real
//! kube-apiserver accept it. This module deliberately does not use
//! kubeseed-provision: that crate's tests depend on this one.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

/// Service CIDR the control plane is started with; its first address is the
/// `kubernetes` Service's ClusterIP and so belongs in the serving certificate.
pub const SERVICE_CIDR: &str = "10.0.0.0/24";
const KUBERNETES_SERVICE_IP: &str = "10.0.0.1";

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct CertKey {
    /// The certificate (PEM, `CERTIFICATE`).
    pub cert_pem: String,
    /// Its private key (PEM, PKCS#8 or any form Go's crypto/tls accepts).
    pub key_pem: String,
}

impl std::fmt::Debug for CertKey {
    // Keys stay out of test logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertKey")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// Front-proxy (aggregation layer) material: a CA the API server trusts for
/// request-header authentication and the client certificate it presents.
#[derive(Debug, Clone)]
pub struct FrontProxyPki {
    /// CA that signs front-proxy clients (`--requestheader-client-ca-file`).
    pub ca_cert_pem: String,
    /// The API server's own front-proxy client certificate
    /// (`--proxy-client-cert-file` / `--proxy-client-key-file`).
    pub client: CertKey,
}

/// All the PEM material a single-member etcd plus kube-apiserver needs.
#[derive(Clone)]
pub struct ControlPlanePki {
    /// Cluster CA: trusted for client certificates (`--client-ca-file`) and
    /// the trust root written into kubeconfigs for the serving certificate.
    pub ca_cert_pem: String,
    /// The cluster CA's key, when known (generated material always has it).
    pub ca_key_pem: Option<String>,
    /// kube-apiserver serving certificate. Must cover 127.0.0.1.
    pub apiserver: CertKey,
    /// Admin client certificate (organisation `system:masters`) used by the
    /// admin kubeconfig, kubectl and helm.
    pub admin: CertKey,
    /// CA of etcd's client and server certificates.
    pub etcd_ca_cert_pem: String,
    /// etcd's serving certificate. Must cover 127.0.0.1.
    pub etcd_server: CertKey,
    /// Client certificate kube-apiserver presents to etcd.
    pub apiserver_etcd_client: CertKey,
    /// Private key that signs service-account tokens (PEM).
    pub service_account_key_pem: String,
    /// The matching public key that verifies them (PEM `PUBLIC KEY`).
    pub service_account_pub_pem: String,
    /// Front-proxy material; `None` leaves the aggregation flags unset.
    pub front_proxy: Option<FrontProxyPki>,
}

impl std::fmt::Debug for ControlPlanePki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlanePki")
            .field("ca_cert_pem", &self.ca_cert_pem)
            .field("apiserver", &self.apiserver)
            .field("admin", &self.admin)
            .field("etcd_server", &self.etcd_server)
            .field("apiserver_etcd_client", &self.apiserver_etcd_client)
            .field("front_proxy", &self.front_proxy)
            .finish_non_exhaustive()
    }
}

impl ControlPlanePki {
    /// Generates fresh CAs (cluster, etcd, front-proxy), leaf certificates and
    /// a service-account key pair. ECDSA P-256 throughout: quick to make and
    /// accepted by Go's TLS stack and the token signer (ES256).
    pub fn generate() -> Result<Self, rcgen::Error> {
        let (ca, ca_cert_pem, ca_key_pem) = new_ca("kubeseed-testenv-ca")?;
        let (etcd_ca, etcd_ca_cert_pem, _) = new_ca("kubeseed-testenv-etcd-ca")?;
        let (fp_ca, fp_ca_cert_pem, _) = new_ca("kubeseed-testenv-front-proxy-ca")?;
        let server = [ExtendedKeyUsagePurpose::ServerAuth];
        let client = [ExtendedKeyUsagePurpose::ClientAuth];
        let both = [
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let sa = KeyPair::generate()?;
        Ok(Self {
            ca_cert_pem,
            ca_key_pem: Some(ca_key_pem),
            apiserver: leaf(
                &ca,
                "kube-apiserver",
                &[],
                &[
                    "127.0.0.1",
                    "localhost",
                    KUBERNETES_SERVICE_IP,
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                ],
                &server,
            )?,
            admin: leaf(
                &ca,
                "kubeseed-testenv-admin",
                &["system:masters"],
                &[],
                &client,
            )?,
            etcd_ca_cert_pem,
            // etcd checks its own certificate as a client too when it talks
            // to itself (grpc-gateway), hence both usages.
            etcd_server: leaf(&etcd_ca, "etcd", &[], &["127.0.0.1", "localhost"], &both)?,
            apiserver_etcd_client: leaf(&etcd_ca, "kube-apiserver-etcd-client", &[], &[], &client)?,
            service_account_key_pem: sa.serialize_pem(),
            service_account_pub_pem: sa.public_key_pem(),
            front_proxy: Some(FrontProxyPki {
                ca_cert_pem: fp_ca_cert_pem,
                client: leaf(&fp_ca, "front-proxy-client", &[], &[], &client)?,
            }),
        })
    }
}

fn validity(params: &mut CertificateParams) {
    // A little in the past tolerates clock skew between this process and the
    // programs reading the certificate; a day outlives any test.
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(1);
}

fn new_ca(cn: &str) -> Result<(Issuer<'static, KeyPair>, String, String), rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params);
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let key_pem = key.serialize_pem();
    Ok((Issuer::new(params, key), cert.pem(), key_pem))
}

fn leaf(
    issuer: &Issuer<'_, KeyPair>,
    cn: &str,
    orgs: &[&str],
    sans: &[&str],
    usages: &[ExtendedKeyUsagePurpose],
) -> Result<CertKey, rcgen::Error> {
    let mut params =
        CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())?;
    params.distinguished_name.push(DnType::CommonName, cn);
    for org in orgs {
        params
            .distinguished_name
            .push(DnType::OrganizationName, *org);
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = usages.to_vec();
    params.use_authority_key_identifier_extension = true;
    validity(&mut params);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok(CertKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::extensions::GeneralName;
    use x509_parser::pem::parse_x509_pem;

    fn parse(pem: &str) -> Vec<u8> {
        parse_x509_pem(pem.as_bytes()).unwrap().1.contents
    }

    #[test]
    fn serving_cert_covers_loopback_and_service_names() {
        let pki = ControlPlanePki::generate().unwrap();
        let der = parse(&pki.apiserver.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some((*d).to_owned()),
                GeneralName::IPAddress(b) => <[u8; 4]>::try_from(*b)
                    .ok()
                    .map(|o| std::net::Ipv4Addr::from(o).to_string()),
                _ => None,
            })
            .collect();
        for want in ["127.0.0.1", "10.0.0.1", "kubernetes.default.svc"] {
            assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
        }
    }

    #[test]
    fn admin_is_system_masters_and_signed_by_ca() {
        let pki = ControlPlanePki::generate().unwrap();
        let ca_der = parse(&pki.ca_cert_pem);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let der = parse(&pki.admin.cert_pem);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let org: Vec<_> = cert
            .subject()
            .iter_organization()
            .map(|o| o.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(org, ["system:masters"]);
        assert_eq!(cert.issuer(), ca.subject());
        cert.verify_signature(Some(ca.public_key())).unwrap();
        assert!(ca.is_ca());
    }

    #[test]
    fn debug_hides_keys() {
        let pki = ControlPlanePki::generate().unwrap();
        let shown = format!("{pki:?}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }
}
