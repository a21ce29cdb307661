//! Owner-only files on the workstation: the CA store and the admin kubeconfig.
//!
//! The state directory is the only place outside the cluster that holds CA
//! keys, so it is 0700 and every file in it 0600, also when it already
//! existed with looser modes.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

use super::error::{PkiError, Result};

const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PkiError {
    let path = path.to_path_buf();
    move |source| PkiError::Io {
        action,
        path,
        source,
    }
}

/// Creates `dir` (and parents) if needed and makes it 0700.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(io("create directory", dir))?;
    fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
        .map_err(io("restrict permissions of", dir))
}

/// Writes `contents` to `path` as a 0600 file, atomically: a reader sees the
/// old file or the new one, never half of it.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| PkiError::Io {
            action: "write",
            path: path.to_path_buf(),
            source: std::io::Error::other("not a file path"),
        })?
        .to_string_lossy()
        .into_owned();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    // `mode` applies only when the file is created; a stale temp file keeps its mode.
    f.set_permissions(Permissions::from_mode(FILE_MODE))
        .map_err(io("restrict permissions of", &tmp))?;
    f.write_all(contents).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("sync", &tmp))?;
    fs::rename(&tmp, path).map_err(io("replace", path))
}

/// Writes `files` (paths relative to `dir`) under `dir`: directories 0700,
/// files 0600. Refuses absolute paths and `..`, so nothing lands outside `dir`.
pub fn write_private_files(dir: &Path, files: &BTreeMap<PathBuf, Vec<u8>>) -> Result<()> {
    ensure_private_dir(dir)?;
    for (rel, contents) in files {
        if !rel.components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(PkiError::Io {
                action: "write",
                path: rel.clone(),
                source: std::io::Error::other(
                    "state directory entries must be relative paths without `..`",
                ),
            });
        }
        let path = dir.join(rel);
        let mut parent = path.parent();
        // Every directory between `dir` and the file gets 0700 too.
        let mut to_fix = Vec::new();
        while let Some(p) = parent {
            if p == dir {
                break;
            }
            to_fix.push(p.to_path_buf());
            parent = p.parent();
        }
        for p in to_fix.iter().rev() {
            ensure_private_dir(p)?;
        }
        write_private_file(&path, contents)?;
    }
    Ok(())
}

/// Reads the files named `keys` from `dir` into Secret-shaped data; missing
/// files are simply absent (the loader says which one it needed).
pub fn read_files(dir: &Path, keys: &[&str]) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut data = BTreeMap::new();
    for key in keys {
        let path = dir.join(key);
        match fs::read(&path) {
            Ok(bytes) => {
                data.insert((*key).to_owned(), bytes);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("read", &path)(e)),
        }
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn everything_is_owner_only_even_if_it_was_not() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join("ca.key"), b"old").unwrap();
        fs::set_permissions(dir.join("ca.key"), Permissions::from_mode(0o644)).unwrap();

        let files = BTreeMap::from([
            (PathBuf::from("ca.key"), b"new".to_vec()),
            (PathBuf::from("etc/kubernetes/admin.conf"), b"kc".to_vec()),
        ]);
        write_private_files(&dir, &files).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("ca.key")), 0o600);
        assert_eq!(fs::read(dir.join("ca.key")).unwrap(), b"new");
        assert_eq!(mode(&dir.join("etc")), 0o700);
        assert_eq!(mode(&dir.join("etc/kubernetes")), 0o700);
        assert_eq!(mode(&dir.join("etc/kubernetes/admin.conf")), 0o600);
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn escaping_paths_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in ["../x", "/etc/passwd"] {
            let files = BTreeMap::from([(PathBuf::from(bad), b"x".to_vec())]);
            let err = write_private_files(tmp.path(), &files)
                .unwrap_err()
                .to_string();
            assert!(err.contains("relative paths"), "{err}");
        }
    }
}
