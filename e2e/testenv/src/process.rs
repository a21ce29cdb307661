//! Child processes that never outlive the test that started them.
//!
//! Two exits are covered. A normal one (including a panicking test, which
//! unwinds) drops [`Supervised`], which stops the child by PID: SIGTERM, a
//! grace period, then SIGKILL, and reaps it. An abrupt one (the test binary is
//! killed, or aborts) is covered by the kernel: every child is started through
//! `setpriv --pdeathsig KILL`, so it receives SIGKILL when its parent goes.
//!
//! The parent-death signal fires when the parent *thread* exits, not the
//! process, and libtest runs each test on its own short-lived thread; a
//! control plane shared between tests would be killed as soon as the first
//! test's thread ended. So every child is spawned by one spawner thread that
//! lives as long as the process.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const SETPRIV: &str = "/usr/bin/setpriv";

/// A running child with its output going to a log file.
#[derive(Debug)]
pub(crate) struct Supervised {
    name: String,
    child: Child,
    log: PathBuf,
    exited: Option<ExitStatus>,
}

type SpawnRequest = (Command, mpsc::Sender<io::Result<Child>>);

fn spawner() -> &'static Mutex<mpsc::Sender<SpawnRequest>> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        // The sender lives in a static, so `recv` only fails at process exit.
        let spawn = std::thread::Builder::new()
            .name("testenv-spawner".into())
            .spawn(move || {
                while let Ok((mut cmd, reply)) = rx.recv() {
                    let _ = reply.send(cmd.spawn());
                }
            });
        if let Err(e) = spawn {
            tracing::error!(error = %e, "cannot start the spawner thread; children will fail to start");
        }
        Mutex::new(tx)
    })
}

fn spawn_on_spawner(cmd: Command) -> io::Result<Child> {
    let (reply_tx, reply_rx) = mpsc::channel();
    {
        let tx = spawner()
            .lock()
            .map_err(|_| io::Error::other("testenv spawner lock poisoned"))?;
        tx.send((cmd, reply_tx))
            .map_err(|_| io::Error::other("testenv spawner thread is gone"))?;
    }
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("testenv spawner thread dropped the request"))?
}

/// Builds the command line: `setpriv --pdeathsig KILL -- program args...`
/// when setpriv is installed (util-linux), else the program alone.
fn command_line(program: &Path, args: &[OsString], have_setpriv: bool) -> Command {
    if have_setpriv {
        let mut cmd = Command::new(SETPRIV);
        cmd.args(["--pdeathsig", "KILL", "--"])
            .arg(program)
            .args(args);
        cmd
    } else {
        let mut cmd = Command::new(program);
        cmd.args(args);
        cmd
    }
}

impl Supervised {
    /// Starts `program` with `args`, stdout and stderr appended to `log`.
    pub(crate) fn spawn(
        name: &str,
        program: &Path,
        args: &[OsString],
        log: PathBuf,
    ) -> io::Result<Self> {
        let have_setpriv = Path::new(SETPRIV).is_file();
        if !have_setpriv {
            tracing::warn!(
                "{SETPRIV} not found (package util-linux): {name} would outlive a killed test process"
            );
        }
        let out = File::options().create(true).append(true).open(&log)?;
        let err = out.try_clone()?;
        let mut cmd = command_line(program, args, have_setpriv);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = spawn_on_spawner(cmd).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot start {name} ({}): {e}", program.display()),
            )
        })?;
        tracing::debug!(name, pid = child.id(), log = %log.display(), "started");
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
            exited: None,
        })
    }

    /// The name it was started under (for messages).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The child's PID.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Path of the log file holding its stdout and stderr.
    pub(crate) fn log(&self) -> &Path {
        &self.log
    }

    /// The exit status if the child has already exited (it is reaped then).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// Stops the child: SIGTERM, up to `grace` for it to exit, then SIGKILL.
    /// Always reaps it. Idempotent.
    pub(crate) fn stop(&mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
        if let Err(e) = kill(pid, Signal::SIGTERM) {
            tracing::warn!(name = %self.name, %pid, error = %e, "SIGTERM failed");
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                tracing::debug!(name = %self.name, %pid, "stopped by SIGTERM");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        tracing::debug!(name = %self.name, %pid, "still running after {grace:?}; SIGKILL");
        // Child::kill sends SIGKILL to this PID, which is still ours (not
        // reaped), so it cannot hit a recycled PID.
        let _ = self.child.kill();
        self.exited = self.child.wait().ok();
    }

    /// The last `lines` lines of the log, for error messages.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// The last `lines` lines of a file (empty when unreadable).
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_in_setpriv_when_available() {
        let cmd = command_line(Path::new("/bin/etcd"), &["--x".into()], true);
        assert_eq!(cmd.get_program(), SETPRIV);
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(args, ["--pdeathsig", "KILL", "--", "/bin/etcd", "--x"]);
        let cmd = command_line(Path::new("/bin/etcd"), &["--x".into()], false);
        assert_eq!(cmd.get_program(), "/bin/etcd");
    }

    #[test]
    fn tail_keeps_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        std::fs::write(&p, "a\nb\nc\n").unwrap();
        assert_eq!(log_tail(&p, 2), "b\nc");
        assert_eq!(log_tail(&p, 10), "a\nb\nc");
        assert_eq!(log_tail(&dir.path().join("none"), 3), "");
    }

    #[test]
    fn stop_terminates_and_reaps_by_pid() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Supervised::spawn(
            "sleep",
            Path::new("/bin/sleep"),
            &["600".into()],
            dir.path().join("sleep.log"),
        )
        .unwrap();
        let pid = child.pid();
        assert!(child.exited().is_none());
        let started = Instant::now();
        child.stop(Duration::from_secs(5));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "SIGTERM should suffice"
        );
        assert!(child.exited().is_some());
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} not reaped"
        );
    }

    #[test]
    fn sigkill_after_grace_when_sigterm_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Supervised::spawn(
            "stubborn",
            Path::new("/bin/sh"),
            &["-c".into(), "trap '' TERM; exec sleep 600".into()],
            dir.path().join("sh.log"),
        )
        .unwrap();
        // Let the shell install its trap; an ignored signal stays ignored
        // across exec, so `sleep` itself ignores SIGTERM.
        std::thread::sleep(Duration::from_millis(200));
        let pid = child.pid();
        child.stop(Duration::from_millis(300));
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} not reaped"
        );
    }
}
