//! A configuration file its program validates before it replaces the one
//! in use: written beside the live file, checked by the program's own test
//! mode (`haproxy -c`, `nginx -t`, `keepalived -t`), and only then renamed
//! over it. A file that fails is removed again and never swapped in, so a
//! running service can always be reloaded with what is on disk.

use std::time::Duration;

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};

use super::error::{Failure, reasons};
use super::files::describe_files;
use super::{Check, Progress, Task};
use crate::host::Host;
use crate::ssh::shell::quote;
use crate::ssh::{ExecOptions, FileSpec};

/// How long a validator may take.
const VALIDATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Writes one configuration file that must pass `validate` first.
#[derive(Debug, Clone)]
pub struct ValidatedFile {
    id: String,
    path: String,
    contents: String,
    mode: u32,
    validate: String,
}

impl ValidatedFile {
    /// Where the candidate is written before it is validated.
    pub fn staging_path(path: &str) -> String {
        format!("{path}.kubeseed-new")
    }

    /// `path` must hold `contents` (mode `mode`); `validate` is the command
    /// line that checks a copy at [`ValidatedFile::staging_path`] and exits
    /// non-zero, with the program's message, when it is invalid.
    pub fn new(
        id: impl Into<String>,
        path: impl Into<String>,
        contents: impl Into<String>,
        mode: u32,
        validate: impl Into<String>,
    ) -> Self {
        ValidatedFile {
            id: id.into(),
            path: path.into(),
            contents: contents.into(),
            mode,
            validate: validate.into(),
        }
    }

    /// The digest a service that reads this file records (see
    /// [`super::SystemdService`]).
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.contents.as_bytes()))
    }

    async fn up_to_date(&self, host: &dyn Host) -> Result<bool, Failure> {
        let out = host
            .run(&describe_files(std::slice::from_ref(&self.path)))
            .await?;
        let want = format!("{} {:o}", self.digest(), self.mode);
        Ok(out.stdout_text().trim() == want)
    }
}

impl Task for ValidatedFile {
    fn id(&self) -> &str {
        &self.id
    }

    fn describe(&self) -> String {
        format!("validate and install {}", self.path)
    }

    fn check<'a>(&'a self, host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            Ok(if self.up_to_date(host).await? {
                Check::UpToDate
            } else {
                Check::apply(format!("{} differs", self.path))
            })
        })
    }

    fn apply<'a>(
        &'a self,
        host: &'a dyn Host,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let staged = Self::staging_path(&self.path);
            host.write_file(
                self.contents.as_bytes(),
                &staged,
                &FileSpec::mode(self.mode),
            )
            .await?;
            progress(format!("validating {staged}"));
            let out = host
                .exec(
                    &self.validate,
                    ExecOptions::sudo().with_timeout(VALIDATE_TIMEOUT),
                )
                .await?;
            if !out.status.success() {
                // Best effort: a leftover candidate is overwritten next time.
                let _ = host.remove_file(&staged).await;
                let said = format!("{}\n{}", out.stderr_text().trim(), out.stdout_text().trim());
                return Err(Failure::new(
                    reasons::CONFIG_INVALID,
                    format!(
                        "the new {} failed `{}` ({}); it was not installed, the one in use is unchanged:\n{}",
                        self.path,
                        self.validate,
                        out.status,
                        said.trim()
                    ),
                ));
            }
            host.run(&format!("mv -f {} {}", quote(&staged), quote(&self.path)))
                .await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::{Call, FakeHost, output};

    fn task() -> ValidatedFile {
        ValidatedFile::new(
            "lb/haproxy-config",
            "/etc/kubeseed/lb/haproxy.cfg",
            "global\n",
            0o644,
            "haproxy -c -f /etc/kubeseed/lb/haproxy.cfg.kubeseed-new",
        )
    }

    #[tokio::test]
    async fn a_config_that_fails_validation_is_never_swapped_in() {
        let host = FakeHost::new("h:22");
        host.on("haproxy -c", {
            let mut o = output(1, "");
            o.stderr = b"[ALERT] parsing [x:3]: unknown keyword 'bogus'".to_vec();
            o
        });
        let err = task().apply(&host, &|_| {}).await.unwrap_err();
        assert_eq!(err.reason, reasons::CONFIG_INVALID);
        assert!(
            err.message.contains("unknown keyword 'bogus'"),
            "{}",
            err.message
        );
        assert!(!host.commands().iter().any(|c| c.starts_with("mv ")));
        assert!(host.calls().contains(&Call::Remove(
            "/etc/kubeseed/lb/haproxy.cfg.kubeseed-new".into()
        )));
    }

    #[tokio::test]
    async fn a_valid_config_is_renamed_over_the_live_one() {
        let host = FakeHost::new("h:22");
        task().apply(&host, &|_| {}).await.unwrap();
        let commands = host.commands();
        let validated = commands.iter().position(|c| c.contains("haproxy -c"));
        let moved = commands.iter().position(|c| c.starts_with("mv -f"));
        assert!(validated < moved && moved.is_some(), "{commands:?}");
    }
}
