//! Check-then-apply tasks and the runner that executes a plan of them.
//!
//! A plan is a list of [`Task`]s for one host. Each task first *checks*
//! whether the host already is as it should be ([`Check::UpToDate`]) and only
//! then *applies* its change, so running a plan twice changes nothing the
//! second time, and a run killed half-way is finished by running it again.
//! The [`Runner`] executes tasks in order, reports progress as [`Event`]s,
//! stops at the first failure and returns a [`TaskError`] that names the
//! host, the task and a stable reason a condition or an exit message can use.
//! A dry run only checks.
//!
//! The building blocks here are generic (files, binaries, units, waits,
//! commands); which tasks a host gets, in which order, is decided by the plans.

mod error;
mod files;
mod runner;
mod shell;
mod systemd;
mod validated;
mod wait;

use std::fmt;

use futures::future::BoxFuture;

use crate::host::Host;

pub use error::{Failure, TaskError, reasons};
pub use files::{EnsureDirs, WriteFiles};
pub use runner::{Event, JOURNAL_DIR, Mode, Outcome, Report, Runner, TaskRecord};
pub use shell::Shell;
pub use systemd::{SystemdService, UNIT_STATE_DIR};
pub use validated::ValidatedFile;
pub use wait::WaitUntil;

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Nothing to do.
    UpToDate,
    /// The task must apply; `why` says what differs (shown by dry runs).
    Apply {
        /// What differs, in a few words.
        why: String,
    },
}

impl Check {
    /// `Apply` with this reason.
    pub fn apply(why: impl Into<String>) -> Self {
        Check::Apply { why: why.into() }
    }
}

/// [`Check::UpToDate`] when `script` exits 0 on the host, else
/// [`Check::Apply`] with `why`: the check of most tasks.
pub async fn check_exit(host: &dyn Host, script: &str, why: &str) -> Result<Check, Failure> {
    let out = host.exec(script, crate::ssh::ExecOptions::sudo()).await?;
    Ok(if out.status.success() {
        Check::UpToDate
    } else {
        Check::apply(why)
    })
}

/// What a running task may tell the person watching.
pub type Progress<'a> = &'a (dyn Fn(String) + Send + Sync);

/// One idempotent step on one host.
pub trait Task: Send + Sync + fmt::Debug {
    /// A stable identifier such as `etcd/unit`: events, the host's journal
    /// and conditions use it.
    fn id(&self) -> &str;

    /// What the task does, for a person (one line).
    fn describe(&self) -> String;

    /// Looks, changes nothing.
    fn check<'a>(&'a self, host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>>;

    /// Makes the host as the task wants it; only called after a check said
    /// [`Check::Apply`]. `progress` carries what a long wait is waiting for.
    fn apply<'a>(
        &'a self,
        host: &'a dyn Host,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>>;
}
