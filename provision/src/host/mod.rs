//! The narrow interface every side effect on a host goes through.
//!
//! Plans and tasks talk to a `&dyn Host`: the SSH [`Session`] in real use,
//! a recording fake ([`fake`], unit tests of plans only) otherwise. The
//! verbs are the few a provisioning step needs: run a command, place a file
//! (parents created, atomic, skipped when the content is already there),
//! read a small file back, remove a file or a tree.
//!
//! Every verb is privileged: a non-root login runs it through `sudo -n`, so a
//! task never has to think about who it is logged in as.

#[cfg(any(test, feature = "fake-host"))]
pub mod fake;
mod session;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use tokio::io::AsyncRead;

use crate::ssh::{ExecOptions, ExecOutput, FileSpec, SshError, UploadOutcome};

pub use crate::ssh::Session;

/// A reader a host can stream into a remote file.
pub type BoxReader<'a> = Box<dyn AsyncRead + Unpin + Send + 'a>;

/// A machine kubeseed provisions.
pub trait Host: Send + Sync + fmt::Debug {
    /// `address:port`: how every message and event names the host.
    fn name(&self) -> &str;

    /// Runs `command` (a `sh` command line) and returns its output whatever
    /// its exit status; `opts.sudo` is honoured for non-root logins.
    fn exec<'a>(
        &'a self,
        command: &'a str,
        opts: ExecOptions,
    ) -> BoxFuture<'a, Result<ExecOutput, SshError>>;

    /// Writes `contents` to `path` with `spec`'s mode and owner, creating
    /// missing parent directories; nothing is sent when the host already has
    /// the same content.
    fn write_file<'a>(
        &'a self,
        contents: &'a [u8],
        path: &'a str,
        spec: &'a FileSpec,
    ) -> BoxFuture<'a, Result<UploadOutcome, SshError>>;

    /// Uploads a local file, as [`Host::write_file`] does with bytes.
    fn upload<'a>(
        &'a self,
        local: &'a Path,
        path: &'a str,
        spec: &'a FileSpec,
    ) -> BoxFuture<'a, Result<UploadOutcome, SshError>>;

    /// Streams everything `reader` yields into `path`.
    fn upload_reader<'a>(
        &'a self,
        reader: BoxReader<'a>,
        path: &'a str,
        spec: &'a FileSpec,
    ) -> BoxFuture<'a, Result<UploadOutcome, SshError>>;

    /// The content of a regular file, `None` when it does not exist; an error
    /// when it is larger than `max_bytes`.
    fn read_file<'a>(
        &'a self,
        path: &'a str,
        max_bytes: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SshError>>;

    /// Removes a file or symlink; `false` when there was none.
    fn remove_file<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, SshError>>;

    /// Removes a directory tree (system directories are refused);
    /// `false` when there was none.
    fn remove_tree<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, SshError>>;

    /// Runs `command` as root; a non-zero exit is [`SshError::CommandFailed`].
    fn run<'a>(&'a self, command: &'a str) -> BoxFuture<'a, Result<ExecOutput, SshError>> {
        self.run_with(command, ExecOptions::sudo())
    }

    /// Runs `command` with `opts` (standard input, a timeout); a non-zero
    /// exit is [`SshError::CommandFailed`] carrying the end of its stderr.
    fn run_with<'a>(
        &'a self,
        command: &'a str,
        opts: ExecOptions,
    ) -> BoxFuture<'a, Result<ExecOutput, SshError>> {
        Box::pin(async move {
            let out = self.exec(command, opts).await?;
            check_status(self.name(), command, out)
        })
    }
}

/// Reads many small text files in one round trip: path -> content for
/// those that exist and are regular files (missing ones are left out).
pub async fn read_text_files(
    host: &dyn Host,
    paths: &[&Path],
) -> Result<BTreeMap<PathBuf, String>, SshError> {
    use base64::Engine as _;
    if paths.is_empty() {
        return Ok(BTreeMap::new());
    }
    let mut script = String::new();
    for (i, path) in paths.iter().enumerate() {
        let q = crate::ssh::shell::quote(&path.display().to_string());
        // base64 keeps any byte of a file from being read as a separator.
        script.push_str(&format!(
            "if [ -f {q} ]; then printf '%s ' {i}; base64 -w0 < {q}; echo; fi; "
        ));
    }
    let out = host.run(&script).await?;
    let mut files = BTreeMap::new();
    for line in out.stdout_text().lines() {
        let Some((index, data)) = line.split_once(' ') else {
            continue;
        };
        let (Ok(index), Ok(bytes)) = (
            index.parse::<usize>(),
            base64::engine::general_purpose::STANDARD.decode(data.trim()),
        ) else {
            return Err(SshError::Remote {
                host: host.name().to_owned(),
                step: crate::ssh::Step::Download,
                reason: format!("unexpected line reading files: {:.80}", line),
            });
        };
        if let Some(path) = paths.get(index) {
            files.insert(
                path.to_path_buf(),
                String::from_utf8_lossy(&bytes).into_owned(),
            );
        }
    }
    Ok(files)
}

/// `out` if the command succeeded, else [`SshError::CommandFailed`] with the
/// end of its standard error.
pub fn check_status(host: &str, command: &str, out: ExecOutput) -> Result<ExecOutput, SshError> {
    if out.status.success() {
        return Ok(out);
    }
    let stderr = out.stderr_text();
    let stderr = stderr.trim();
    let tail: String = {
        let count = stderr.chars().count();
        if count > 2000 {
            let skip = count - 2000;
            format!("...{}", stderr.chars().skip(skip).collect::<String>())
        } else {
            stderr.to_owned()
        }
    };
    Err(SshError::CommandFailed {
        host: host.to_owned(),
        command: command.to_owned(),
        status: out.status,
        stderr: tail,
    })
}
