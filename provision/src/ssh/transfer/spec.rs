//! What callers say about a transfer (mode, owner, method) and what they
//! get back.

use crate::ssh::error::SshError;
use crate::ssh::shell;

/// How file bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferMethod {
    /// `dd` into the temporary file on an exec channel.
    #[default]
    ExecStream,
    /// SFTP with pipelined writes.
    Sftp,
}

/// Mode and owner of a file written to a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Permission bits, e.g. `0o600` for a private key.
    pub mode: u32,
    /// `user` or `user:group`; `None` leaves it to the writer (root with sudo).
    pub owner: Option<String>,
    /// How the bytes travel.
    pub method: TransferMethod,
}

impl Default for FileSpec {
    fn default() -> Self {
        FileSpec {
            mode: 0o644,
            owner: None,
            method: TransferMethod::default(),
        }
    }
}

impl FileSpec {
    /// A file with this mode, default owner.
    pub fn mode(mode: u32) -> Self {
        FileSpec {
            mode,
            ..Self::default()
        }
    }

    /// The same spec with an owner.
    pub fn owned_by(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// The same spec with another transfer method.
    pub fn via(mut self, method: TransferMethod) -> Self {
        self.method = method;
        self
    }

    pub(super) fn validate(&self) -> Result<(), SshError> {
        if self.mode > 0o7777 {
            return Err(SshError::InvalidInput(format!(
                "file mode {:o} is not a permission mode (at most 7777 octal)",
                self.mode
            )));
        }
        if let Some(o) = &self.owner {
            shell::check_owner(o)?;
        }
        Ok(())
    }
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// The content was sent.
    Uploaded {
        /// Bytes sent.
        bytes: u64,
        /// sha256 of the content (hex).
        sha256: String,
    },
    /// The host already had this content; nothing was sent.
    Unchanged {
        /// sha256 of the content (hex).
        sha256: String,
        /// Whether mode or owner had to be corrected.
        metadata_updated: bool,
    },
}

/// What a download did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadOutcome {
    /// Bytes received.
    pub bytes: u64,
    /// sha256 of the content (hex).
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_validation() {
        assert!(FileSpec::mode(0o17777).validate().is_err());
        assert!(FileSpec::mode(0o600).owned_by("a b").validate().is_err());
        FileSpec::mode(0o600)
            .owned_by("etcd:etcd")
            .validate()
            .unwrap();
    }
}
