//! A recording [`Host`] for unit tests of plans: it keeps written files in
//! memory, answers commands from a script the test gives, and records every
//! call so a test can assert what a plan did. Never used to claim that
//! something works on a real host.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt as _;

use super::{BoxReader, Host};
use crate::ssh::{ExecOptions, ExecOutput, ExitStatus, FileSpec, SshError, UploadOutcome};

/// One call made to the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `exec` with this command line.
    Exec(String),
    /// A file placed at this path (write, upload or upload_reader).
    Write(String),
    /// `read_file` of this path.
    Read(String),
    /// `remove_file` or `remove_tree` of this path.
    Remove(String),
}

/// Answers a command: `Some(output)` to take it, `None` to let the default
/// (exit 0, no output) answer.
pub type Responder = Box<dyn Fn(&str) -> Option<ExecOutput> + Send + Sync>;

/// A file the fake holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeFile {
    /// Its bytes.
    pub contents: Vec<u8>,
    /// Its mode.
    pub mode: u32,
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    files: BTreeMap<String, FakeFile>,
}

/// The fake host. Clones share state.
#[derive(Clone)]
pub struct FakeHost {
    name: String,
    state: Arc<Mutex<State>>,
    responders: Arc<Mutex<Vec<Responder>>>,
}

impl std::fmt::Debug for FakeHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeHost")
            .field("name", &self.name)
            .finish()
    }
}

/// An output with exit code `code` and this stdout.
pub fn output(code: u32, stdout: &str) -> ExecOutput {
    ExecOutput {
        status: ExitStatus::Code(code),
        stdout: stdout.as_bytes().to_vec(),
        stderr: Vec::new(),
        truncated: false,
    }
}

impl FakeHost {
    /// A fake named `name` (as `address:port`).
    pub fn new(name: &str) -> Self {
        FakeHost {
            name: name.to_owned(),
            state: Arc::default(),
            responders: Arc::default(),
        }
    }

    /// Adds a responder; the first that answers a command wins.
    pub fn respond(&self, responder: impl Fn(&str) -> Option<ExecOutput> + Send + Sync + 'static) {
        if let Ok(mut r) = self.responders.lock() {
            r.push(Box::new(responder));
        }
    }

    /// Answers every command containing `needle` with `out`.
    pub fn on(&self, needle: &str, out: ExecOutput) {
        let needle = needle.to_owned();
        self.respond(move |cmd| cmd.contains(&needle).then(|| out.clone()));
    }

    /// Puts a file on the fake host.
    pub fn put_file(&self, path: &str, contents: &[u8], mode: u32) {
        if let Ok(mut s) = self.state.lock() {
            s.files.insert(
                path.to_owned(),
                FakeFile {
                    contents: contents.to_vec(),
                    mode,
                },
            );
        }
    }

    /// A file the fake holds.
    pub fn file(&self, path: &str) -> Option<FakeFile> {
        self.state.lock().ok()?.files.get(path).cloned()
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.state
            .lock()
            .map(|s| s.calls.clone())
            .unwrap_or_default()
    }

    /// Every command executed so far.
    pub fn commands(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Exec(cmd) => Some(cmd),
                _ => None,
            })
            .collect()
    }

    /// Forgets the calls (files stay).
    pub fn clear_calls(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.calls.clear();
        }
    }

    fn record(&self, call: Call) {
        if let Ok(mut s) = self.state.lock() {
            s.calls.push(call);
        }
    }

    fn place(&self, path: &str, contents: Vec<u8>, spec: &FileSpec) -> UploadOutcome {
        let sha256 = hex::encode(Sha256::digest(&contents));
        self.record(Call::Write(path.to_owned()));
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(existing) = state.files.get_mut(path)
            && existing.contents == contents
        {
            let metadata_updated = existing.mode != spec.mode;
            existing.mode = spec.mode;
            return UploadOutcome::Unchanged {
                sha256,
                metadata_updated,
            };
        }
        let bytes = contents.len() as u64;
        state.files.insert(
            path.to_owned(),
            FakeFile {
                contents,
                mode: spec.mode,
            },
        );
        UploadOutcome::Uploaded { bytes, sha256 }
    }
}

impl Host for FakeHost {
    fn name(&self) -> &str {
        &self.name
    }

    fn exec<'a>(
        &'a self,
        command: &'a str,
        _opts: ExecOptions,
    ) -> BoxFuture<'a, Result<ExecOutput, SshError>> {
        self.record(Call::Exec(command.to_owned()));
        let answer = self
            .responders
            .lock()
            .ok()
            .and_then(|r| r.iter().find_map(|f| f(command)));
        Box::pin(async move { Ok(answer.unwrap_or_else(|| output(0, ""))) })
    }

    fn write_file<'a>(
        &'a self,
        contents: &'a [u8],
        path: &'a str,
        spec: &'a FileSpec,
    ) -> BoxFuture<'a, Result<UploadOutcome, SshError>> {
        let outcome = self.place(path, contents.to_vec(), spec);
        Box::pin(async move { Ok(outcome) })
    }

    fn upload<'a>(
        &'a self,
        local: &'a Path,
        path: &'a str,
        spec: &'a FileSpec,
    ) -> BoxFuture<'a, Result<UploadOutcome, SshError>> {
        Box::pin(async move {
            let contents = tokio::fs::read(local)
                .await
                .map_err(|source| SshError::Io {
                    host: self.name.clone(),
                    step: crate::ssh::Step::LocalFile,
                    what: format!("cannot read {}", local.display()),
                    source,
                })?;
            Ok(self.place(path, contents, spec))
        })
    }

    fn upload_reader<'a>(
        &'a self,
        mut reader: BoxReader<'a>,
        path: &'a str,
        spec: &'a FileSpec,
    ) -> BoxFuture<'a, Result<UploadOutcome, SshError>> {
        Box::pin(async move {
            let mut contents = Vec::new();
            reader
                .read_to_end(&mut contents)
                .await
                .map_err(|source| SshError::Io {
                    host: self.name.clone(),
                    step: crate::ssh::Step::Upload,
                    what: "reading the source".into(),
                    source,
                })?;
            Ok(self.place(path, contents, spec))
        })
    }

    fn read_file<'a>(
        &'a self,
        path: &'a str,
        max_bytes: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SshError>> {
        self.record(Call::Read(path.to_owned()));
        let file = self.file(path);
        Box::pin(async move {
            match file {
                Some(f) if f.contents.len() as u64 > max_bytes => Err(SshError::Remote {
                    host: self.name.clone(),
                    step: crate::ssh::Step::Download,
                    reason: format!("{path} is larger than {max_bytes} bytes"),
                }),
                Some(f) => Ok(Some(f.contents)),
                None => Ok(None),
            }
        })
    }

    fn remove_file<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, SshError>> {
        self.record(Call::Remove(path.to_owned()));
        let removed = self
            .state
            .lock()
            .map(|mut s| s.files.remove(path).is_some())
            .unwrap_or(false);
        Box::pin(async move { Ok(removed) })
    }

    fn remove_tree<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, SshError>> {
        self.record(Call::Remove(path.to_owned()));
        let prefix = format!("{}/", path.trim_end_matches('/'));
        let removed = self
            .state
            .lock()
            .map(|mut s| {
                let before = s.files.len();
                s.files.retain(|p, _| !p.starts_with(&prefix));
                before != s.files.len()
            })
            .unwrap_or(false);
        Box::pin(async move { Ok(removed) })
    }
}
