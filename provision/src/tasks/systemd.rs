//! A systemd service that runs with the configuration it was given.
//!
//! "Running" is not enough: after its files changed, a service must be
//! restarted, also when the run that changed them was killed before the
//! restart. So the task records, on the host, a digest of everything the
//! service reads (unit, configuration, certificates) once it has restarted
//! with them; a service whose recorded digest differs from the wanted one is
//! restarted on the next run.
//!
//! A service that reloads gracefully (a proxy, keepalived) can name the
//! inputs a reload applies ([`SystemdService::reloading`]): a change to
//! those only reloads it, so established connections and a held VIP
//! survive; its unit or anything else still restarts it.

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
    reload_digest: Option<String>,
}

/// What a service needs, from what its check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    Reload,
    Restart,
}

impl SystemdService {
    /// `unit` (e.g. `etcd.service`) must run with inputs hashing to `digest`
    /// (see [`crate::files::HostFiles::digest`]).
    pub fn new(id: impl Into<String>, unit: impl Into<String>, digest: impl Into<String>) -> Self {
        SystemdService {
            id: id.into(),
            unit: unit.into(),
            digest: digest.into(),
            reload_digest: None,
        }
    }

    /// Inputs hashing to `digest` are applied by `systemctl reload` when the
    /// service is running; `new`'s digest covers what needs a restart.
    pub fn reloading(mut self, digest: impl Into<String>) -> Self {
        self.reload_digest = Some(digest.into());
        self
    }

    fn digest_path(&self) -> String {
        format!("{UNIT_STATE_DIR}/{}.sha256", self.unit)
    }

    fn reload_digest_path(&self) -> String {
        format!("{UNIT_STATE_DIR}/{}.reload.sha256", self.unit)
    }

    /// What the service needs, and why, from one look at the host.
    async fn look(&self, host: &dyn Host) -> Result<(Needs, String), Failure> {
        let unit = quote(&self.unit);
        let script = format!(
            "systemctl is-enabled {unit} 2>/dev/null || true; systemctl is-active {unit} 2>/dev/null || true; cat {} 2>/dev/null || echo none; cat {} 2>/dev/null || echo none",
            quote(&self.digest_path()),
            quote(&self.reload_digest_path())
        );
        let out = host.run(&script).await?;
        let text = out.stdout_text();
        let mut lines = text.lines().map(str::trim);
        let mut next = || lines.next().unwrap_or_default().to_owned();
        let (enabled, active, digest, reload) = (next(), next(), next(), next());
        Ok(if enabled != "enabled" {
            (Needs::Restart, format!("{} is {enabled}", self.unit))
        } else if active != "active" {
            (Needs::Restart, format!("{} is {active}", self.unit))
        } else if digest != self.digest {
            (
                Needs::Restart,
                format!("{} runs older configuration", self.unit),
            )
        } else if self.reload_digest.as_ref().is_some_and(|d| *d != reload) {
            (
                Needs::Reload,
                format!("{} runs an older configuration (reload)", self.unit),
            )
        } else {
            (Needs::Nothing, String::new())
        })
    }

    /// Records that the service now runs its wanted inputs.
    async fn record(&self, host: &dyn Host, restarted: bool) -> Result<(), Failure> {
        let mut record = format!("install -d -m 0755 {}", quote(UNIT_STATE_DIR));
        if restarted {
            record.push_str(&format!(
                " && printf '%s\\n' {} > {}",
                quote(&self.digest),
                quote(&self.digest_path())
            ));
        }
        if let Some(reload) = &self.reload_digest {
            record.push_str(&format!(
                " && printf '%s\\n' {} > {}",
                quote(reload),
                quote(&self.reload_digest_path())
            ));
        }
        host.run(&record).await?;
        Ok(())
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
            let (needs, why) = self.look(host).await?;
            Ok(match needs {
                Needs::Nothing => Check::UpToDate,
                Needs::Reload | Needs::Restart => Check::apply(why),
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
            let (needs, _) = self.look(host).await?;
            let (verb, script) = match needs {
                Needs::Nothing => return Ok(()),
                Needs::Reload => ("reload", format!("systemctl reload {unit}")),
                Needs::Restart => (
                    "restart",
                    format!(
                        "systemctl daemon-reload && systemctl enable {unit} 2>&1 && systemctl restart {unit}"
                    ),
                ),
            };
            progress(format!("{verb} {}", self.unit));
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
                        "{} did not {verb} ({}): {}\n--- journalctl -u {} ---\n{journal}",
                        self.unit,
                        out.status,
                        out.stderr_text().trim(),
                        self.unit
                    ),
                ));
            }
            self.record(host, needs == Needs::Restart).await
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
    async fn a_reloadable_input_reloads_and_anything_else_restarts() {
        let task = SystemdService::new("lb/proxy", "p.service", "unit1").reloading("cfg2");
        let host = FakeHost::new("h:22");
        host.on("is-enabled", output(0, "enabled\nactive\nunit1\ncfg1\n"));
        task.apply(&host, &|_| {}).await.unwrap();
        let cmds = host.commands();
        assert!(
            cmds.iter()
                .any(|c| c == "systemctl reload 'p.service'" || c == "systemctl reload p.service"),
            "{cmds:?}"
        );
        assert!(!cmds.iter().any(|c| c.contains("restart")), "{cmds:?}");
        let host = FakeHost::new("h:22");
        host.on("is-enabled", output(0, "enabled\nactive\nunit0\ncfg2\n"));
        task.apply(&host, &|_| {}).await.unwrap();
        assert!(
            host.commands()
                .iter()
                .any(|c| c.contains("systemctl restart"))
        );
        let host = FakeHost::new("h:22");
        host.on("is-enabled", output(0, "enabled\nactive\nunit1\ncfg2\n"));
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
