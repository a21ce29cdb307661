//! What can stop [`super::gather`] from producing facts. A host that fails
//! checks is not an error: that is a [`super::Report`] with failures.

use crate::ssh::{ExitStatus, SshError};

/// Why the facts of a host could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The SSH engine failed (connection, timeout...); its message names
    /// the host and the step.
    #[error("preflight: {0}")]
    Ssh(#[from] SshError),
    /// The script itself failed.
    #[error(
        "{host}: the preflight script failed ({status}): {stderr}; run it by hand to see where \
         (`kubeseed_provision::preflight::SCRIPT`, with `sh -x`): it needs a POSIX sh"
    )]
    ScriptFailed {
        /// The host.
        host: String,
        /// How it ended.
        status: ExitStatus,
        /// The end of its standard error.
        stderr: String,
    },
    /// The script's output could not be read.
    #[error(
        "{host}: the preflight output cannot be read: {reason}; check that the host's `sh` runs \
         POSIX scripts and that nothing (a login banner in .bashrc, a sudo lecture) writes to \
         standard output"
    )]
    UnexpectedOutput {
        /// The host.
        host: String,
        /// What was wrong.
        reason: String,
    },
}

impl PreflightError {
    /// A short stable name for events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            PreflightError::Ssh(e) => e.reason(),
            PreflightError::ScriptFailed { .. } => "PreflightScriptFailed",
            PreflightError::UnexpectedOutput { .. } => "PreflightUnexpectedOutput",
        }
    }

    /// Whether trying again later could help.
    pub fn is_transient(&self) -> bool {
        match self {
            PreflightError::Ssh(e) => e.is_transient(),
            _ => false,
        }
    }
}
