//! The files a host gets: path, contents and mode. Certificates, kubeconfigs,
//! rendered configuration and unit files all travel in one [`HostFiles`], so
//! one task writes them and one check compares them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    /// Adds a file with an explicit mode.
    pub fn insert(&mut self, path: impl Into<PathBuf>, contents: impl Into<String>, mode: u32) {
        self.files.insert(
            path.into(),
            HostFile {
                contents: contents.into(),
                mode,
            },
        );
    }

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
}

impl HostFiles {
    /// A digest of every path, mode and content: what a service reads, so a
    /// change to any of it is seen as one changed value.
    pub fn digest(&self) -> String {
        use sha2::{Digest as _, Sha256};
        let mut hasher = Sha256::new();
        for (path, file) in &self.files {
            hasher.update(path.as_os_str().as_encoded_bytes());
            hasher.update([0]);
            hasher.update(file.mode.to_be_bytes());
            hasher.update((file.contents.len() as u64).to_be_bytes());
            hasher.update(file.contents.as_bytes());
        }
        hex::encode(hasher.finalize())
    }

    /// The files whose paths satisfy `keep`.
    pub fn filter(&self, keep: impl Fn(&Path) -> bool) -> HostFiles {
        HostFiles {
            files: self
                .files
                .iter()
                .filter(|(p, _)| keep(p))
                .map(|(p, f)| (p.clone(), f.clone()))
                .collect(),
        }
    }
}

impl FromIterator<(PathBuf, HostFile)> for HostFiles {
    fn from_iter<T: IntoIterator<Item = (PathBuf, HostFile)>>(iter: T) -> Self {
        HostFiles {
            files: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_contents_stay_out_of_debug_output() {
        let mut files = HostFiles::default();
        files.insert_private("/etc/kubernetes/pki/ca.key", "SECRET");
        files.insert_public("/etc/kubernetes/pki/ca.crt", "PUBLIC");
        let shown = format!("{files:?}");
        assert!(
            !shown.contains("SECRET") && shown.contains("PUBLIC"),
            "{shown}"
        );
        assert_eq!(files.len(), 2);
        assert_eq!(files.get("/etc/kubernetes/pki/ca.crt"), Some("PUBLIC"));
    }
}
