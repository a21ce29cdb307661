//! The cluster's shared signing material and where it is kept.
//!
//! One store holds all of it, in the shape of a Kubernetes Secret's data
//! (`BTreeMap<String, Vec<u8>>`): the operator turns it into a Secret, the
//! workstation into files of its state directory. Entry names are kubeadm's
//! file names with `/` spelt `-` (Secret keys cannot contain `/`).

use std::collections::BTreeMap;
use std::path::Path;

use super::algorithm::KeyAlgorithm;
use super::ca::CertificateAuthority;
use super::error::{PkiError, Result};
use super::inspect::CertificateInfo;
use super::service_account::ServiceAccountKey;
use super::state_dir;
use super::validity::Validity;

/// Store entry: cluster CA certificate.
pub const CA_CRT: &str = "ca.crt";
/// Store entry: cluster CA key.
pub const CA_KEY: &str = "ca.key";
/// Store entry: etcd CA certificate.
pub const ETCD_CA_CRT: &str = "etcd-ca.crt";
/// Store entry: etcd CA key.
pub const ETCD_CA_KEY: &str = "etcd-ca.key";
/// Store entry: front-proxy CA certificate.
pub const FRONT_PROXY_CA_CRT: &str = "front-proxy-ca.crt";
/// Store entry: front-proxy CA key.
pub const FRONT_PROXY_CA_KEY: &str = "front-proxy-ca.key";
/// Store entry: service-account private key.
pub const SA_KEY: &str = "sa.key";
/// Store entry: service-account public key.
pub const SA_PUB: &str = "sa.pub";

/// Every entry of the store.
pub const STORE_KEYS: [&str; 8] = [
    CA_CRT,
    CA_KEY,
    ETCD_CA_CRT,
    ETCD_CA_KEY,
    FRONT_PROXY_CA_CRT,
    FRONT_PROXY_CA_KEY,
    SA_KEY,
    SA_PUB,
];

/// The three CAs and the service-account key pair of one cluster.
#[derive(Debug)]
pub struct ClusterCas {
    /// Signs API serving and client certificates, kubelets' certificates and kubeconfigs.
    pub cluster: CertificateAuthority,
    /// Signs etcd's server, peer and client certificates.
    pub etcd: CertificateAuthority,
    /// Signs the front-proxy (aggregation layer) client certificate.
    pub front_proxy: CertificateAuthority,
    /// Signs and verifies service-account tokens.
    pub service_account: ServiceAccountKey,
}

impl ClusterCas {
    /// Makes fresh CAs (kubeadm's names: `kubernetes`, `etcd-ca`,
    /// `front-proxy-ca`) and a service-account key pair.
    pub fn generate(algorithm: KeyAlgorithm, validity: &Validity) -> Result<Self> {
        Ok(Self {
            cluster: CertificateAuthority::generate(
                "cluster CA",
                "kubernetes",
                algorithm,
                validity,
            )?,
            etcd: CertificateAuthority::generate("etcd CA", "etcd-ca", algorithm, validity)?,
            front_proxy: CertificateAuthority::generate(
                "front-proxy CA",
                "front-proxy-ca",
                algorithm,
                validity,
            )?,
            service_account: ServiceAccountKey::generate(algorithm)?,
        })
    }

