//! Waiting until something on the host answers: etcd's health, the API's
//! /readyz, a Node turning Ready.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use super::error::{Failure, reasons};
use super::systemd::journal_tail;
use super::{Check, Progress, Task};
use crate::host::Host;
use crate::ssh::ExecOptions;

/// Polls `probe` (a command; exit 0 = healthy) until it succeeds or time runs out.
#[derive(Debug, Clone)]
pub struct WaitUntil {
    id: String,
    describe: String,
    probe: String,
    timeout: Duration,
    interval: Duration,
    unit: Option<String>,
}

impl WaitUntil {
    /// Waits at most `timeout` for `probe` to exit 0.
    pub fn new(
        id: impl Into<String>,
        describe: impl Into<String>,
        probe: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        WaitUntil {
            id: id.into(),
            describe: describe.into(),
            probe: probe.into(),
            timeout,
            interval: Duration::from_millis(500),
            unit: None,
        }
    }

    /// Names the unit whose journal explains a timeout.
    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = Some(unit.into());
        self
    }

    /// Pause between probes.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    fn probe_timeout(&self) -> Duration {
        self.interval.max(Duration::from_secs(10))
    }
}

fn last_line(text: &str) -> &str {
    text.trim().lines().last().unwrap_or_default()
}

impl Task for WaitUntil {
    fn id(&self) -> &str {
        &self.id
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn check<'a>(&'a self, host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            let out = host
                .exec(
                    &self.probe,
                    ExecOptions::sudo().with_timeout(self.probe_timeout()),
                )
                .await;
            Ok(match out {
                Ok(o) if o.status.success() => Check::UpToDate,
                Ok(_) => Check::apply("not answering yet"),
                // A probe that hangs is a probe that fails; the wait decides.
                Err(crate::ssh::SshError::Timeout { .. }) => Check::apply("probe timed out"),
                Err(e) => return Err(e.into()),
            })
        })
    }

    fn apply<'a>(
        &'a self,
        host: &'a dyn Host,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let started = Instant::now();
            loop {
                let out = host
                    .exec(
                        &self.probe,
                        ExecOptions::sudo().with_timeout(self.probe_timeout()),
                    )
                    .await;
                let last = match out {
                    Ok(o) if o.status.success() => return Ok(()),
                    Ok(o) => {
                        let err = o.stderr_text();
                        if err.trim().is_empty() {
                            last_line(&o.stdout_text()).to_owned()
                        } else {
                            last_line(&err).to_owned()
                        }
                    }
                    Err(crate::ssh::SshError::Timeout { .. }) => "the probe timed out".to_owned(),
                    Err(e) => return Err(e.into()),
                };
                let waited = started.elapsed();
                if waited >= self.timeout {
                    let mut message = format!(
                        "not ready after {:.0} s (probe `{}`: {})",
                        waited.as_secs_f64(),
                        self.probe,
                        if last.is_empty() { "no output" } else { &last }
                    );
                    if let Some(unit) = &self.unit {
                        message.push_str(&format!(
                            "\n--- journalctl -u {unit} ---\n{}",
                            journal_tail(host, unit).await
                        ));
                    }
                    return Err(Failure::new(reasons::NOT_HEALTHY, message));
                }
                progress(format!(
                    "{:.0}s{}",
                    waited.as_secs_f64(),
                    if last.is_empty() {
                        String::new()
                    } else {
                        format!(": {last}")
                    }
                ));
                tokio::time::sleep(self.interval).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::{FakeHost, output};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn waits_until_the_probe_succeeds() {
        let host = FakeHost::new("h:22");
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        host.respond(move |cmd| {
            (cmd == "probe").then(|| {
                if c.fetch_add(1, Ordering::SeqCst) < 2 {
                    output(1, "connection refused")
                } else {
                    output(0, "ok")
                }
            })
        });
        let task = WaitUntil::new("x/wait", "wait", "probe", Duration::from_secs(5))
            .interval(Duration::from_millis(1));
        task.apply(&host, &|_| {}).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_timeout_names_the_probe_and_the_journal() {
        let host = FakeHost::new("h:22");
        host.on("probe", output(1, "connection refused"));
        host.on(
            "journalctl",
            output(0, "listen tcp :2379: bind: address in use"),
        );
        let task = WaitUntil::new("etcd/health", "wait", "probe", Duration::from_millis(1))
            .interval(Duration::from_millis(1))
            .unit("etcd.service");
        let err = task.apply(&host, &|_| {}).await.unwrap_err();
        assert_eq!(err.reason, reasons::NOT_HEALTHY);
        assert!(
            err.message.contains("connection refused"),
            "{}",
            err.message
        );
        assert!(err.message.contains("address in use"), "{}", err.message);
    }
}
