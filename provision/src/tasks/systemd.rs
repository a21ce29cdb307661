//! A systemd service that runs with the configuration it was given.
//!
//! "Running" is not enough: after its files changed, a service must be
//! restarted, also when the run that changed them was killed before the
//! restart. So the task records, on the host, a digest of everything the
//! service reads (unit, configuration, certificates) once it has restarted
//! with them; a service whose recorded digest differs from the wanted one is
//! restarted on the next run.

use futures::future::BoxFuture;

use super::error::{Failure, reasons};
use super::{Check, Progress, Task};
use crate::host::Host;
use crate::ssh::ExecOptions;
use crate::ssh::shell::quote;

/// Where the digests of running services' inputs are kept on a host.
pub const UNIT_STATE_DIR: &str = "/var/lib/kubeseed/units";

/// Enables a unit and (re)starts it when it is not running its current inputs.
#[derive(Debug, Clone)]
pub struct SystemdService {
    id: String,
    unit: String,
    digest: String,
}

impl SystemdService {
    /// `unit` (e.g. `etcd.service`) must run with inputs hashing to `digest`
    /// (see [`crate::files::HostFiles::digest`]).
    pub fn new(id: impl Into<String>, unit: impl Into<String>, digest: impl Into<String>) -> Self {
        SystemdService {
            id: id.into(),
            unit: unit.into(),
            digest: digest.into(),
        }
    }

    fn digest_path(&self) -> String {
        format!("{UNIT_STATE_DIR}/{}.sha256", self.unit)
    }
}

/// The end of a unit's journal, for error messages.
pub(crate) async fn journal_tail(host: &dyn Host, unit: &str) -> String {
    let cmd = format!("journalctl -u {} -n 25 --no-pager -o cat", quote(unit));
    match host.exec(&cmd, ExecOptions::sudo()).await {
        Ok(out) => out.stdout_text().trim().to_owned(),
        Err(e) => format!("(cannot read its journal: {e})"),
    }
}

impl Task for SystemdService {
    fn id(&self) -> &str {
        &self.id
    }

    fn describe(&self) -> String {
        format!("start {}", self.unit)
    }

    fn check<'a>(&'a self, host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            let unit = quote(&self.unit);
            let script = format!(
                "systemctl is-enabled {unit} 2>/dev/null || true; systemctl is-active {unit} 2>/dev/null || true; cat {} 2>/dev/null || echo none",
                quote(&self.digest_path())
            );
            let out = host.run(&script).await?;
            let text = out.stdout_text();
            let mut lines = text.lines().map(str::trim);
            let (enabled, active, digest) = (
                lines.next().unwrap_or_default(),
                lines.next().unwrap_or_default(),
                lines.next().unwrap_or_default(),
            );
            Ok(if enabled != "enabled" {
                Check::apply(format!("{} is {enabled}", self.unit))
            } else if active != "active" {
                Check::apply(format!("{} is {active}", self.unit))
            } else if digest != self.digest {
                Check::apply(format!("{} runs older configuration", self.unit))
            } else {
                Check::UpToDate
            })
        })
    }

    fn apply<'a>(
        &'a self,
        host: &'a dyn Host,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let unit = quote(&self.unit);
            progress(format!("restarting {}", self.unit));
            let script = format!(
                "systemctl daemon-reload && systemctl enable {unit} 2>&1 && systemctl restart {unit}"
            );
            let out = host
                .exec(
                    &script,
                    ExecOptions::sudo().with_timeout(std::time::Duration::from_secs(180)),
                )
                .await?;
            if !out.status.success() {
                let journal = journal_tail(host, &self.unit).await;
                return Err(Failure::new(
                    reasons::NOT_HEALTHY,
                    format!(
                        "{} did not start ({}): {}\n--- journalctl -u {} ---\n{journal}",
                        self.unit,
                        out.status,
                        out.stderr_text().trim(),
                        self.unit
                    ),
                ));
            }
            let record = format!(
                "install -d -m 0755 {dir} && printf '%s\\n' {digest} > {path}",
                dir = quote(UNIT_STATE_DIR),
                digest = quote(&self.digest),
                path = quote(&self.digest_path())
            );
            host.run(&record).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::{FakeHost, output};

    #[tokio::test]
    async fn restarts_when_the_recorded_digest_is_stale() {
        let host = FakeHost::new("h:22");
        host.on("is-enabled", output(0, "enabled\nactive\nold\n"));
        let task = SystemdService::new("etcd/service", "etcd.service", "new");
        assert!(matches!(
            task.check(&host).await.unwrap(),
            Check::Apply { .. }
        ));
        let host = FakeHost::new("h:22");
        host.on("is-enabled", output(0, "enabled\nactive\nnew\n"));
        assert_eq!(task.check(&host).await.unwrap(), Check::UpToDate);
    }

    #[tokio::test]
    async fn a_failed_start_carries_the_journal() {
        let host = FakeHost::new("h:22");
        host.on("systemctl restart", output(1, ""));
        host.on("journalctl", output(0, "etcd: bad flag --foo\n"));
        let task = SystemdService::new("etcd/service", "etcd.service", "d");
        let err = task.apply(&host, &|_| {}).await.unwrap_err();
        assert_eq!(err.reason, reasons::NOT_HEALTHY);
        assert!(err.message.contains("bad flag --foo"), "{}", err.message);
    }
}
