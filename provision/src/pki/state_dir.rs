//! Owner-only files on the workstation: the CA store and the admin kubeconfig.
//!
//! The state directory is the only place outside the cluster that holds CA
//! keys. It must be the user's own and 0700 (no group or other bits at all):
//! one that is not is refused with the reason, never quietly tightened,
//! because keys may already have been read through the loose mode, or the
//! directory may be someone else's. New directories are made 0700, files
//! 0600.
//!
//! A file is written to a fresh random name beside it, opened with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` (an existing file or symlink there is
//! never opened, let alone followed), synced, then renamed over the target;
//! on any failure the temporary file is removed.

use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;

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

fn refuse(path: &Path, reason: String) -> PkiError {
    PkiError::Io {
        action: "use the state directory",
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, reason),
    }
}

/// Creates `dir` (0700; missing parents get the usual modes) if it does not
/// exist; an existing one must be a directory owned by the current user with
/// no group or other permission bits, else it is refused.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(_) => check_private_dir(dir),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(io("create directory", parent))?;
            }
            match DirBuilder::new().mode(DIR_MODE).create(dir) {
                Ok(()) => {}
                // Made by someone else in the meantime: checked below like any other.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io("create directory", dir)(e)),
            }
            check_private_dir(dir)
        }
        Err(e) => Err(io("inspect", dir)(e)),
    }
}

/// Refuses `dir` unless it is a directory of the current user with mode
/// bits within 0700.
pub fn check_private_dir(dir: &Path) -> Result<()> {
    let meta = fs::metadata(dir).map_err(io("inspect", dir))?;
    if !meta.is_dir() {
        return Err(refuse(dir, "it is not a directory".into()));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(refuse(
            dir,
            format!(
                "it is owned by uid {}, not by you (uid {me}); the CA keys must live in a \
                 directory of your own: choose another with --state-dir or KUBESEED_STATE_DIR",
                meta.uid()
            ),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & !DIR_MODE != 0 {
        return Err(refuse(
            dir,
            format!(
                "its mode is {mode:04o}, which lets others in; the CA keys need 0700. If nobody \
                 else could have read the keys it holds, run `chmod 700 {}` and try again; \
                 otherwise treat them as disclosed",
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Writes `contents` to `path` as a 0600 file, atomically: a reader sees the
/// old file or the new one, never half of it. The directory must be private
/// already ([`ensure_private_dir`]).
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<()> {
    let not_a_file = || PkiError::Io {
        action: "write",
        path: path.to_path_buf(),
        source: std::io::Error::other("not a file path"),
    };
    let name = path
        .file_name()
        .ok_or_else(not_a_file)?
        .to_string_lossy()
        .into_owned();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    check_private_dir(dir)?;
    let tmp = dir.join(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    let written = file
        .write_all(contents)
        .map_err(io("write", &tmp))
        .and_then(|()| file.sync_all().map_err(io("sync", &tmp)))
        .and_then(|()| fs::rename(&tmp, path).map_err(io("replace", path)));
    drop(file);
    if written.is_err() {
        // Best effort: the name is ours (created exclusively above).
        let _ = fs::remove_file(&tmp);
        return written;
    }
    // The rename is durable once the directory is synced.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes `files` (paths relative to `dir`) under `dir`: directories 0700,
/// files 0600. Refuses absolute paths and `..`, so nothing lands outside
/// `dir`, and any directory on the way that is not private.
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
        // Every directory between `dir` and the file is private too.
        let mut between = Vec::new();
        while let Some(p) = parent {
            if p == dir {
                break;
            }
            between.push(p.to_path_buf());
            parent = p.parent();
        }
        for p in between.iter().rev() {
            if fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(refuse(p, "it is a symbolic link".into()));
            }
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
    use std::fs::Permissions;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect()
    }

    #[test]
    fn new_directories_and_files_are_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/state");
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
        assert!(leftovers(&dir).is_empty());
        // An existing file with a loose mode is replaced by a 0600 one.
        fs::set_permissions(dir.join("ca.key"), Permissions::from_mode(0o644)).unwrap();
        write_private_file(&dir.join("ca.key"), b"newer").unwrap();
        assert_eq!(mode(&dir.join("ca.key")), 0o600);
        assert_eq!(fs::read(dir.join("ca.key")).unwrap(), b"newer");
    }

    #[test]
    fn a_directory_open_to_others_is_refused_not_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        fs::create_dir(&dir).unwrap();
        for loose in [0o755, 0o750, 0o701, 0o1700] {
            fs::set_permissions(&dir, Permissions::from_mode(loose)).unwrap();
            let err = ensure_private_dir(&dir).unwrap_err().to_string();
            assert!(err.contains("lets others in"), "{loose:o}: {err}");
            assert!(
                err.contains(&format!("chmod 700 {}", dir.display())),
                "{err}"
            );
            assert_eq!(
                fs::metadata(&dir).unwrap().permissions().mode() & 0o7777,
                loose,
                "the mode must be left as it was"
            );
            let files = BTreeMap::from([(PathBuf::from("ca.key"), b"k".to_vec())]);
            assert!(write_private_files(&dir, &files).is_err());
            assert!(!dir.join("ca.key").exists());
        }
        // A loose subdirectory is refused the same way.
        fs::set_permissions(&dir, Permissions::from_mode(0o700)).unwrap();
        fs::create_dir(dir.join("pki")).unwrap();
        fs::set_permissions(dir.join("pki"), Permissions::from_mode(0o755)).unwrap();
        let files = BTreeMap::from([(PathBuf::from("pki/ca.key"), b"k".to_vec())]);
        let err = write_private_files(&dir, &files).unwrap_err().to_string();
        assert!(err.contains("pki") && err.contains("0755"), "{err}");
    }

    #[test]
    fn a_directory_of_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            return; // chown needs root; CI and the lab run as root
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        DirBuilder::new().mode(0o700).create(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        let err = ensure_private_dir(&dir).unwrap_err().to_string();
        assert!(err.contains("owned by uid 65534, not by you"), "{err}");
    }

    #[test]
    fn the_temporary_name_is_never_followed_and_is_removed_on_failure() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        ensure_private_dir(&dir).unwrap();
        // A symlink planted where the target is: replaced, never followed.
        let victim = tmp.path().join("victim");
        fs::write(&victim, b"untouched").unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("admin.conf")).unwrap();
        write_private_file(&dir.join("admin.conf"), b"kc").unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"untouched");
        assert!(
            !fs::symlink_metadata(dir.join("admin.conf"))
                .unwrap()
                .is_symlink()
        );
        // The rename fails (the target is a non-empty directory): nothing is left.
        fs::create_dir(dir.join("busy")).unwrap();
        fs::write(dir.join("busy/x"), b"x").unwrap();
        assert!(write_private_file(&dir.join("busy"), b"k").is_err());
        assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
        // A symlinked directory on the way is refused.
        std::os::unix::fs::symlink(tmp.path(), dir.join("link")).unwrap();
        let files = BTreeMap::from([(PathBuf::from("link/ca.key"), b"k".to_vec())]);
        let err = write_private_files(&dir, &files).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(!tmp.path().join("ca.key").exists());
    }

    #[test]
    fn escaping_paths_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        for bad in ["../x", "/etc/passwd"] {
            let files = BTreeMap::from([(PathBuf::from(bad), b"x".to_vec())]);
            let err = write_private_files(&dir, &files).unwrap_err().to_string();
            assert!(err.contains("relative paths"), "{err}");
        }
    }
}
