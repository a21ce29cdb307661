//! The SSH session is the real [`Host`].

use std::path::Path;

use futures::future::BoxFuture;

use super::{BoxReader, Host};
use crate::ssh::{ExecOptions, ExecOutput, FileSpec, Session, SshError, UploadOutcome};

impl Host for Session {
    fn name(&self) -> &str {
        self.host()
    }

    fn exec<'a>(
        &'a self,
        command: &'a str,
        opts: ExecOptions,
    ) -> BoxFuture<'a, Result<ExecOutput, SshError>> {
        Box::pin(Session::exec(self, command, opts))
    }

    fn write_file<'a>(
        &'a self,
        contents: &'a [u8],
        path: &'a str,
        spec: &'a FileSpec,
    ) -> BoxFuture<'a, Result<UploadOutcome, SshError>> {
        Box::pin(Session::write_file(self, contents, path, spec))
    }

    fn upload<'a>(
        &'a self,
        local: &'a Path,
        path: &'a str,
        spec: &'a FileSpec,
    ) -> BoxFuture<'a, Result<UploadOutcome, SshError>> {
        Box::pin(Session::upload(self, local, path, spec))
    }

    fn upload_reader<'a>(
        &'a self,
        reader: BoxReader<'a>,
        path: &'a str,
        spec: &'a FileSpec,
    ) -> BoxFuture<'a, Result<UploadOutcome, SshError>> {
        Box::pin(Session::upload_reader(self, reader, path, spec))
    }

    fn read_file<'a>(
        &'a self,
        path: &'a str,
        max_bytes: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SshError>> {
        Box::pin(Session::read_file(self, path, max_bytes))
    }

    fn remove_file<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, SshError>> {
        Box::pin(Session::remove_file(self, path))
    }

    fn remove_tree<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, SshError>> {
        Box::pin(Session::remove_tree(self, path))
    }
}
