//! The artifact bundle: the binaries, CNI plugins, OCI image archives and
//! Helm chart a host is provisioned from, each checked against the bundle's
//! `SHA256SUMS` before it is used.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kubeseed_provision::bundle::BundleError> {
//! use kubeseed_provision::bundle::*;
//! let source = Source::from_arg("https://mirror.lan/kubeseed/", "/var/cache/kubeseed/bundles");
//! let bundle = Bundle::open(&source, &OpenOptions::default()).await?;
//! println!("bundle {} (Kubernetes {})", bundle.key(), bundle.versions().kubernetes());
//! let mut wanted = vec!["bin/etcd".to_string(), "bin/kube-apiserver".to_string()];
//! wanted.extend(bundle.artifacts_under("charts/kubeseed").map(|a| a.path.clone()));
//! // All verified, or an error naming every bad file: never a partial list.
//! for a in bundle.verify(&wanted).await? {
//!     println!("{} {} {} bytes at {}", a.sha256, a.path, a.size, a.local_path.display());
//! }
//! # Ok(()) }
//! ```
//!
//! The layout (produced by `e2e/toolchain/bundle.sh`):
//!
//! ```text
//! SHA256SUMS   every other file's sha256, as `sha256sum` prints it (see [`MANIFEST`])
//! VERSIONS     KEY=VALUE lines (see [`Versions`]); must be listed in SHA256SUMS
//! bin/ cni/ images/ charts/kubeseed/...
//! ```
//!
//! - The bundle's identity is its manifest: [`Bundle::key`] is the first 16
//!   hex digits of sha256(`SHA256SUMS`), and [`OpenOptions::manifest_sha256`]
//!   pins the whole of it. Everything else is trusted only through the
//!   manifest, `VERSIONS` included.
//! - [`Bundle::verify`] hashes (and for a URL, downloads) every file asked
//!   for before returning any, so a plan installs nothing from a bundle
//!   with one bad file. The [`VerifiedArtifact`]s carry path, sha256 and
//!   size, for an upload that re-checks the hash on the host.
//! - A check proves the bytes at the time they were read. A local bundle
//!   can change afterwards: whoever copies a file on re-checks its sha256
//!   (the SSH engine's upload does).
//! - Files: `open.rs` (manifest and versions), `origin.rs` (one file,
//!   verified), `cache.rs` (the download cache's layout and modes),
//!   `download.rs` (the HTTP client, and why this one), `manifest.rs` and
//!   `versions.rs` (the two formats, pure).

mod cache;
mod digest;
mod download;
mod error;
mod manifest;
mod open;
mod origin;
mod source;
mod versions;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use tracing::Instrument;

pub use digest::{InvalidDigest, Sha256Digest};
pub use error::BundleError;
pub use manifest::{MANIFEST, ManifestEntry};
pub use source::{HttpOptions, OpenOptions, Source};
pub use versions::{VERSIONS, Versions};

use manifest::Manifest;
use origin::Origin;

/// A file of the bundle whose sha256 matched the manifest when it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedArtifact {
    /// Relative path in the bundle, e.g. `bin/etcd`.
    pub path: String,
    /// Where the verified bytes are on this machine: in the bundle directory,
    /// or in the download cache.
    pub local_path: PathBuf,
    /// The sha256, equal to the manifest's.
    pub sha256: Sha256Digest,
    /// Size in bytes.
    pub size: u64,
}

/// An open bundle: manifest and versions read and checked, artifacts
/// verified on request.
pub struct Bundle {
    origin: Origin,
    source: String,
    manifest: Manifest,
    manifest_sha256: Sha256Digest,
    key: String,
    versions: Versions,
    concurrency: usize,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("source", &self.source)
            .field("key", &self.key)
            .field("files", &self.manifest.entries().len())
            .field("local_root", &self.local_root())
            .finish_non_exhaustive()
    }
}

impl Bundle {
    /// Reads and checks `SHA256SUMS` (against the pin, if any) and
    /// `VERSIONS`. For a URL, downloads them into the cache; with a pin, a
    /// manifest already cached is used without asking the server.
    pub async fn open(source: &Source, options: &OpenOptions) -> Result<Bundle, BundleError> {
        let span = tracing::info_span!("bundle_open", source = %source);
        Self::open_inner(source, options).instrument(span).await
    }

