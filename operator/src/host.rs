//! The seam between the controllers and the hosts they provision.
//!
//! Controllers reach hosts only through [`HostExecutor`], so a reconcile's pure
//! steps can be unit-tested with a recording executor and the real one (the SSH
//! engine of `kubeseed-provision`) is plugged in by the binary. Until a kind's
//! provisioning issue lands, the binary plugs in [`Unwired`], which refuses every
//! call with a typed error instead of pretending to succeed.

use std::fmt;

use futures::future::BoxFuture;

/// Where a command runs: one host of one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostTarget {
    /// Address SSH connects to.
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// SSH user.
    pub user: String,
}

/// What a command left behind on the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecOutput {
    /// Everything the command wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything the command wrote to stderr.
    pub stderr: Vec<u8>,
    /// The exit status the host reported.
    pub exit_status: u32,
}

/// Why a host could not be reached or a command could not be run.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// This build of the operator has no SSH engine wired in.
    #[error("this build of the operator has no SSH engine wired in")]
    NotWired,
    /// The SSH engine reported a failure.
    #[error("{address}: {message}")]
    Ssh {
        /// The host's address.
        address: String,
        /// What the engine said.
        message: String,
    },
}

/// Runs commands on hosts. Object-safe so the [`crate::Context`] can hold any
/// implementation behind an `Arc`.
pub trait HostExecutor: Send + Sync + fmt::Debug {
    /// Runs `command` on `target` and returns its output, whatever its exit status.
    fn exec<'a>(
        &'a self,
        target: &'a HostTarget,
        command: &'a str,
    ) -> BoxFuture<'a, Result<ExecOutput, HostError>>;
}

/// The executor of a build without an SSH engine: refuses every call.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unwired;

impl HostExecutor for Unwired {
    fn exec<'a>(
        &'a self,
        _target: &'a HostTarget,
        _command: &'a str,
    ) -> BoxFuture<'a, Result<ExecOutput, HostError>> {
        Box::pin(async { Err(HostError::NotWired) })
    }
}

impl From<&kubeseed_crds::v1alpha1::HostSpec> for HostTarget {
    fn from(h: &kubeseed_crds::v1alpha1::HostSpec) -> Self {
        HostTarget {
            address: h.address.clone(),
            port: h.port(),
            user: h.user().to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unwired_refuses_instead_of_succeeding() {
        let target = HostTarget {
            address: "192.0.2.1".into(),
            port: 22,
            user: "root".into(),
        };
        let r = Unwired.exec(&target, "true").await;
        assert!(matches!(r, Err(HostError::NotWired)));
    }
}
