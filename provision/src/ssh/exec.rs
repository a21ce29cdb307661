//! Running commands: streamed output, exit status, timeout and cancellation.

use std::fmt;
use std::time::Duration;

use russh::ChannelMsg;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::error::{SshError, Step};
use super::session::Session;
use super::shell;

/// Which stream a chunk of output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Receives output as it arrives.
pub type OutputCallback = Box<dyn FnMut(OutputStream, &[u8]) + Send>;

/// How to run a command.
pub struct ExecOptions {
    /// Give up (and send the command SIGKILL) after this long.
    pub timeout: Option<Duration>,
    /// Run as root through `sudo -n` when the login user is not root.
    pub sudo: bool,
    /// Bytes written to the command's standard input (then end-of-file).
    pub stdin: Option<Vec<u8>>,
    /// Called with every chunk of output as it arrives.
    pub on_output: Option<OutputCallback>,
    /// Stops the command (SIGKILL) and returns [`SshError::Cancelled`].
    pub cancel: Option<CancellationToken>,
    /// Most bytes of each stream kept in [`ExecOutput`]; the callback still
    /// sees everything.
    pub max_collected: usize,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            timeout: None,
            sudo: false,
            stdin: None,
            on_output: None,
            cancel: None,
            max_collected: 16 * 1024 * 1024,
        }
    }
}

impl ExecOptions {
    /// Defaults with `sudo` set.
    pub fn sudo() -> Self {
        ExecOptions {
            sudo: true,
            ..Self::default()
        }
    }

    /// The same options with a timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl fmt::Debug for ExecOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecOptions")
            .field("timeout", &self.timeout)
            .field("sudo", &self.sudo)
            .field("stdin", &self.stdin.as_ref().map(Vec::len))
            .field("on_output", &self.on_output.is_some())
            .field("cancel", &self.cancel.is_some())
            .field("max_collected", &self.max_collected)
            .finish()
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(u32),
    /// It was killed by this signal.
    Signal(String),
    /// The channel closed without telling.
    Unknown,
}

impl ExitStatus {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        *self == ExitStatus::Code(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit code {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
            ExitStatus::Unknown => f.write_str("no exit status"),
        }
    }
}

/// What a command did.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output (up to `max_collected` bytes).
    pub stdout: Vec<u8>,
    /// Its standard error (up to `max_collected` bytes).
    pub stderr: Vec<u8>,
    /// Whether either stream was longer than `max_collected`.
    pub truncated: bool,
}

impl ExecOutput {
    /// Standard output as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Standard error as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// The last `max` characters of stderr, for error messages.
pub(crate) fn tail(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let start = text.char_indices().nth(count - max).map_or(0, |(i, _)| i);
    format!("...{}", &text[start..])
}

/// `sudo -n` answered instead of running the command: which failure?
fn sudo_refusal(output: &ExecOutput) -> Option<SudoRefusal> {
    if output.status != ExitStatus::Code(1) && output.status != ExitStatus::Code(127) {
        return None;
    }
    let err = String::from_utf8_lossy(&output.stderr);
    if err.contains("sudo: a password is required") || err.contains("sudo: a terminal is required")
    {
        Some(SudoRefusal::NeedsPassword)
    } else if output.status == ExitStatus::Code(127)
        && (err.contains("sudo: not found") || err.contains("sudo: command not found"))
    {
        Some(SudoRefusal::NotInstalled)
    } else {
        None
    }
}

#[derive(Debug, PartialEq, Eq)]
enum SudoRefusal {
    NeedsPassword,
    NotInstalled,
}

impl Session {
    /// Runs `command` (a shell command line) and returns its output whatever
    /// its exit status. See [`Session::run`] for "fail unless it succeeded".
    pub async fn exec(&self, command: &str, opts: ExecOptions) -> Result<ExecOutput, SshError> {
        let _permits = self.permits().await;
        self.exec_unlimited(command, opts).await
    }

    /// Runs `command`; a non-zero exit is [`SshError::CommandFailed`].
    pub async fn run(&self, command: &str, opts: ExecOptions) -> Result<ExecOutput, SshError> {
        let out = self.exec(command, opts).await?;
        self.check(command, out)
    }

