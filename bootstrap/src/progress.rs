//! What a person sees while a plan runs: one line per task with its result
//! and time, a spinner while a task waits, and a summary at the end.
//!
//! On a terminal the current line is redrawn in place; in a log (CI, a pipe)
//! each task gets one line and waits print at most every few seconds.

use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kubeseed_provision::tasks::{Event, Outcome, Report};

const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// In a log, a waiting task says what it waits for this often.
const LOG_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
struct Current {
    label: String,
    started: Option<Instant>,
    message: String,
    last_logged: Option<Instant>,
}

/// Prints a run's events to stderr.
#[derive(Debug, Clone)]
pub struct Printer {
    tty: bool,
    current: Arc<Mutex<Current>>,
}

impl Printer {
    /// A printer for stderr; starts the spinner when stderr is a terminal.
    pub fn new() -> Self {
        let printer = Printer {
            tty: std::io::stderr().is_terminal(),
            current: Arc::default(),
        };
        if printer.tty {
            let p = printer.clone();
            tokio::spawn(async move {
                let mut tick = 0usize;
                loop {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    tick += 1;
                    p.redraw(SPINNER[tick % SPINNER.len()]);
                }
            });
        }
        printer
    }

    fn redraw(&self, spin: char) {
        let Ok(cur) = self.current.lock() else { return };
        let Some(started) = cur.started else { return };
        let line = format!(
            "{} {spin} {:>4.0}s {}",
            cur.label,
            started.elapsed().as_secs_f64(),
            cur.message
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{}", truncate(&line, 110));
        let _ = err.flush();
    }

    /// Handles one event of the runner.
    pub fn event(&self, event: &Event) {
        let Ok(mut cur) = self.current.lock() else {
            return;
        };
        match event {
            Event::Started {
                index,
                total,
                describe,
                ..
            } => {
                cur.label = format!("[{index:>2}/{total}] {:<44}", truncate(describe, 44));
                cur.started = Some(Instant::now());
                cur.message.clear();
                cur.last_logged = Some(Instant::now());
            }
            Event::Progress { message, .. } => {
                cur.message = message.clone();
                if !self.tty && cur.last_logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    cur.last_logged = Some(Instant::now());
                    eprintln!("{} … {message}", cur.label);
                }
            }
            Event::Finished {
                outcome, elapsed, ..
            } => {
                let what = match outcome {
                    Outcome::Unchanged => "ok".to_owned(),
                    Outcome::Changed => "changed".to_owned(),
                    Outcome::WouldChange { why } => format!("would change: {why}"),
                };
                self.finish_line(&cur.label, &what, *elapsed);
                cur.started = None;
            }
            Event::Failed {
                reason, elapsed, ..
            } => {
                self.finish_line(&cur.label, &format!("FAILED ({reason})"), *elapsed);
                cur.started = None;
            }
        }
    }

    fn finish_line(&self, label: &str, what: &str, elapsed: Duration) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{label} {what:<10} {:>6.1}s", elapsed.as_secs_f64());
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The end-of-run summary: counts and the slowest tasks.
pub fn summary(report: &Report) -> String {
    let changed = report.changed();
    let mut slow: Vec<_> = report.tasks.iter().collect();
    slow.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    let slowest: Vec<String> = slow
        .iter()
        .take(3)
        .map(|t| format!("{} {:.1}s", t.id, t.seconds))
        .collect();
    format!(
        "{} tasks in {:.1}s: {} changed, {} already in place; slowest: {}",
        report.tasks.len(),
        report.seconds,
        changed,
        report.tasks.len() - changed,
        slowest.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeseed_provision::tasks::TaskRecord;

    #[test]
    fn the_summary_counts_and_names_the_slowest() {
        let record = |id: &str, outcome: Outcome, seconds: f64| TaskRecord {
            id: id.into(),
            describe: id.into(),
            outcome,
            seconds,
        };
        let report = Report {
            tasks: vec![
                record("a", Outcome::Unchanged, 0.1),
                record("b", Outcome::Changed, 5.0),
                record("c", Outcome::Changed, 1.0),
            ],
            seconds: 6.1,
        };
        let s = summary(&report);
        assert!(
            s.starts_with("3 tasks in 6.1s: 2 changed, 1 already in place"),
            "{s}"
        );
        assert!(s.contains("slowest: b 5.0s, c 1.0s, a 0.1s"), "{s}");
    }
}