    async fn open_inner(source: &Source, options: &OpenOptions) -> Result<Bundle, BundleError> {
        let pin = options.manifest_sha256;
        let (origin, bytes) = match source {
            Source::Dir(dir) => open::open_dir(dir).await?,
            Source::Url { base, cache } => open::open_url(base, cache, options).await?,
        };
        let manifest_location = origin.location(MANIFEST);
        let manifest_sha256 = Sha256Digest::of(&bytes);
        if let Some(expected) = pin
            && expected != manifest_sha256
        {
            return Err(BundleError::ManifestDigestMismatch {
                location: manifest_location,
                expected,
                actual: manifest_sha256,
            });
        }
        let manifest = Manifest::parse(&bytes).map_err(|e| BundleError::ManifestMalformed {
            location: manifest_location.clone(),
            line: e.line,
            problem: e.problem,
        })?;
        let entry = manifest
            .get(VERSIONS)
            .ok_or_else(|| BundleError::ArtifactNotInManifest {
                path: VERSIONS.into(),
                manifest: manifest_location.clone(),
            })?;
        let versions = open::read_versions(&origin, entry).await?;
        let key = open::key_of(&manifest_sha256);
        tracing::info!(key, files = manifest.entries().len(), "bundle opened");
        Ok(Bundle {
            origin,
            source: source.to_string(),
            manifest,
            manifest_sha256,
            key,
            versions,
            concurrency: options.concurrency.max(1),
        })
    }

    /// The first 16 hex digits of the sha256 of `SHA256SUMS`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The sha256 of `SHA256SUMS` (what `--bundle-sha256` pins).
    pub fn manifest_sha256(&self) -> Sha256Digest {
        self.manifest_sha256
    }

    /// The directory or base URL the bundle was opened from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Where verified files are on this machine: the bundle directory, or
    /// `<cache>/<key>` for a URL.
    pub fn local_root(&self) -> &Path {
        match &self.origin {
            Origin::Dir { root } => root,
            Origin::Url { dir, .. } => dir,
        }
    }

    /// The parsed `VERSIONS`.
    pub fn versions(&self) -> &Versions {
        &self.versions
    }

    /// Every file of the manifest, in its order.
    pub fn artifacts(&self) -> &[ManifestEntry] {
        self.manifest.entries()
    }

    /// The files under a directory of the bundle (e.g. `charts/kubeseed`,
    /// with or without the trailing `/`), in manifest order.
    pub fn artifacts_under<'a>(
        &'a self,
        dir: &str,
    ) -> impl Iterator<Item = &'a ManifestEntry> + use<'a> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.manifest
            .entries()
            .iter()
            .filter(move |e| e.path.starts_with(&prefix))
    }

    /// The manifest's line for `path`.
    pub fn entry(&self, path: &str) -> Option<&ManifestEntry> {
        self.manifest.get(path)
    }

    /// Every path asked for, verified (and for a URL, downloaded); or an
    /// error naming every one that is not in the manifest, missing, or has
    /// the wrong sha256 — never some of them. Duplicates are verified once;
    /// the result follows the order asked for.
    pub async fn verify<I>(&self, paths: I) -> Result<Vec<VerifiedArtifact>, BundleError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut seen = BTreeSet::new();
        let wanted: Vec<String> = paths
            .into_iter()
            .map(|p| p.as_ref().to_string())
            .filter(|p| seen.insert(p.clone()))
            .collect();
        let results: Vec<Result<VerifiedArtifact, BundleError>> = futures::stream::iter(wanted)
            .map(|path| async move {
                let span = tracing::info_span!("bundle_artifact", artifact = %path);
                match self.manifest.get(&path) {
                    Some(entry) => self.origin.obtain(entry).instrument(span).await,
                    None => Err(BundleError::ArtifactNotInManifest {
                        path,
                        manifest: self.origin.location(MANIFEST),
                    }),
                }
            })
            .buffered(self.concurrency)
            .collect()
            .await;
        let (good, bad): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
        let problems: Vec<BundleError> = bad.into_iter().filter_map(Result::err).collect();
        for p in &problems {
            tracing::warn!(reason = p.reason(), artifact = p.artifact(), "{p}");
        }
        match BundleError::from_problems(problems) {
            Some(e) => Err(e),
            None => Ok(good.into_iter().filter_map(Result::ok).collect()),
        }
    }

    /// Every file of the manifest, verified.
    pub async fn verify_all(&self) -> Result<Vec<VerifiedArtifact>, BundleError> {
        let paths: Vec<&str> = self.artifacts().iter().map(|e| e.path.as_str()).collect();
        self.verify(paths).await
    }
}
