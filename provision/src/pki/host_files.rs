//! The files one host needs, laid out as kubeadm lays them out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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

/// Mode of certificates: world-readable, they are public.
pub const PUBLIC_MODE: u32 = 0o644;
/// Mode of keys and kubeconfigs with credentials.
pub const PRIVATE_MODE: u32 = 0o600;

/// One file's contents and mode.
#[derive(Clone, PartialEq, Eq)]
pub struct HostFile {
    /// PEM or YAML text.
    pub contents: String,
    /// Unix permission bits to install it with.
    pub mode: u32,
}

impl std::fmt::Debug for HostFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = if self.mode & 0o077 == 0 {
            "<private>"
        } else {
            self.contents.as_str()
        };
        f.debug_struct("HostFile")
            .field("mode", &format_args!("{:o}", self.mode))
            .field("contents", &shown)
            .finish()
    }
}

/// Absolute path → file, for one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostFiles {
    files: BTreeMap<PathBuf, HostFile>,
}

impl HostFiles {
    /// Adds a public file (0644).
    pub fn insert_public(&mut self, path: impl Into<PathBuf>, contents: impl Into<String>) {
        self.files.insert(
            path.into(),
            HostFile {
                contents: contents.into(),
                mode: PUBLIC_MODE,
            },
        );
    }

    /// Adds a private file (0600).
    pub fn insert_private(&mut self, path: impl Into<PathBuf>, contents: impl Into<String>) {
        self.files.insert(
            path.into(),
            HostFile {
                contents: contents.into(),
                mode: PRIVATE_MODE,
            },
        );
    }

    /// Adds `<stem>.crt` (0644) and `<stem>.key` (0600).
    pub fn insert_pair(&mut self, stem: &str, issued: IssuedCert) {
        self.insert_public(format!("{stem}.crt"), issued.cert_pem);
        self.insert_private(format!("{stem}.key"), issued.key_pem);
    }

    /// Adds every file of `other`, replacing files at the same paths.
    pub fn extend(&mut self, other: HostFiles) {
        self.files.extend(other.files);
    }

    /// The text of one file.
    pub fn get(&self, path: impl AsRef<Path>) -> Option<&str> {
        self.files.get(path.as_ref()).map(|f| f.contents.as_str())
    }

    /// Every file, in path order.
    pub fn iter(&self) -> impl Iterator<Item = (&Path, &HostFile)> {
        self.files.iter().map(|(p, f)| (p.as_path(), f))
    }

    /// Path → contents, for code that only needs the text.
    pub fn pems(&self) -> BTreeMap<PathBuf, String> {
        self.files
            .iter()
            .map(|(p, f)| (p.clone(), f.contents.clone()))
            .collect()
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there are no files.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Every certificate among the files: `.crt` files and the client
    /// certificates embedded in `.conf` kubeconfigs.
    pub fn inspect(&self) -> Result<Vec<(PathBuf, CertificateInfo)>> {
        let mut out = Vec::new();
        for (path, file) in &self.files {
            let what = path.display().to_string();
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => {
                    out.push((path.clone(), inspect::inspect_pem(&what, &file.contents)?))
                }
                Some("conf") => {
                    if let Some(pem) = kubeconfig::client_certificate(&what, &file.contents)? {
                        out.push((path.clone(), inspect::inspect_pem(&what, &pem)?));
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
