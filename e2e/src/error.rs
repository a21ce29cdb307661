//! The lab's error type: every variant says what was wrong and what to do.

use std::path::PathBuf;

/// Why a lab operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Something the lab needs on the runner is missing.
    #[error("the lab cannot run here: {what}; {fix}")]
    Prerequisite {
        /// What is missing.
        what: String,
        /// What to do about it.
        fix: String,
    },
    /// The configuration was rejected before anything was created.
    #[error("invalid lab configuration: {0}")]
    Config(String),
    /// A program the lab ran failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line, for the reader to rerun.
        command: String,
        /// Exit status as text.
        status: String,
        /// What it wrote on stderr (trimmed).
        stderr: String,
    },
    /// A program could not even be started.
    #[error("cannot run `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What the lab was doing.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The state file could not be read or written.
    #[error("lab state file {path}: {message}")]
    State {
        /// The state file.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// A lab with this name is already up.
    #[error("lab `{0}` is already up (state in {1}); run `lab down --name {0}` first")]
    AlreadyUp(String, PathBuf),
    /// No lab with this name is up.
    #[error("lab `{0}` is not up (no state file {1}); run `lab up` first")]
    NotUp(String, PathBuf),
    /// A host name that this lab does not have.
    #[error("lab has no host `{0}`")]
    NoSuchHost(String),
    /// The host is not running (powered off or crashed).
    #[error("host `{0}` is not running; start it first")]
    HostDown(String),
    /// Something did not happen within its deadline.
    #[error("timed out after {seconds:.0} s waiting for {what}")]
    Timeout {
        /// What the lab waited for.
        what: String,
        /// How long it waited.
        seconds: f64,
    },
    /// No free address is left on the lab's subnet.
    #[error("no free address left on the lab subnet {0}")]
    AddressesExhausted(String),
}

/// Shorthand for the lab's results.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

impl LabError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        LabError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