    /// The store's data: put it into a Secret (type Opaque) or a state directory.
    pub fn to_secret_data(&self) -> BTreeMap<String, Vec<u8>> {
        [
            (CA_CRT, self.cluster.cert_pem()),
            (CA_KEY, self.cluster.key_pem()),
            (ETCD_CA_CRT, self.etcd.cert_pem()),
            (ETCD_CA_KEY, self.etcd.key_pem()),
            (FRONT_PROXY_CA_CRT, self.front_proxy.cert_pem()),
            (FRONT_PROXY_CA_KEY, self.front_proxy.key_pem()),
            (SA_KEY, self.service_account.private_pem()),
            (SA_PUB, self.service_account.public_pem()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
        .collect()
    }

    /// Loads the store from a Secret's data; `source_name` (e.g.
    /// `Secret kubeseed-system/kubeseed-pki`) names it in errors. Every CA is
    /// checked as [`CertificateAuthority::from_pem`] does.
    pub fn from_secret_data(source_name: &str, data: &BTreeMap<String, Vec<u8>>) -> Result<Self> {
        let get = |key: &str| -> Result<&str> {
            let bytes = data.get(key).ok_or_else(|| PkiError::MissingSecretKey {
                source_name: source_name.to_owned(),
                key: key.to_owned(),
                present: if data.is_empty() {
                    "nothing".to_owned()
                } else {
                    data.keys().cloned().collect::<Vec<_>>().join(", ")
                },
                expected: STORE_KEYS.join(", "),
            })?;
            std::str::from_utf8(bytes).map_err(|_| PkiError::NotUtf8 {
                source_name: source_name.to_owned(),
                key: key.to_owned(),
            })
        };
        let ca = |label: &str, crt: &str, key: &str| -> Result<CertificateAuthority> {
            CertificateAuthority::from_pem(
                &format!("{label} ({source_name}: {crt})"),
                get(crt)?,
                get(key)?,
            )
        };
        Ok(Self {
            cluster: ca("cluster CA", CA_CRT, CA_KEY)?,
            etcd: ca("etcd CA", ETCD_CA_CRT, ETCD_CA_KEY)?,
            front_proxy: ca("front-proxy CA", FRONT_PROXY_CA_CRT, FRONT_PROXY_CA_KEY)?,
            service_account: ServiceAccountKey::from_pem(get(SA_KEY)?, get(SA_PUB)?)?,
        })
    }

    /// Writes the store into the workstation's state directory (0700, files 0600).
    pub fn write_state_dir(&self, dir: &Path) -> Result<()> {
        let files = self
            .to_secret_data()
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect();
        state_dir::write_private_files(dir, &files)
    }

    /// Loads the store from a state directory written by [`Self::write_state_dir`].
    pub fn load_state_dir(dir: &Path) -> Result<Self> {
        let data = state_dir::read_files(dir, &STORE_KEYS)?;
        Self::from_secret_data(&format!("state directory {}", dir.display()), &data)
    }

    /// The three CA certificates, for status and `bootstrap certs`.
    pub fn inspect(&self) -> Vec<(&'static str, CertificateInfo)> {
        vec![
            (CA_CRT, self.cluster.info().clone()),
            (ETCD_CA_CRT, self.etcd.info().clone()),
            (FRONT_PROXY_CA_CRT, self.front_proxy.info().clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_round_trips_and_names_missing_entries() {
        let cas = ClusterCas::generate(KeyAlgorithm::EcdsaP256, &Validity::default()).unwrap();
        let mut data = cas.to_secret_data();
        assert_eq!(data.keys().map(String::as_str).collect::<Vec<_>>().len(), 8);
        let back = ClusterCas::from_secret_data("Secret x/y", &data).unwrap();
        assert_eq!(back.etcd.cert_pem(), cas.etcd.cert_pem());

        data.remove(ETCD_CA_KEY);
        let err = ClusterCas::from_secret_data("Secret x/y", &data)
            .unwrap_err()
            .to_string();
        assert!(err.contains("Secret x/y has no `etcd-ca.key`"), "{err}");
        assert!(err.contains("it has: ca.crt, ca.key, etcd-ca.crt"), "{err}");

        let err = ClusterCas::from_secret_data("Secret x/y", &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("it has: nothing"), "{err}");
    }

    #[test]
    fn swapped_keys_are_refused() {
        let cas = ClusterCas::generate(KeyAlgorithm::EcdsaP256, &Validity::default()).unwrap();
        let mut data = cas.to_secret_data();
        let etcd_key = data[ETCD_CA_KEY].clone();
        data.insert(CA_KEY.into(), etcd_key);
        let err = ClusterCas::from_secret_data("Secret x/y", &data)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cluster CA") && err.contains("does not match"),
            "{err}"
        );
    }

    #[test]
    fn state_dir_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let cas = ClusterCas::generate(KeyAlgorithm::EcdsaP256, &Validity::default()).unwrap();
        cas.write_state_dir(&dir).unwrap();
        let back = ClusterCas::load_state_dir(&dir).unwrap();
        assert_eq!(back.to_secret_data(), cas.to_secret_data());
        std::fs::remove_file(dir.join(SA_PUB)).unwrap();
        let err = ClusterCas::load_state_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("has no `sa.pub`"), "{err}");
    }
}
