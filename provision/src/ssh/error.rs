//! The errors of the SSH engine: every one names the host and the step.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::exec::ExitStatus;

/// What the engine was doing when something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Loading the client's private key or talking to ssh-agent.
    LoadKey,
    /// Opening the TCP connection (or the `direct-tcpip` channel through a bastion).
    Connect,
    /// Key exchange and host-key verification.
    Handshake,
    /// User authentication.
    Authenticate,
    /// Opening a channel on an established connection.
    OpenChannel,
    /// Running a command.
    Exec,
    /// Checking what is already on the host before a transfer (and
    /// creating the destination's missing parent directories).
    CheckRemote,
    /// Sending a file.
    Upload,
    /// Receiving a file.
    Download,
    /// Reading or writing a local file.
    LocalFile,
    /// Setting mode and owner and renaming into place.
    Finalize,
    /// Removing a file or a directory tree.
    Remove,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::LoadKey => "load key",
            Step::Connect => "connect",
            Step::Handshake => "handshake",
            Step::Authenticate => "authenticate",
            Step::OpenChannel => "open channel",
            Step::Exec => "exec",
            Step::CheckRemote => "check remote file",
            Step::Upload => "upload",
            Step::Download => "download",
            Step::LocalFile => "local file",
            Step::Finalize => "finalize file",
            Step::Remove => "remove",
        })
    }
}

