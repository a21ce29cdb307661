//! A task made of two shell commands: one that says whether the host is
//! already right (exit 0), one that makes it so.

use std::time::Duration;

use futures::future::BoxFuture;

use super::error::Failure;
use super::{Check, Progress, Task};
use crate::host::Host;
use crate::ssh::ExecOptions;

/// A command-line task, for the steps that are one command each.
#[derive(Debug, Clone)]
pub struct Shell {
    id: String,
    describe: String,
    check: Option<String>,
    apply: String,
    why: String,
    timeout: Duration,
}

impl Shell {
    /// A task that always applies `apply` (use [`Shell::unless`] to check first).
    pub fn new(
        id: impl Into<String>,
        describe: impl Into<String>,
        apply: impl Into<String>,
    ) -> Self {
        Shell {
            id: id.into(),
            describe: describe.into(),
            check: None,
            apply: apply.into(),
            why: "always runs".into(),
            timeout: Duration::from_secs(300),
        }
    }

    /// Skips the task when `check` exits 0; otherwise `why` says what is missing.
    pub fn unless(mut self, check: impl Into<String>, why: impl Into<String>) -> Self {
        self.check = Some(check.into());
        self.why = why.into();
        self
    }

    /// Gives the apply command at most `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Task for Shell {
    fn id(&self) -> &str {
        &self.id
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn check<'a>(&'a self, host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            let Some(check) = &self.check else {
                return Ok(Check::apply(self.why.clone()));
            };
            let out = host
                .exec(
                    check,
                    ExecOptions::sudo().with_timeout(Duration::from_secs(60)),
                )
                .await?;
            Ok(if out.status.success() {
                Check::UpToDate
            } else {
                Check::apply(self.why.clone())
            })
        })
    }

    fn apply<'a>(
        &'a self,
        host: &'a dyn Host,
        _progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            host.run_with(&self.apply, ExecOptions::sudo().with_timeout(self.timeout))
                .await?;
            Ok(())
        })
    }
}
