//! Removing files and directory trees, with guards against removing the
//! system.

use tracing::Instrument as _;

use super::error::{SshError, Step};
use super::session::Session;
use super::shell;

/// Directories that are never removed, nor is anything directly inside
/// them: `/` (so every top-level directory: /etc, /usr, /var, /home, /tmp,
/// /lib64...), `/usr/*`, `/var/*` (/var/lib, /var/log...) and
/// `/usr/local/*`. Deeper paths such as `/var/lib/etcd` or `/etc/kubernetes`
/// are what provisioning cleans up.
const SYSTEM_PARENTS: &[&str] = &["/", "/usr", "/usr/local", "/var"];

/// The absolute, normalized form of a tree `remove_tree` may remove.
fn removable_tree(path: &str) -> Result<String, SshError> {
    let refuse = |why: &str| {
        Err(SshError::InvalidInput(format!(
            "refusing to remove the tree {path:?}: {why}"
        )))
    };
    if !path.starts_with('/') {
        return refuse("the path is not absolute");
    }
    if path.contains('\0') || path.contains('\n') {
        return refuse("the path contains a NUL or newline");
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return refuse("the path has a `..` component");
    }
    let normalized = format!("/{}", parts.join("/"));
    let parent = match normalized.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
        None => "/",
    };
    if SYSTEM_PARENTS.contains(&normalized.as_str()) || SYSTEM_PARENTS.contains(&parent) {
        return refuse(
            "it is a system directory (/, a top-level directory, /usr/*, /var/*, /usr/local/*)",
        );
    }
    Ok(normalized)
}

impl Session {
    /// Removes the file or symlink `path` (never what a link points to).
    /// `Ok(false)` when there was nothing; a directory is refused (see
    /// [`Session::remove_tree`]).
    pub async fn remove_file(&self, path: &str) -> Result<bool, SshError> {
        shell::check_remote_path(path)?;
        let span = tracing::info_span!("ssh.remove_file", host = %self.host(), path);
        async {
            let _permits = self.permits().await;
            let out = self.helper(&shell::remove_file(path), Step::Remove).await?;
            match out.stdout_text().trim() {
                "removed" => Ok(true),
                "absent" => Ok(false),
                "directory" => Err(self.remote_error(
                    Step::Remove,
                    format!("{path} is a directory; remove_file removes files and symlinks only"),
                )),
                other => Err(self.remote_error(
                    Step::Remove,
                    format!("unexpected answer removing {path}: {other:?}"),
                )),
            }
        }
        .instrument(span)
        .await
    }

    /// Removes the directory tree `path` (a symlink: only the link).
    /// `Ok(false)` when there was nothing. Relative paths, `..` components,
    /// `/`, top-level directories, `/usr/*`, `/var/*` and `/usr/local/*`
    /// are refused, before anything is sent and again on the host after
    /// resolving symlinks.
    pub async fn remove_tree(&self, path: &str) -> Result<bool, SshError> {
        let path = removable_tree(path)?;
        let span = tracing::info_span!("ssh.remove_tree", host = %self.host(), path);
        async {
            let _permits = self.permits().await;
            let out = self
                .helper(&shell::remove_tree(&path, SYSTEM_PARENTS), Step::Remove)
                .await?;
            let text = out.stdout_text();
            let answer = text.lines().next().unwrap_or_default();
            match answer {
                "removed" => Ok(true),
                "absent" => Ok(false),
                "not-directory" => Err(self.remote_error(
                    Step::Remove,
                    format!("{path} is not a directory (nor a symlink); see remove_file"),
                )),
                _ => Err(self.remote_error(
                    Step::Remove,
                    match answer.strip_prefix("system ") {
                        Some(resolved) => format!(
                            "refusing to remove {path}: it resolves to {resolved}, a system directory"
                        ),
                        None => format!("unexpected answer removing {path}: {text:?}"),
                    },
                )),
            }
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_directories_and_odd_paths_are_refused() {
        for bad in [
            "",
            "relative/dir",
            "/",
            "//",
            "/.",
            "/etc",
            "/etc/",
            "/usr",
            "/var/lib",
            "/var//lib/",
            "/var/./lib",
            "/usr/local/bin",
            "/lib64",
            "/home",
            "/root",
            "/tmp",
            "/proc",
            "/srv",
            "/var/lib/../../etc/x",
            "/opt/x/..",
            "/a\nb",
        ] {
            let e = removable_tree(bad).unwrap_err();
            assert!(matches!(e, SshError::InvalidInput(_)), "{bad:?}: {e}");
            assert!(e.to_string().contains("refusing to remove"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn deeper_paths_are_normalized() {
        assert_eq!(removable_tree("/var/lib/etcd").unwrap(), "/var/lib/etcd");
        assert_eq!(
            removable_tree("/etc/kubernetes/").unwrap(),
            "/etc/kubernetes"
        );
        assert_eq!(removable_tree("//opt//cni/./bin").unwrap(), "/opt/cni/bin");
        assert_eq!(removable_tree("/tmp/.tmpAbc").unwrap(), "/tmp/.tmpAbc");
    }
}
