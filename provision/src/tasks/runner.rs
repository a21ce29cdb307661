//! Runs a plan's tasks in order on one host: check, apply when needed,
//! report, stop at the first failure.

use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::Instrument as _;

use super::error::{Failure, TaskError, reasons};
use super::{Check, Task};
use crate::host::Host;
use crate::ssh::{CancellationToken, FileSpec};

/// Apply changes, or only look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Check, then apply what differs.
    Apply,
    /// Check only; report what would change.
    DryRun,
}

/// What happened to one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum Outcome {
    /// The host already was as the task wants it.
    Unchanged,
    /// The task changed the host.
    Changed,
    /// Dry run: the task would change the host.
    WouldChange {
        /// What differs.
        why: String,
    },
}

/// Progress of a run, for a person or a status writer.
#[derive(Debug, Clone)]
pub enum Event {
    /// A task is starting (1-based `index` of `total`).
    Started {
        /// Position in the plan.
        index: usize,
        /// Tasks in the plan.
        total: usize,
        /// The task's id.
        id: String,
        /// What it does.
        describe: String,
    },
    /// A long task says what it is waiting for.
    Progress {
        /// The task's id.
        id: String,
        /// What it is doing now.
        message: String,
    },
    /// A task ended well.
    Finished {
        /// The task's id.
        id: String,
        /// What it did.
        outcome: Outcome,
        /// How long it took.
        elapsed: Duration,
    },
    /// A task failed; the run stops.
    Failed {
        /// The task's id.
        id: String,
        /// Stable reason.
        reason: &'static str,
        /// The error's message.
        message: String,
        /// How long it took.
        elapsed: Duration,
    },
}

/// One task's record in a [`Report`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRecord {
    /// The task's id.
    pub id: String,
    /// What it does.
    pub describe: String,
    /// What it did.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Seconds it took.
    pub seconds: f64,
}

/// What a whole run did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Every task, in order.
    pub tasks: Vec<TaskRecord>,
    /// Seconds the run took.
    pub seconds: f64,
}

impl Report {
    /// How many tasks changed (or would change) the host.
    pub fn changed(&self) -> usize {
        self.tasks
            .iter()
            .filter(|t| t.outcome != Outcome::Unchanged)
            .count()
    }

    /// Appends another run's tasks (a plan run in several stages).
    pub fn extend(&mut self, other: Report) {
        self.tasks.extend(other.tasks);
        self.seconds += other.seconds;
    }
}

/// What the host's journal file holds: which plan ran, which tasks are done,
/// and where it stopped. A person (or the next run) can read where a host is.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Journal<'a> {
    plan: &'a str,
    done: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    running: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<JournalFailure<'a>>,
    updated_unix: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct JournalFailure<'a> {
    task: &'a str,
    reason: &'a str,
    message: &'a str,
}

/// Where the journals live on a host.
pub const JOURNAL_DIR: &str = "/var/lib/kubeseed/journal";

type Listener<'a> = Box<dyn Fn(&Event) + Send + Sync + 'a>;

/// Executes tasks on one host.
pub struct Runner<'a> {
    host: &'a dyn Host,
    mode: Mode,
    listener: Listener<'a>,
    cancel: CancellationToken,
    journal: Option<String>,
}

impl std::fmt::Debug for Runner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("host", &self.host.name())
            .field("mode", &self.mode)
            .field("journal", &self.journal)
            .finish()
    }
}

impl<'a> Runner<'a> {
    /// A runner applying changes on `host`, reporting nothing.
    pub fn new(host: &'a dyn Host) -> Self {
        Runner {
            host,
            mode: Mode::Apply,
            listener: Box::new(|_| {}),
            cancel: CancellationToken::new(),
            journal: None,
        }
    }

    /// Apply or dry run.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Calls `listener` with every event.
    pub fn on_event(mut self, listener: impl Fn(&Event) + Send + Sync + 'a) -> Self {
        self.listener = Box::new(listener);
        self
    }

