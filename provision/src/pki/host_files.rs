//! Where kubeadm puts a host's certificates and kubeconfigs, and what only
//! the PKI knows about a host's files (key pairs, certificate inspection).

use std::path::PathBuf;

use crate::files::HostFiles;

use super::error::Result;
use super::inspect::{self, CertificateInfo};
use super::kubeconfig;
use super::leaf::IssuedCert;

/// `/etc/kubernetes`: kubeconfigs.
pub const KUBERNETES_DIR: &str = "/etc/kubernetes";
/// `/etc/kubernetes/pki`: certificates and keys of the control plane.
pub const PKI_DIR: &str = "/etc/kubernetes/pki";
/// Where a kubelet looks for its serving certificate (`--cert-dir` default).
pub const KUBELET_PKI_DIR: &str = "/var/lib/kubelet/pki";

impl HostFiles {
    /// Adds `<stem>.crt` (0644) and `<stem>.key` (0600).
    pub fn insert_pair(&mut self, stem: &str, issued: IssuedCert) {
        self.insert_public(format!("{stem}.crt"), issued.cert_pem);
        self.insert_private(format!("{stem}.key"), issued.key_pem);
    }

    /// Every certificate among the files: `.crt` files and the client
    /// certificates embedded in `.conf` kubeconfigs.
    pub fn inspect(&self) -> Result<Vec<(PathBuf, CertificateInfo)>> {
        let mut out = Vec::new();
        for (path, file) in self.iter() {
            let what = path.display().to_string();
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => out.push((
                    path.to_path_buf(),
                    inspect::inspect_pem(&what, &file.contents)?,
                )),
                Some("conf") => {
                    if let Some(pem) = kubeconfig::client_certificate(&what, &file.contents)? {
                        out.push((path.to_path_buf(), inspect::inspect_pem(&what, &pem)?));
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

/// `/etc/kubernetes/pki/<name>`.
pub(crate) fn pki(name: &str) -> String {
    format!("{PKI_DIR}/{name}")
}

/// `/etc/kubernetes/<name>`.
pub(crate) fn kube(name: &str) -> String {
    format!("{KUBERNETES_DIR}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_get_public_cert_and_private_key() {
        let mut files = HostFiles::default();
        files.insert_pair(
            &pki("apiserver"),
            IssuedCert {
                cert_pem: "C".into(),
                key_pem: "K".into(),
            },
        );
        let modes: Vec<(String, u32)> = files
            .iter()
            .map(|(p, f)| (p.display().to_string(), f.mode))
            .collect();
        assert_eq!(
            modes,
            [
                ("/etc/kubernetes/pki/apiserver.crt".to_owned(), 0o644),
                ("/etc/kubernetes/pki/apiserver.key".to_owned(), 0o600)
            ]
        );
        assert!(!format!("{files:?}").contains("\"K\""));
    }
}
