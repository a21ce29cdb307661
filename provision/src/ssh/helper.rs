//! Privileged helper scripts: the short `sh` scripts behind every file
//! operation, run as root (through `sudo -n` for other logins), and their
//! failures turned into typed errors.

use super::error::{SshError, Step};
use super::exec::{ExecOptions, ExecOutput, tail};
use super::session::Session;
use super::shell;

impl Session {
    /// `script` as it must run to have root's rights.
    pub(crate) fn privileged(&self, script: &str) -> String {
        if self.needs_sudo() {
            shell::sudo(script)
        } else {
            script.to_owned()
        }
    }

    /// Maps an I/O error to [`SshError::Io`] for this host.
    pub(crate) fn io_error(
        &self,
        step: Step,
        what: impl Into<String>,
    ) -> impl FnOnce(std::io::Error) -> SshError {
        let host = self.host().to_owned();
        let what = what.into();
        move |source| SshError::Io {
            host,
            step,
            what,
            source,
        }
    }

    /// A [`SshError::Remote`] for this host.
    pub(crate) fn remote_error(&self, step: Step, reason: impl Into<String>) -> SshError {
        SshError::Remote {
            host: self.host().to_owned(),
            step,
            reason: reason.into(),
        }
    }

    /// The error for a helper that did not exit 0: sudo's refusal when that
    /// is what happened, otherwise the status and the end of stderr.
    pub(crate) fn remote_failure(&self, step: Step, out: &ExecOutput) -> SshError {
        if self.needs_sudo()
            && let Some(e) = self.sudo_error(out, step)
        {
            return e;
        }
        self.remote_error(step, format!("{}: {}", out.status, tail(&out.stderr, 2000)))
    }

    /// Runs a privileged helper script and requires exit 0.
    pub(crate) async fn helper(&self, script: &str, step: Step) -> Result<ExecOutput, SshError> {
        self.helper_with(script, step, ExecOptions::default()).await
    }

    /// [`Session::helper`] with other options (e.g. how much output to keep).
    pub(crate) async fn helper_with(
        &self,
        script: &str,
        step: Step,
        opts: ExecOptions,
    ) -> Result<ExecOutput, SshError> {
        // Wrapped in sudo here, not through `opts.sudo`, so that the refusal
        // check below sees the step.
        let out = self.exec_unlimited(&self.privileged(script), opts).await?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(self.remote_failure(step, &out))
        }
    }

    /// Cleanup after a failure: the first error is what the caller reports,
    /// so this one is only logged.
    pub(crate) async fn helper_best_effort(&self, script: &str, step: Step) {
        if let Err(e) = self.helper(script, step).await {
            tracing::warn!(host = %self.host(), error = %e, "cleanup failed");
        }
    }
}
