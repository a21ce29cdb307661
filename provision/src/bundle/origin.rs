//! Where an open bundle's files are, and how one is obtained verified:
//! hashed in place in a directory, or taken from the download cache, or
//! downloaded into it.

use std::path::{Path, PathBuf};

use super::VerifiedArtifact;
use super::cache;
use super::digest::{self, Sha256Digest};
use super::download::{BaseUrl, Http};
use super::error::BundleError;
use super::manifest::ManifestEntry;

pub(super) enum Origin {
    Dir {
        root: PathBuf,
    },
    Url {
        base: BaseUrl,
        dir: PathBuf,
        http: Box<Http>,
    },
}

impl Origin {
    /// Where a file of the bundle is: a local path or a URL.
    pub(super) fn location(&self, relative: &str) -> String {
        match self {
            Origin::Dir { root } => root.join(relative).display().to_string(),
            Origin::Url { base, .. } => base.join(relative),
        }
    }

    /// The file of `entry`, verified: hashed in place, or taken from the
    /// cache, or downloaded into it.
    pub(super) async fn obtain(
        &self,
        entry: &ManifestEntry,
    ) -> Result<VerifiedArtifact, BundleError> {
        let (local_path, size) = match self {
            Origin::Dir { root } => {
                let local = root.join(&entry.path);
                let (actual, size) = hash_local(&local).await.map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        BundleError::ArtifactMissing {
                            path: entry.path.clone(),
                            location: local.display().to_string(),
                            detail: "no such file".into(),
                        }
                    } else {
                        BundleError::Io {
                            path: local.clone(),
                            action: "read",
                            source: e,
                        }
                    }
                })?;
                if actual != entry.sha256 {
                    return Err(BundleError::ArtifactHashMismatch {
                        path: entry.path.clone(),
                        location: local.display().to_string(),
                        expected: entry.sha256,
                        actual,
                    });
                }
                (local, size)
            }
            Origin::Url { base, dir, http } => {
                let local = dir.join(&entry.path);
                let size = fetch(base, http, entry, &local).await?;
                (local, size)
            }
        };
        tracing::debug!(size, "verified");
        Ok(VerifiedArtifact {
            path: entry.path.clone(),
            local_path,
            sha256: entry.sha256,
            size,
        })
    }
}

/// Makes `local` (in the cache) hold the file of `entry`, downloading it
/// unless a copy with the right sha256 is already there. Returns its size.
async fn fetch(
    base: &BaseUrl,
    http: &Http,
    entry: &ManifestEntry,
    local: &Path,
) -> Result<u64, BundleError> {
    match hash_local(local).await {
        Ok((actual, size)) if actual == entry.sha256 => {
            tracing::debug!("found in the cache; not fetched");
            return Ok(size);
        }
        Ok((actual, _)) => {
            tracing::warn!(%actual, expected = %entry.sha256, "the cached copy is damaged; fetching it again");
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(BundleError::Cache {
                path: local.to_path_buf(),
                action: "read",
                source,
            });
        }
    }
    if let Some(parent) = local.parent() {
        cache::private_dir(parent).await?;
    }
    let url = base.join(&entry.path);
    let part = cache::part_path(local);
    tracing::info!(%url, "downloading");
    let result = match http.download(&url, &part, None).await {
        Ok(got) if got.sha256 == entry.sha256 => {
            cache::promote(&part, local).await.map(|()| got.size)
        }
        Ok(got) => Err(BundleError::ArtifactHashMismatch {
            path: entry.path.clone(),
            location: url,
            expected: entry.sha256,
            actual: got.sha256,
        }),
        Err(BundleError::HttpStatus { status: 404, .. }) => Err(BundleError::ArtifactMissing {
            path: entry.path.clone(),
            location: url,
            detail: "the server answered 404".into(),
        }),
        Err(e) => Err(e),
    };
    if result.is_err() {
        cache::discard(&part).await;
    }
    result
}

/// sha256 and size of a local file, hashed off the async threads.
async fn hash_local(path: &Path) -> std::io::Result<(Sha256Digest, u64)> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || digest::hash_file(&path))
        .await
        .map_err(std::io::Error::other)?
}