/// Everything that can go wrong talking to a host.
///
/// `host` is always `address:port` of the host the step ran against (a
/// bastion names itself, not the final target).
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// The host presented a different key from the one expected. Nothing was
    /// sent to it beyond the key exchange.
    #[error(
        "{host}: host key mismatch: expected {expected_algorithm} {expected_fingerprint}, \
         the host presented {presented_algorithm} {presented_fingerprint}{}",
        mismatch_advice(expected_algorithm, presented_algorithm)
    )]
    HostKeyMismatch {
        /// The host.
        host: String,
        /// Type of the recorded key, such as `ssh-ed25519`.
        expected_algorithm: &'static str,
        /// SHA256 fingerprint of the recorded key.
        expected_fingerprint: String,
        /// Type of the key the host presented.
        presented_algorithm: &'static str,
        /// SHA256 fingerprint of the key the host presented.
        presented_fingerprint: String,
    },
    /// The host presented a key a known_hosts file marks `@revoked`.
    #[error(
        "{host}: the host presented {presented_fingerprint}, which {known_hosts} line {line} \
         marks @revoked; a revoked key is refused even where the file also lists it as the \
         host's key"
    )]
    HostKeyRevoked {
        /// The host.
        host: String,
        /// SHA256 fingerprint of the key the host presented.
        presented_fingerprint: String,
        /// The file that revokes it.
        known_hosts: PathBuf,
        /// The `@revoked` line.
        line: usize,
    },
    /// known_hosts trusts a certificate authority for the host, which kubeseed
    /// does not support, and lists none of the host's own keys.
    #[error(
        "{host}: {known_hosts} line {line} trusts a certificate authority for this host \
         (@cert-authority), but kubeseed verifies plain host keys, not host certificates; \
         add the host's own key to the file (ssh-keyscan -p PORT HOST) or pin it"
    )]
    HostCertificatesUnsupported {
        /// The host.
        host: String,
        /// The file.
        known_hosts: PathBuf,
        /// The `@cert-authority` line.
        line: usize,
    },
    /// The known_hosts file has no key for this host.
    #[error(
        "{host}: host key {presented_fingerprint} is not in {known_hosts}; verify it and add it \
         (e.g. `ssh-keyscan -p PORT HOST >> FILE`), or pin it"
    )]
    HostKeyUnknown {
        /// The host.
        host: String,
        /// SHA256 fingerprint of the key the host presented.
        presented_fingerprint: String,
        /// The file that was searched.
        known_hosts: PathBuf,
    },
    /// The host refused every key offered.
    #[error(
        "{host}: authentication as {user} with {method} was rejected; check that the public key \
         is in the user's authorized_keys and that the user may log in"
    )]
    AuthRejected {
        /// The host.
        host: String,
        /// The user.
        user: String,
        /// What was offered (a key file, Secret bytes, ssh-agent).
        method: String,
    },
    /// The private key could not be used.
    #[error("cannot use the private key from {source_name}: {reason}")]
    InvalidKey {
        /// Where the key came from.
        source_name: String,
        /// What was wrong and what to do.
        reason: String,
    },
    /// ssh-agent could not be used.
    #[error("{host}: ssh-agent: {reason}")]
    Agent {
        /// The host.
        host: String,
        /// What was wrong.
        reason: String,
    },
    /// `sudo -n` wants a password.
    #[error(
        "{host}: user {user} needs a password for sudo; kubeseed runs `sudo -n` and cannot type \
         one: give {user} a NOPASSWD sudoers rule or connect as root"
    )]
    SudoNeedsPassword {
        /// The host.
        host: String,
        /// The user.
        user: String,
    },
    /// A step did not finish in time.
    #[error("{host}: {step} timed out after {after:?}")]
    Timeout {
        /// The host.
        host: String,
        /// The step.
        step: Step,
        /// The limit that was exceeded.
        after: Duration,
    },
    /// The caller cancelled the step.
    #[error("{host}: {step} was cancelled")]
    Cancelled {
        /// The host.
        host: String,
        /// The step.
        step: Step,
    },
    /// A command exited unsuccessfully (see [`super::Session::run`]).
    #[error("{host}: `{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The host.
        host: String,
        /// The command line.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// The end of its standard error.
        stderr: String,
    },
    /// The SSH protocol layer failed.
    #[error("{host}: {step}: {source}")]
    Protocol {
        /// The host.
        host: String,
        /// The step.
        step: Step,
        /// The cause.
        #[source]
        source: russh::Error,
    },
    /// The SFTP layer failed.
    #[error("{host}: {step} over SFTP: {source}")]
    Sftp {
        /// The host.
        host: String,
        /// The step.
        step: Step,
        /// The cause.
        #[source]
        source: russh_sftp::client::error::Error,
    },
    /// A local or channel I/O operation failed.
    #[error("{host}: {step}: {what}: {source}")]
    Io {
        /// The host.
        host: String,
        /// The step.
        step: Step,
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The host answered something the engine did not expect.
    #[error("{host}: {step}: {reason}")]
    Remote {
        /// The host.
        host: String,
        /// The step.
        step: Step,
        /// What was wrong.
        reason: String,
    },
    /// The caller passed something unusable.
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// What to tell a user whose recorded key is not the one the host showed.
fn mismatch_advice(expected: &str, presented: &str) -> String {
    if expected == presented {
        "; if the host was reinstalled, record its new key (pin it or update known_hosts), \
         otherwise someone may be intercepting the connection"
            .to_owned()
    } else {
        // The expected algorithm is offered first: the host has no such key.
        format!(
            "; the host offers no {expected} key at all: check that the recorded key is this \
             host's (its /etc/ssh/ssh_host_*_key.pub); if the host was reinstalled, record its \
             new key, otherwise someone may be intercepting the connection"
        )
    }
}

impl SshError {
    /// The host the error is about, when there is one.
    pub fn host(&self) -> Option<&str> {
        match self {
            SshError::HostKeyMismatch { host, .. }
            | SshError::HostKeyRevoked { host, .. }
            | SshError::HostCertificatesUnsupported { host, .. }
            | SshError::HostKeyUnknown { host, .. }
            | SshError::AuthRejected { host, .. }
            | SshError::Agent { host, .. }
            | SshError::SudoNeedsPassword { host, .. }
            | SshError::Timeout { host, .. }
            | SshError::Cancelled { host, .. }
            | SshError::CommandFailed { host, .. }
            | SshError::Protocol { host, .. }
            | SshError::Sftp { host, .. }
            | SshError::Io { host, .. }
            | SshError::Remote { host, .. } => Some(host),
            SshError::InvalidKey { .. } | SshError::InvalidInput(_) => None,
        }
    }

    /// Whether trying again later could help (network trouble), as opposed to
    /// a decision (wrong key, rejected login) that a retry would only repeat.
    pub fn is_transient(&self) -> bool {
        match self {
            SshError::Io { .. } | SshError::Timeout { .. } => true,
            SshError::Protocol { source, .. } => matches!(
                source,
                russh::Error::IO(_)
                    | russh::Error::Disconnect
                    | russh::Error::ConnectionTimeout
                    | russh::Error::KeepaliveTimeout
                    | russh::Error::InactivityTimeout
                    | russh::Error::HUP
            ),
            _ => false,
        }
    }

    /// A short stable name for events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            SshError::HostKeyMismatch { .. } => "HostKeyMismatch",
            SshError::HostKeyUnknown { .. } => "HostKeyUnknown",
            SshError::HostKeyRevoked { .. } => "HostKeyRevoked",
            SshError::HostCertificatesUnsupported { .. } => "HostCertificatesUnsupported",
            SshError::AuthRejected { .. } => "AuthRejected",
            SshError::InvalidKey { .. } => "InvalidKey",
            SshError::Agent { .. } => "AgentFailed",
            SshError::SudoNeedsPassword { .. } => "SudoNeedsPassword",
            SshError::Timeout { .. } => "Timeout",
            SshError::Cancelled { .. } => "Cancelled",
            SshError::CommandFailed { .. } => "CommandFailed",
            SshError::Protocol { .. } => "SshProtocol",
            SshError::Sftp { .. } => "Sftp",
            SshError::Io { .. } => "Io",
            SshError::Remote { .. } => "RemoteError",
            SshError::InvalidInput(_) => "InvalidInput",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_message_names_host_and_both_fingerprints() {
        let e = SshError::HostKeyMismatch {
            host: "10.0.0.1:22".into(),
            expected_algorithm: "ssh-ed25519",
            expected_fingerprint: "SHA256:aaa".into(),
            presented_algorithm: "ssh-ed25519",
            presented_fingerprint: "SHA256:bbb".into(),
        };
        let msg = e.to_string();
        assert!(msg.starts_with("10.0.0.1:22: host key mismatch"));
        assert!(msg.contains("SHA256:aaa") && msg.contains("SHA256:bbb"));
        assert!(msg.contains("reinstalled"), "{msg}");
        assert_eq!(e.host(), Some("10.0.0.1:22"));
        assert!(!e.is_transient());
    }

    #[test]
    fn a_pin_of_a_type_the_host_lacks_says_so() {
        let e = SshError::HostKeyMismatch {
            host: "h:22".into(),
            expected_algorithm: "ssh-ed25519",
            expected_fingerprint: "SHA256:aaa".into(),
            presented_algorithm: "ssh-rsa",
            presented_fingerprint: "SHA256:bbb".into(),
        };
        let msg = e.to_string();
        assert!(
            msg.contains("expected ssh-ed25519 SHA256:aaa")
                && msg.contains("presented ssh-rsa SHA256:bbb")
                && msg.contains("offers no ssh-ed25519 key"),
            "{msg}"
        );
    }

    #[test]
    fn io_is_transient_and_names_the_step() {
        let e = SshError::Io {
            host: "h:22".into(),
            step: Step::Connect,
            what: "tcp connect".into(),
            source: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert!(e.is_transient());
        assert!(e.to_string().starts_with("h:22: connect: tcp connect:"));
    }
}
