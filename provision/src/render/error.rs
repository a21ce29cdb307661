//! What can stop a renderer: an input that would make a broken or unsafe file.
//!
//! Every variant names the component, so a message read in `bootstrap`
//! output or a condition says where the bad value was meant to go.

use super::Component;
use crate::pki::PkiError;

/// An error from a renderer.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// An extra argument's key is not a flag name (or is a flag the
    /// component would ignore).
    #[error(
        "{component}: extra argument {name:?} is not usable: {reason}. Give the flag name \
         without `--`, in lower case letters, digits and `-` (e.g. `v` or `profiling`)"
    )]
    InvalidFlagName {
        /// The component the argument was for.
        component: Component,
        /// The key as given.
        name: String,
        /// Why it was refused.
        reason: String,
    },

    /// A flag's value cannot be written into a systemd unit.
    #[error("{component}: the value of --{flag} cannot go into a unit file: {reason}")]
    InvalidFlagValue {
        /// The component the flag was for.
        component: Component,
        /// The flag's name.
        flag: String,
        /// Why it was refused (names the offending character, not the value,
        /// which may be a credential).
        reason: String,
    },

    /// Another input is unusable (a label, a taint, a key, an address list...).
    #[error("{component}: invalid {what}: {reason}")]
    InvalidInput {
        /// The component being rendered.
        component: Component,
        /// Which input, such as `node label "a/b"`.
        what: String,
        /// Why it was refused and what would be accepted.
        reason: String,
    },

    /// The cluster description itself is unusable (a member without an
    /// address, an unparsable range).
    #[error("{component}: {source}")]
    Cluster {
        /// The component being rendered.
        component: Component,
        /// What the cluster description said.
        #[source]
        source: PkiError,
    },

    /// A serializer refused a document (a bug in kubeseed, never bad input).
    #[error("{component}: cannot serialize {what}: {reason}")]
    Serialize {
        /// The component being rendered.
        component: Component,
        /// Which document.
        what: &'static str,
        /// The serializer's complaint.
        reason: String,
    },
}

impl RenderError {
    /// A stable, CamelCase word for conditions, events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            RenderError::InvalidFlagName { .. } => "InvalidFlagName",
            RenderError::InvalidFlagValue { .. } => "InvalidFlagValue",
            RenderError::InvalidInput { .. } => "InvalidInput",
            RenderError::Cluster { .. } => "InvalidClusterSpec",
            RenderError::Serialize { .. } => "RenderFailed",
        }
    }

    /// The component whose files were being rendered.
    pub fn component(&self) -> Component {
        match self {
            RenderError::InvalidFlagName { component, .. }
            | RenderError::InvalidFlagValue { component, .. }
            | RenderError::InvalidInput { component, .. }
            | RenderError::Cluster { component, .. }
            | RenderError::Serialize { component, .. } => *component,
        }
    }

    pub(crate) fn input(
        component: Component,
        what: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        RenderError::InvalidInput {
            component,
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// The renderers' result.
pub type Result<T> = std::result::Result<T, RenderError>;

/// Attaches the component to a cluster-description error.
pub(crate) trait ClusterContext<T> {
    fn for_component(self, component: Component) -> Result<T>;
}

impl<T> ClusterContext<T> for std::result::Result<T, PkiError> {
    fn for_component(self, component: Component) -> Result<T> {
        self.map_err(|source| RenderError::Cluster { component, source })
    }
}
