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
    /// Checking what is already on the host before a transfer.
    CheckRemote,
    /// Sending a file.
    Upload,
    /// Receiving a file.
    Download,
    /// Reading or writing a local file.
    LocalFile,
    /// Setting mode and owner and renaming into place.
    Finalize,
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
        "{host}: host key mismatch: expected {expected_fingerprint}, the host presented \
         {presented_fingerprint}; if the host was reinstalled, record its new key \
         (pin it or update known_hosts), otherwise someone may be intercepting the connection"
    )]
    HostKeyMismatch {
        /// The host.
        host: String,
        /// SHA256 fingerprint of the recorded key.
        expected_fingerprint: String,
        /// SHA256 fingerprint of the key the host presented.
        presented_fingerprint: String,
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

impl SshError {
    /// The host the error is about, when there is one.
    pub fn host(&self) -> Option<&str> {
        match self {
            SshError::HostKeyMismatch { host, .. }
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
            expected_fingerprint: "SHA256:aaa".into(),
            presented_fingerprint: "SHA256:bbb".into(),
        };
        let msg = e.to_string();
        assert!(msg.starts_with("10.0.0.1:22: host key mismatch"));
        assert!(msg.contains("SHA256:aaa") && msg.contains("SHA256:bbb"));
        assert_eq!(e.host(), Some("10.0.0.1:22"));
        assert!(!e.is_transient());
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
