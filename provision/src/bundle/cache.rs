//! The download cache of URL bundles.
//!
//! Layout: `<cache>/<key>/<relative path>`, so once every file is verified
//! `<cache>/<key>` is itself a bundle directory (`sha256sum -c SHA256SUMS`
//! passes in it). Directories are created 0700. Files are written 0600
//! under a temporary name next to their place (`.NAME.RANDOM.part`) and
//! renamed into place only once their sha256 matches, so a path in the
//! cache never holds bytes that failed a check; a `.part` left by a crash is
//! harmless and may be deleted.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::error::BundleError;

/// Makes `root` usable: created 0700 (with missing parents) if absent;
/// refused if other users may write to it, since they could then plant
/// files where a verified one is expected.
pub(crate) async fn prepare_root(root: &Path) -> Result<(), BundleError> {
    let err = |action| {
        move |source| BundleError::Cache {
            path: root.to_path_buf(),
            action,
            source,
        }
    };
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .await
        .map_err(err("create"))?;
    let meta = tokio::fs::metadata(root).await.map_err(err("inspect"))?;
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(BundleError::Cache {
            path: root.to_path_buf(),
            action: "check its mode",
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "mode {:o} lets other users write to it; use an owner-only (0700) directory",
                    mode & 0o7777
                ),
            ),
        });
    }
    Ok(())
}

/// Creates `dir` and its missing parents 0700, and makes `dir` itself 0700.
pub(crate) async fn private_dir(dir: &Path) -> Result<(), BundleError> {
    let err = |action| {
        move |source| BundleError::Cache {
            path: dir.to_path_buf(),
            action,
            source,
        }
    };
    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .await
        .map_err(err("create"))?;
    tokio::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .await
        .map_err(err("make it owner-only"))
}

/// A fresh temporary name next to `target`.
pub(crate) fn part_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.{:016x}.part", rand::random::<u64>()))
}

/// Renames a verified `part` to `target`.
pub(crate) async fn promote(part: &Path, target: &Path) -> Result<(), BundleError> {
    tokio::fs::rename(part, target)
        .await
        .map_err(|source| BundleError::Cache {
            path: target.to_path_buf(),
            action: "rename into place",
            source,
        })
}

/// Removes a `part` that failed; a failure to do so is only logged.
pub(crate) async fn discard(part: &Path) {
    if let Err(e) = tokio::fs::remove_file(part).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %part.display(), error = %e, "cannot remove a failed download");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn creates_owner_only_directories() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("a/b/cache");
        prepare_root(&root).await.unwrap();
        assert_eq!(
            std::fs::metadata(&root).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let key = root.join("0123456789abcdef");
        std::fs::create_dir(&key).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&key.join("charts/kubeseed")).await.unwrap();
        private_dir(&key).await.unwrap();
        for d in [&key, &key.join("charts"), &key.join("charts/kubeseed")] {
            assert_eq!(
                std::fs::metadata(d).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
    }

    #[tokio::test]
    async fn refuses_a_directory_others_may_write_to() {
        let t = tempfile::tempdir().unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = prepare_root(t.path()).await.unwrap_err();
        assert_eq!(e.reason(), "BundleCacheError");
        assert!(e.to_string().contains("mode 777"), "{e}");
    }

    #[test]
    fn part_files_sit_next_to_their_target() {
        let p = part_path(Path::new("/c/k/bin/kubelet"));
        assert_eq!(p.parent(), Some(Path::new("/c/k/bin")));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(".kubelet.") && name.ends_with(".part"),
            "{name}"
        );
    }
}
