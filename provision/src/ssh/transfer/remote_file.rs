//! What the host says about a file: size, mode and owner, and its sha256.

use crate::ssh::error::{SshError, Step};
use crate::ssh::session::Session;
use crate::ssh::shell;

/// What a path looks like on the host.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RemoteFile {
    Absent,
    Present { size: u64, mode: u32, owner: String },
}

fn parse_remote_file(stdout: &str) -> Option<RemoteFile> {
    let line = stdout.lines().next()?.trim();
    if line == "absent" {
        return Some(RemoteFile::Absent);
    }
    let mut fields = line.split_whitespace();
    let size = fields.next()?.parse().ok()?;
    let mode = u32::from_str_radix(fields.next()?, 8).ok()?;
    let owner = fields.next()?.to_owned();
    Some(RemoteFile::Present { size, mode, owner })
}

fn parse_sha256(stdout: &str) -> Option<String> {
    let h = stdout.trim();
    (h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())).then(|| h.to_ascii_lowercase())
}

/// Whether the recorded `user:group` satisfies the wanted `user[:group]`.
/// Numeric ids are not resolved here, so they always count as different
/// (a `chown` to the same owner is harmless).
pub(super) fn owner_matches(actual: &str, wanted: Option<&str>) -> bool {
    let Some(wanted) = wanted else { return true };
    match wanted.split_once(':') {
        Some(_) => actual == wanted,
        None => actual.split(':').next() == Some(wanted),
    }
}

impl Session {
    /// Describes `remote` without changing anything (before a download).
    pub(super) async fn remote_file(&self, remote: &str) -> Result<RemoteFile, SshError> {
        self.describe(&shell::describe_file(remote), remote).await
    }

    /// Describes the destination of an upload, creating its missing parent
    /// directories in the same script: one round trip, and the bytes that
    /// follow have somewhere to go.
    pub(super) async fn prepare_destination(&self, remote: &str) -> Result<RemoteFile, SshError> {
        self.describe(&shell::prepare_destination(remote), remote)
            .await
    }

    async fn describe(&self, script: &str, remote: &str) -> Result<RemoteFile, SshError> {
        let out = self.helper(script, Step::CheckRemote).await?;
        parse_remote_file(&out.stdout_text()).ok_or_else(|| {
            self.remote_error(
                Step::CheckRemote,
                format!(
                    "unexpected answer describing {remote}: {:?} (is GNU stat installed?)",
                    out.stdout_text()
                ),
            )
        })
    }

    pub(super) async fn remote_sha256(&self, remote: &str) -> Result<String, SshError> {
        let out = self
            .helper(&shell::sha256(remote), Step::CheckRemote)
            .await?;
        parse_sha256(&out.stdout_text()).ok_or_else(|| {
            self.remote_error(
                Step::CheckRemote,
                format!(
                    "unexpected sha256 output for {remote}: {:?} (is coreutils installed?)",
                    out.stdout_text()
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_remote_description() {
        assert_eq!(parse_remote_file("absent\n"), Some(RemoteFile::Absent));
        assert_eq!(
            parse_remote_file("1234 640 etcd:etcd\n"),
            Some(RemoteFile::Present {
                size: 1234,
                mode: 0o640,
                owner: "etcd:etcd".into()
            })
        );
        assert_eq!(parse_remote_file("garbage\n"), None);
        assert_eq!(parse_remote_file("12 9x root:root\n"), None);
        let h = "A".repeat(64);
        assert_eq!(parse_sha256(&format!("{h}\n")), Some("a".repeat(64)));
        assert_eq!(parse_sha256("abc"), None);
    }

    #[test]
    fn owner_comparison() {
        assert!(owner_matches("root:root", None));
        assert!(owner_matches("etcd:etcd", Some("etcd")));
        assert!(owner_matches("etcd:etcd", Some("etcd:etcd")));
        assert!(!owner_matches("etcd:root", Some("etcd:etcd")));
        assert!(!owner_matches("root:root", Some("0")));
    }
}
