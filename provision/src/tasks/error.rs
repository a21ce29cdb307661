//! How a task fails: a stable reason, a message that says what to do, and
//! where (host and task) once the runner has seen it.

use std::fmt;

use crate::ssh::SshError;

/// Stable reasons tasks use; SSH failures keep [`SshError::reason`].
pub mod reasons {
    /// A command that should have succeeded did not.
    pub const COMMAND_FAILED: &str = "CommandFailed";
    /// A service did not become healthy in time.
    pub const NOT_HEALTHY: &str = "NotHealthy";
    /// A file on the host does not hold what was written or expected.
    pub const CONTENT_MISMATCH: &str = "ContentMismatch";
    /// An artifact's sha256 differs from the bundle's manifest.
    pub const ARTIFACT_HASH_MISMATCH: &str = "ArtifactHashMismatch";
    /// The host answered something a task could not understand.
    pub const UNEXPECTED_OUTPUT: &str = "UnexpectedOutput";
    /// The run was cancelled.
    pub const CANCELLED: &str = "Cancelled";
    /// A configuration failed its program's own validation; the running
    /// one was left in place.
    pub const CONFIG_INVALID: &str = "ConfigInvalid";
}

/// Why a task failed, before the runner adds host and task.
#[derive(Debug)]
pub struct Failure {
    /// Stable, CamelCase: an event reason, a condition reason, a metric label.
    pub reason: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// The SSH error underneath, when there was one (boxed: it is large and
    /// every task result carries this type).
    pub source: Option<Box<SshError>>,
}

impl Failure {
    /// A failure with this reason and message.
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Failure {
            reason,
            message: message.into(),
            source: None,
        }
    }

    /// The same failure with more words in front.
    pub fn context(mut self, what: impl fmt::Display) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

impl From<SshError> for Failure {
    fn from(e: SshError) -> Self {
        Failure {
            reason: e.reason(),
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A task that failed on a host.
#[derive(Debug, thiserror::Error)]
#[error("{host}: {task}: {message}")]
pub struct TaskError {
    /// `address:port` of the host.
    pub host: String,
    /// The task's id.
    pub task: String,
    /// Stable reason (see [`reasons`] and [`SshError::reason`]).
    pub reason: &'static str,
    /// What went wrong and what to do.
    pub message: String,
    /// The SSH error underneath, when there was one.
    #[source]
    pub source: Option<Box<SshError>>,
}

impl TaskError {
    /// Places `failure` on `host` in task `task`.
    pub fn new(host: &str, task: &str, failure: Failure) -> Self {
        TaskError {
            host: host.to_owned(),
            task: task.to_owned(),
            reason: failure.reason,
            message: failure.message,
            source: failure.source,
        }
    }

    /// Whether trying again later could help (network trouble).
    pub fn is_transient(&self) -> bool {
        self.source.as_ref().is_some_and(|e| e.is_transient())
    }
}