    /// Stops before the next task once `cancel` fires.
    pub fn cancel_with(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Records progress on the host in `JOURNAL_DIR/<plan>.json` (apply mode only).
    pub fn journal(mut self, plan: &str) -> Self {
        self.journal = Some(plan.to_owned());
        self
    }

    /// Runs `tasks` in order; stops at the first failure.
    pub async fn run(&self, tasks: &[Box<dyn Task>]) -> Result<Report, TaskError> {
        let started = Instant::now();
        let mut report = Report::default();
        let mut done: Vec<String> = Vec::new();
        let total = tasks.len();
        for (i, task) in tasks.iter().enumerate() {
            let id = task.id().to_owned();
            if self.cancel.is_cancelled() {
                let failure = Failure::new(reasons::CANCELLED, "the run was cancelled");
                return Err(TaskError::new(self.host.name(), &id, failure));
            }
            let describe = task.describe();
            (self.listener)(&Event::Started {
                index: i + 1,
                total,
                id: id.clone(),
                describe: describe.clone(),
            });
            self.write_journal(&done, Some(&id), None).await;
            let t0 = Instant::now();
            let span = tracing::info_span!("task", host = %self.host.name(), task = %id);
            let result = self.one(task.as_ref()).instrument(span).await;
            let elapsed = t0.elapsed();
            match result {
                Ok(outcome) => {
                    (self.listener)(&Event::Finished {
                        id: id.clone(),
                        outcome: outcome.clone(),
                        elapsed,
                    });
                    report.tasks.push(TaskRecord {
                        id: id.clone(),
                        describe,
                        outcome,
                        seconds: elapsed.as_secs_f64(),
                    });
                    done.push(id);
                }
                Err(failure) => {
                    (self.listener)(&Event::Failed {
                        id: id.clone(),
                        reason: failure.reason,
                        message: failure.message.clone(),
                        elapsed,
                    });
                    self.write_journal(
                        &done,
                        None,
                        Some(JournalFailure {
                            task: &id,
                            reason: failure.reason,
                            message: &failure.message,
                        }),
                    )
                    .await;
                    return Err(TaskError::new(self.host.name(), &id, failure));
                }
            }
        }
        self.write_journal(&done, None, None).await;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    async fn one(&self, task: &dyn Task) -> Result<Outcome, Failure> {
        let check = match task.check(self.host).await {
            // A dry run goes on: a check often needs what earlier tasks
            // would have made (a program, the API), so it cannot tell yet.
            Err(failure) if self.mode == Mode::DryRun => {
                return Ok(Outcome::WouldChange {
                    why: format!("cannot check before the earlier steps ({})", failure.reason),
                });
            }
            other => other?,
        };
        match check {
            Check::UpToDate => Ok(Outcome::Unchanged),
            Check::Apply { why } if self.mode == Mode::DryRun => Ok(Outcome::WouldChange { why }),
            Check::Apply { why } => {
                tracing::info!(why, "applying");
                let id = task.id().to_owned();
                let progress = |message: String| {
                    (self.listener)(&Event::Progress {
                        id: id.clone(),
                        message,
                    })
                };
                tokio::select! {
                    r = task.apply(self.host, &progress) => r?,
                    _ = self.cancel.cancelled() => {
                        return Err(Failure::new(reasons::CANCELLED, "the run was cancelled"));
                    }
                }
                Ok(Outcome::Changed)
            }
        }
    }

    /// Best effort: a journal that cannot be written must not fail the plan
    /// (the tasks themselves are the truth; the journal says where a host is).
    async fn write_journal(
        &self,
        done: &[String],
        running: Option<&str>,
        failed: Option<JournalFailure<'_>>,
    ) {
        let (Some(plan), Mode::Apply) = (&self.journal, self.mode) else {
            return;
        };
        let journal = Journal {
            plan,
            done,
            running,
            failed,
            updated_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
        };
        let Ok(text) = serde_json::to_vec_pretty(&journal) else {
            return;
        };
        let path = format!("{JOURNAL_DIR}/{plan}.json");
        if let Err(error) = self
            .host
            .write_file(&text, &path, &FileSpec::mode(0o644))
            .await
        {
            tracing::warn!(%error, path, "cannot update the host's journal");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::FakeHost;
    use crate::tasks::Progress;
    use futures::future::BoxFuture;
    use std::sync::Mutex;

    /// A task whose check answers `check` and whose apply fails when `fail`.
    #[derive(Debug)]
    struct Step {
        id: &'static str,
        check: Result<bool, &'static str>,
        fail: bool,
        applied: Mutex<bool>,
    }

    fn step(id: &'static str, check: Result<bool, &'static str>, fail: bool) -> Box<dyn Task> {
        Box::new(Step {
            id,
            check,
            fail,
            applied: Mutex::new(false),
        })
    }

    impl Task for Step {
        fn id(&self) -> &str {
            self.id
        }
        fn describe(&self) -> String {
            self.id.to_owned()
        }
        fn check<'a>(&'a self, _host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
            let r = match self.check {
                Ok(true) => Ok(Check::UpToDate),
                Ok(false) => Ok(Check::apply("differs")),
                Err(reason) => Err(Failure::new(reason, "cannot look")),
            };
            Box::pin(async move { r })
        }
        fn apply<'a>(
            &'a self,
            _host: &'a dyn Host,
            _progress: Progress<'a>,
        ) -> BoxFuture<'a, Result<(), Failure>> {
            if let Ok(mut a) = self.applied.lock() {
                *a = true;
            }
            let fail = self.fail;
            Box::pin(async move {
                if fail {
                    Err(Failure::new(reasons::NOT_HEALTHY, "broke"))
                } else {
                    Ok(())
                }
            })
        }
    }

    #[tokio::test]
    async fn applies_what_differs_and_stops_at_the_first_failure() {
        let host = FakeHost::new("h:22");
        let tasks = vec![
            step("a", Ok(true), false),
            step("b", Ok(false), false),
            step("c", Ok(false), true),
            step("d", Ok(false), false),
        ];
        let seen = Mutex::new(Vec::new());
        let err = Runner::new(&host)
            .journal("test")
            .on_event(|e| {
                if let Event::Finished { id, outcome, .. } = e {
                    seen.lock().unwrap().push((id.clone(), outcome.clone()));
                }
            })
            .run(&tasks)
            .await
            .unwrap_err();
        assert_eq!((err.task.as_str(), err.reason), ("c", reasons::NOT_HEALTHY));
        assert_eq!(err.host, "h:22");
        assert_eq!(
            *seen.lock().unwrap(),
            [
                ("a".to_owned(), Outcome::Unchanged),
                ("b".to_owned(), Outcome::Changed)
            ]
        );
        let journal = host.file("/var/lib/kubeseed/journal/test.json").unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&journal.contents).unwrap();
        assert_eq!(doc["done"], serde_json::json!(["a", "b"]));
        assert_eq!(doc["failed"]["task"], "c");
    }

    #[tokio::test]
    async fn a_dry_run_changes_nothing_and_goes_past_checks_it_cannot_make() {
        let host = FakeHost::new("h:22");
        let tasks = vec![
            step("a", Ok(false), true),
            step("b", Err(reasons::COMMAND_FAILED), false),
            step("c", Ok(true), false),
        ];
        let report = Runner::new(&host)
            .mode(Mode::DryRun)
            .journal("test")
            .run(&tasks)
            .await
            .unwrap();
        assert_eq!(report.tasks.len(), 3);
        assert_eq!(report.changed(), 2);
        assert!(
            host.calls().is_empty(),
            "a dry run wrote or ran: {:?}",
            host.calls()
        );
    }
}