    pub(crate) fn check(&self, command: &str, out: ExecOutput) -> Result<ExecOutput, SshError> {
        if out.status.success() {
            Ok(out)
        } else {
            Err(SshError::CommandFailed {
                host: self.host().to_owned(),
                command: command.to_owned(),
                status: out.status,
                stderr: tail(&out.stderr, 2000),
            })
        }
    }

    /// `exec` without taking a concurrency slot: for steps of an operation
    /// that already holds one.
    pub(crate) async fn exec_unlimited(
        &self,
        command: &str,
        mut opts: ExecOptions,
    ) -> Result<ExecOutput, SshError> {
        let use_sudo = opts.sudo && self.needs_sudo();
        // A command that may have to be stopped carries a unique marker in
        // its environment: OpenSSH ignores the `signal` request for root
        // logins ("session signalling requires privilege separation"), so
        // stopping means finding the processes by marker and killing them by
        // PID from a second channel.
        let marker = (opts.timeout.is_some() || opts.cancel.is_some())
            .then(|| format!("{:016x}", rand::random::<u64>()));
        let script = match &marker {
            Some(m) => shell::with_marker(m, command),
            None => command.to_owned(),
        };
        let line = if use_sudo {
            shell::sudo(&script)
        } else {
            script
        };
        let span = tracing::debug_span!("ssh.exec", host = %self.host(), sudo = use_sudo);
        let out = async {
            tracing::debug!(command, "exec");
            let mut channel = self.open_channel().await?;
            let protocol = |source| SshError::Protocol {
                host: self.host().to_owned(),
                step: Step::Exec,
                source,
            };
            channel.exec(true, line.as_bytes()).await.map_err(protocol)?;

            let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
            let cancel = opts.cancel.clone().unwrap_or_default();
            // Sending stdin waits for the host's window, which a command that
            // does not read it never reopens: the timeout and the cancel
            // token hold here too.
            let stdin = opts.stdin.take();
            let send_input = async {
                if let Some(stdin) = &stdin {
                    channel.data(&stdin[..]).await?;
                }
                channel.eof().await
            };
            let sent = tokio::select! {
                r = send_input => Ok(r),
                _ = sleep_until(deadline) => Err(true),
                _ = cancel.cancelled() => Err(false),
            };
            match sent {
                Ok(r) => r.map_err(protocol)?,
                Err(timed_out) => {
                    self.stop(&channel, marker.as_deref(), use_sudo).await;
                    return Err(if timed_out {
                        SshError::Timeout {
                            host: self.host().to_owned(),
                            step: Step::Exec,
                            after: opts.timeout.unwrap_or_default(),
                        }
                    } else {
                        SshError::Cancelled {
                            host: self.host().to_owned(),
                            step: Step::Exec,
                        }
                    });
                }
            }
            let mut out = ExecOutput {
                status: ExitStatus::Unknown,
                stdout: Vec::new(),
                stderr: Vec::new(),
                truncated: false,
            };
            loop {
                let msg = tokio::select! {
                    msg = channel.wait() => msg,
                    _ = sleep_until(deadline) => {
                        self.stop(&channel, marker.as_deref(), use_sudo).await;
                        return Err(SshError::Timeout {
                            host: self.host().to_owned(),
                            step: Step::Exec,
                            after: opts.timeout.unwrap_or_default(),
                        });
                    }
                    _ = cancel.cancelled() => {
                        self.stop(&channel, marker.as_deref(), use_sudo).await;
                        return Err(SshError::Cancelled {
                            host: self.host().to_owned(),
                            step: Step::Exec,
                        });
                    }
                };
                // Keep reading after ExitStatus: output may still be in
                // flight; only the channel closing ends the command.
                match msg {
                    Some(ChannelMsg::Data { data }) => {
                        collect(&mut out.stdout, &data, opts.max_collected, &mut out.truncated);
                        if let Some(cb) = opts.on_output.as_mut() {
                            cb(OutputStream::Stdout, &data);
                        }
                    }
                    Some(ChannelMsg::ExtendedData { data, ext: 1 }) => {
                        collect(&mut out.stderr, &data, opts.max_collected, &mut out.truncated);
                        if let Some(cb) = opts.on_output.as_mut() {
                            cb(OutputStream::Stderr, &data);
                        }
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => {
                        out.status = ExitStatus::Code(exit_status);
                    }
                    Some(ChannelMsg::ExitSignal { signal_name, .. }) => {
                        out.status = ExitStatus::Signal(format!("{signal_name:?}"));
                    }
                    Some(ChannelMsg::Failure) => {
                        return Err(SshError::Remote {
                            host: self.host().to_owned(),
                            step: Step::Exec,
                            reason: "the host refused to start the command".into(),
                        });
                    }
                    Some(_) => {}
                    None => break,
                }
            }
            tracing::debug!(status = %out.status, stdout = out.stdout.len(), stderr = out.stderr.len(), "exec done");
            Ok(out)
        }
        .instrument(span)
        .await?;
        if use_sudo && let Some(e) = self.sudo_error(&out, Step::Exec) {
            return Err(e);
        }
        Ok(out)
    }

    /// Stops a running command: the `signal` request (honoured for
    /// non-root logins), then SIGKILL by PID to every process carrying the
    /// command's marker, then closes the channel. Best effort, bounded.
    async fn stop(
        &self,
        channel: &russh::Channel<russh::client::Msg>,
        marker: Option<&str>,
        sudo: bool,
    ) {
        let _ = channel.signal(russh::Sig::KILL).await;
        if let Some(m) = marker {
            let kill = shell::kill_marked(m);
            let line = if sudo { shell::sudo(&kill) } else { kill };
            let killing = async {
                let mut ch = self.open_channel().await?;
                ch.exec(true, line.as_bytes())
                    .await
                    .map_err(|source| SshError::Protocol {
                        host: self.host().to_owned(),
                        step: Step::Exec,
                        source,
                    })?;
                while ch.wait().await.is_some() {}
                Ok::<(), SshError>(())
            };
            match tokio::time::timeout(Duration::from_secs(10), killing).await {
                Ok(Ok(())) => tracing::debug!(host = %self.host(), marker = m, "stopped"),
                Ok(Err(e)) => {
                    tracing::warn!(host = %self.host(), error = %e, "cannot stop the command")
                }
                Err(_) => tracing::warn!(host = %self.host(), "stopping the command timed out"),
            }
        }
        let _ = channel.close().await;
    }

    /// The typed error when `sudo -n` refused to run what `out` came from.
    pub(crate) fn sudo_error(&self, out: &ExecOutput, step: Step) -> Option<SshError> {
        match sudo_refusal(out)? {
            SudoRefusal::NeedsPassword => Some(SshError::SudoNeedsPassword {
                host: self.host().to_owned(),
                user: self.user().to_owned(),
            }),
            SudoRefusal::NotInstalled => Some(SshError::Remote {
                host: self.host().to_owned(),
                step,
                reason: format!(
                    "sudo is not installed, and user {} is not root: install sudo or connect as root",
                    self.user()
                ),
            }),
        }
    }
}

fn collect(buf: &mut Vec<u8>, data: &[u8], max: usize, truncated: &mut bool) {
    let room = max.saturating_sub(buf.len());
    if data.len() > room {
        *truncated = true;
    }
    buf.extend_from_slice(&data[..data.len().min(room)]);
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(code: u32, stderr: &str) -> ExecOutput {
        ExecOutput {
            status: ExitStatus::Code(code),
            stdout: vec![],
            stderr: stderr.as_bytes().to_vec(),
            truncated: false,
        }
    }

    #[test]
    fn recognises_sudo_refusals() {
        assert_eq!(
            sudo_refusal(&output(1, "sudo: a password is required\n")),
            Some(SudoRefusal::NeedsPassword)
        );
        assert_eq!(
            sudo_refusal(&output(127, "sh: 1: sudo: not found\n")),
            Some(SudoRefusal::NotInstalled)
        );
        assert_eq!(sudo_refusal(&output(1, "grep: no match")), None);
        assert_eq!(
            sudo_refusal(&output(0, "sudo: a password is required")),
            None
        );
    }

    #[test]
    fn collect_caps_and_flags() {
        let mut buf = Vec::new();
        let mut t = false;
        collect(&mut buf, b"abc", 4, &mut t);
        collect(&mut buf, b"def", 4, &mut t);
        assert_eq!(buf, b"abcd");
        assert!(t);
    }

    #[test]
    fn tail_keeps_the_end() {
        assert_eq!(tail(b"  short \n", 10), "short");
        assert_eq!(tail(b"0123456789abc", 3), "...abc");
    }
}
