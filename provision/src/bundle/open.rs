//! Opening a bundle: finding `SHA256SUMS` in a directory or fetching it
//! (through the cache) from a base URL, and reading `VERSIONS` through it.

use std::path::Path;

use tracing::Instrument;

use super::cache;
use super::digest::Sha256Digest;
use super::download::{BaseUrl, Http, Limit};
use super::error::BundleError;
use super::manifest::{MANIFEST, ManifestEntry};
use super::origin::Origin;
use super::source::OpenOptions;
use super::versions::{VERSIONS, Versions};

/// Far more than a manifest of a few hundred lines can need.
const MANIFEST_LIMIT: u64 = 4 << 20;
/// Far more than a few KEY=VALUE lines can need.
const VERSIONS_LIMIT: u64 = 64 << 10;

pub(super) fn key_of(sha256: &Sha256Digest) -> String {
    sha256.to_hex()[..16].to_string()
}

pub(super) async fn open_dir(dir: &Path) -> Result<(Origin, Vec<u8>), BundleError> {
    let root = tokio::fs::canonicalize(dir).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            BundleError::ManifestMissing {
                location: dir.display().to_string(),
                detail: "no such directory".into(),
            }
        } else {
            BundleError::Io {
                path: dir.to_path_buf(),
                action: "open the bundle directory",
                source: e,
            }
        }
    })?;
    if !root.is_dir() {
        return Err(BundleError::InvalidSource {
            source_name: dir.display().to_string(),
            problem: "not a directory: give the bundle's directory or an http(s) base URL".into(),
        });
    }
    let path = root.join(MANIFEST);
    let bytes = read_capped(&path, MANIFEST, MANIFEST_LIMIT)
        .await
        .map_err(|e| match e {
            BundleError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                BundleError::ManifestMissing {
                    location: path.display().to_string(),
                    detail: "no such file".into(),
                }
            }
            other => other,
        })?;
    Ok((Origin::Dir { root }, bytes))
}

pub(super) async fn open_url(
    base: &str,
    cache: &Path,
    options: &OpenOptions,
) -> Result<(Origin, Vec<u8>), BundleError> {
    let invalid = |problem| BundleError::InvalidSource {
        source_name: base.to_string(),
        problem,
    };
    let base = BaseUrl::parse(base).map_err(invalid)?;
    let http = Box::new(Http::new(&base, &options.http).map_err(invalid)?);
    cache::prepare_root(cache).await?;
    let url = base.join(MANIFEST);
    if let Some(pin) = options.manifest_sha256 {
        let dir = cache.join(key_of(&pin));
        match read_capped(&dir.join(MANIFEST), MANIFEST, MANIFEST_LIMIT).await {
            Ok(bytes) if Sha256Digest::of(&bytes) == pin => {
                tracing::info!("pinned manifest found in the cache; not fetched");
                return Ok((Origin::Url { base, dir, http }, bytes));
            }
            Ok(_) => tracing::warn!("the cached manifest does not match the pin; fetching it"),
            Err(_) => {}
        }
    }
    let part = cache::part_path(&cache.join(MANIFEST));
    let limit = Limit {
        bytes: MANIFEST_LIMIT,
        name: MANIFEST,
    };
    let fetched = match http.download(&url, &part, Some(limit)).await {
        Ok(_) => read_capped(&part, MANIFEST, MANIFEST_LIMIT).await,
        Err(BundleError::HttpStatus { status: 404, .. }) => Err(BundleError::ManifestMissing {
            location: url.clone(),
            detail: "the server answered 404".into(),
        }),
        Err(e) => Err(e),
    };
    let bytes = match fetched {
        Ok(bytes) => bytes,
        Err(e) => {
            cache::discard(&part).await;
            return Err(e);
        }
    };
    let dir = cache.join(key_of(&Sha256Digest::of(&bytes)));
    let placed = async {
        cache::private_dir(&dir).await?;
        cache::promote(&part, &dir.join(MANIFEST)).await
    };
    if let Err(e) = placed.await {
        cache::discard(&part).await;
        return Err(e);
    }
    Ok((Origin::Url { base, dir, http }, bytes))
}

/// Reads `VERSIONS` through the manifest, checking the bytes actually read.
pub(super) async fn read_versions(
    origin: &Origin,
    entry: &ManifestEntry,
) -> Result<Versions, BundleError> {
    let span = tracing::info_span!("bundle_artifact", artifact = VERSIONS);
    let artifact = origin.obtain(entry).instrument(span).await?;
    let bytes = read_capped(&artifact.local_path, VERSIONS, VERSIONS_LIMIT).await?;
    let actual = Sha256Digest::of(&bytes);
    if actual != entry.sha256 {
        return Err(BundleError::ArtifactHashMismatch {
            path: entry.path.clone(),
            location: artifact.local_path.display().to_string(),
            expected: entry.sha256,
            actual,
        });
    }
    Versions::parse(&bytes).map_err(|e| BundleError::VersionsMalformed {
        location: origin.location(VERSIONS),
        line: e.line,
        problem: e.problem,
    })
}

/// Reads a small file whole, refusing one larger than `limit`.
pub(super) async fn read_capped(
    path: &Path,
    name: &'static str,
    limit: u64,
) -> Result<Vec<u8>, BundleError> {
    use tokio::io::AsyncReadExt;
    let io = |source| BundleError::Io {
        path: path.to_path_buf(),
        action: "read",
        source,
    };
    let file = tokio::fs::File::open(path).await.map_err(io)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .await
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(BundleError::FileTooLarge {
            location: path.display().to_string(),
            name,
            limit,
        });
    }
    Ok(bytes)
}
