//! File transfer: streaming, atomic, idempotent.
//!
//! An upload first asks the host for the sha256, mode and owner of the
//! destination. Same content: nothing is sent (mode and owner are fixed if
//! they differ). Otherwise the bytes stream into a hidden temporary file
//! beside the destination, whose size is checked before it gets its mode and
//! owner and is renamed over the destination, so readers never see a half
//! written file. The content itself is protected in transit by the SSH MAC,
//! which is why the received file is not hashed again.
//!
//! Two ways to move the bytes ([`TransferMethod`]): a plain exec channel
//! running `cat > tmp` (under `sudo -n` for non-root users), or SFTP (the
//! `sftp` subsystem for root, `sudo -n sftp-server` otherwise). Both stream
//! in constant memory. Measured on loopback, the exec channel is faster and
//! is the default; see `benches/transfer.rs`.

use std::path::{Path, PathBuf};

use rand::Rng as _;
use russh::ChannelMsg;
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tracing::Instrument as _;

use super::error::{SshError, Step};
use super::exec::{ExecOptions, ExecOutput, ExitStatus, tail};
use super::session::Session;
use super::shell;

/// Read buffer for local files: large enough to keep the channel busy.
const CHUNK: usize = 1024 * 1024;

/// How file bytes travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferMethod {
    /// `cat > tmp` on an exec channel.
    #[default]
    ExecStream,
    /// SFTP with pipelined writes.
    Sftp,
}

/// Mode and owner of a file written to a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSpec {
    /// Permission bits, e.g. `0o600` for a private key.
    pub mode: u32,
    /// `user` or `user:group`; `None` leaves it to the writer (root with sudo).
    pub owner: Option<String>,
    /// How the bytes travel.
    pub method: TransferMethod,
}

impl Default for FileSpec {
    fn default() -> Self {
        FileSpec {
            mode: 0o644,
            owner: None,
            method: TransferMethod::default(),
        }
    }
}

impl FileSpec {
    /// A file with this mode, default owner.
    pub fn mode(mode: u32) -> Self {
        FileSpec {
            mode,
            ..Self::default()
        }
    }

    /// The same spec with an owner.
    pub fn owned_by(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }

    /// The same spec with another transfer method.
    pub fn via(mut self, method: TransferMethod) -> Self {
        self.method = method;
        self
    }

    fn validate(&self) -> Result<(), SshError> {
        if self.mode > 0o7777 {
            return Err(SshError::InvalidInput(format!(
                "file mode {:o} is not a permission mode (at most 7777 octal)",
                self.mode
            )));
        }
        if let Some(o) = &self.owner {
            shell::check_owner(o)?;
        }
        Ok(())
    }
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// The content was sent.
    Uploaded {
        /// Bytes sent.
        bytes: u64,
        /// sha256 of the content (hex).
        sha256: String,
    },
    /// The host already had this content; nothing was sent.
    Unchanged {
        /// sha256 of the content (hex).
        sha256: String,
        /// Whether mode or owner had to be corrected.
        metadata_updated: bool,
    },
}

/// What a download did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadOutcome {
    /// Bytes received.
    pub bytes: u64,
    /// sha256 of the content (hex).
    pub sha256: String,
}

/// What the destination looks like on the host.
#[derive(Debug, PartialEq, Eq)]
enum RemoteFile {
    Absent,
    Present { size: u64, mode: u32, owner: String },
}

fn parse_remote_file(stdout: &str) -> Option<RemoteFile> {
    let line = stdout.lines().next()?.trim();
    if line == "absent" {
        return Some(RemoteFile::Absent);
    }
    let mut fields = line.split_whitespace();
    let size = fields.next()?.parse().ok()?;
    let mode = u32::from_str_radix(fields.next()?, 8).ok()?;
    let owner = fields.next()?.to_owned();
    Some(RemoteFile::Present { size, mode, owner })
}

fn parse_sha256(stdout: &str) -> Option<String> {
    let h = stdout.trim();
    (h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())).then(|| h.to_ascii_lowercase())
}

/// Whether the recorded `user:group` satisfies the wanted `user[:group]`.
/// Numeric ids are not resolved here, so they always count as different
/// (a `chown` to the same owner is harmless).
fn owner_matches(actual: &str, wanted: Option<&str>) -> bool {
    let Some(wanted) = wanted else { return true };
    match wanted.split_once(':') {
        Some(_) => actual == wanted,
        None => actual.split(':').next() == Some(wanted),
    }
}

async fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = tokio::fs::File::open(path).await?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

impl Session {
    fn privileged(&self, script: &str) -> String {
        if self.needs_sudo() {
            shell::sudo(script)
        } else {
            script.to_owned()
        }
    }

    fn io_error(
        &self,
        step: Step,
        what: impl Into<String>,
    ) -> impl FnOnce(std::io::Error) -> SshError {
        let host = self.host().to_owned();
        let what = what.into();
        move |source| SshError::Io {
            host,
            step,
            what,
            source,
        }
    }

    fn remote_failure(&self, step: Step, out: &ExecOutput) -> SshError {
        if self.needs_sudo()
            && let Some(e) = self.sudo_error(out, step)
        {
            return e;
        }
        SshError::Remote {
            host: self.host().to_owned(),
            step,
            reason: format!("{}: {}", out.status, tail(&out.stderr, 2000)),
        }
    }

    /// Runs a privileged helper script and requires exit 0.
    async fn helper(&self, script: &str, step: Step) -> Result<ExecOutput, SshError> {
        // The sudo wrapping is done here so the refusal check sees it.
        let out = self
            .exec_unlimited(&self.privileged(script), ExecOptions::default())
            .await?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(self.remote_failure(step, &out))
        }
    }

    async fn remote_file(&self, remote: &str) -> Result<RemoteFile, SshError> {
        let out = self
            .helper(&shell::describe_file(remote), Step::CheckRemote)
            .await?;
        parse_remote_file(&out.stdout_text()).ok_or_else(|| SshError::Remote {
            host: self.host().to_owned(),
            step: Step::CheckRemote,
            reason: format!(
                "unexpected answer describing {remote}: {:?} (is GNU stat installed?)",
                out.stdout_text()
            ),
        })
    }

    async fn remote_sha256(&self, remote: &str) -> Result<String, SshError> {
        let out = self
            .helper(&shell::sha256(remote), Step::CheckRemote)
            .await?;
        parse_sha256(&out.stdout_text()).ok_or_else(|| SshError::Remote {
            host: self.host().to_owned(),
            step: Step::CheckRemote,
            reason: format!(
                "unexpected sha256sum output for {remote}: {:?} (is coreutils installed?)",
                out.stdout_text()
            ),
        })
    }

    /// Uploads a local file to `remote` with `spec`'s mode and owner. Skipped
    /// (nothing sent) when the host already has the same sha256.
    ///
    /// Both sides are hashed only when the sizes already match; otherwise the
    /// local file is hashed while it streams, so a fresh upload reads it once.
    pub async fn upload(
        &self,
        local: &Path,
        remote: &str,
        spec: &FileSpec,
    ) -> Result<UploadOutcome, SshError> {
        shell::check_remote_path(remote)?;
        spec.validate()?;
        let span = tracing::info_span!("ssh.upload", host = %self.host(), remote, local = %local.display());
        async {
            let _permits = self.permits().await;
            let local_err = |what: &str| {
                self.io_error(
                    Step::LocalFile,
                    format!("cannot {what} {}", local.display()),
                )
            };
            let size = tokio::fs::metadata(local)
                .await
                .map_err(local_err("stat"))?
                .len();
            let local_hash = async {
                sha256_file(local)
                    .await
                    .map(|(h, _)| h)
                    .map_err(local_err("read"))
            };
            if let Some(done) = self.skip_if_same(remote, size, local_hash, spec).await? {
                return Ok(done);
            }
            let file = tokio::fs::File::open(local)
                .await
                .map_err(local_err("open"))?;
            let mut hashing = HashingReader::new(file);
            self.place(&mut hashing, remote, spec, Some(size)).await?;
            Ok(UploadOutcome::Uploaded {
                bytes: size,
                sha256: hashing.finish(),
            })
        }
        .instrument(span)
        .await
    }

    /// Writes `contents` to `remote` (small files: configs, certificates,
    /// unit files). Skipped when the host already has the same content.
    pub async fn write_file(
        &self,
        contents: &[u8],
        remote: &str,
        spec: &FileSpec,
    ) -> Result<UploadOutcome, SshError> {
        shell::check_remote_path(remote)?;
        spec.validate()?;
        let span = tracing::info_span!("ssh.write_file", host = %self.host(), remote, bytes = contents.len());
        async {
            let _permits = self.permits().await;
            let sha256 = hex::encode(Sha256::digest(contents));
            let size = contents.len() as u64;
            let local_hash = std::future::ready(Ok(sha256.clone()));
            if let Some(done) = self.skip_if_same(remote, size, local_hash, spec).await? {
                return Ok(done);
            }
            self.place(contents, remote, spec, Some(size)).await?;
            Ok(UploadOutcome::Uploaded {
                bytes: size,
                sha256,
            })
        }
        .instrument(span)
        .await
    }

    /// Streams everything `reader` yields to `remote` (no skip: the content
    /// is only known once sent).
    pub async fn upload_reader<R>(
        &self,
        reader: R,
        remote: &str,
        spec: &FileSpec,
    ) -> Result<UploadOutcome, SshError>
    where
        R: AsyncRead + Unpin + Send,
    {
        shell::check_remote_path(remote)?;
        spec.validate()?;
        let span = tracing::info_span!("ssh.upload_reader", host = %self.host(), remote);
        async {
            let _permits = self.permits().await;
            // Surfaces sudo and "not a regular file" problems before sending.
            self.remote_file(remote).await?;
            let mut hashing = HashingReader::new(reader);
            let bytes = self.place(&mut hashing, remote, spec, None).await?;
            Ok(UploadOutcome::Uploaded {
                bytes,
                sha256: hashing.finish(),
            })
        }
        .instrument(span)
        .await
    }

    async fn skip_if_same(
        &self,
        remote: &str,
        size: u64,
        local_hash: impl Future<Output = Result<String, SshError>>,
        spec: &FileSpec,
    ) -> Result<Option<UploadOutcome>, SshError> {
        let RemoteFile::Present {
            size: their_size,
            mode,
            owner,
        } = self.remote_file(remote).await?
        else {
            return Ok(None);
        };
        if their_size != size {
            return Ok(None);
        }
        let (sha256, theirs) = tokio::try_join!(local_hash, self.remote_sha256(remote))?;
        if theirs != sha256 {
            return Ok(None);
        }
        let owner_ok = owner_matches(&owner, spec.owner.as_deref());
        let metadata_updated = mode != spec.mode || !owner_ok;
        if metadata_updated {
            let owner = if owner_ok {
                None
            } else {
                spec.owner.as_deref()
            };
            self.helper(
                &shell::set_metadata(remote, spec.mode, owner),
                Step::Finalize,
            )
            .await?;
        }
        tracing::info!(remote, "unchanged (same sha256)");
        Ok(Some(UploadOutcome::Unchanged {
            sha256: sha256.to_owned(),
            metadata_updated,
        }))
    }

    /// Sends the bytes to a temporary name, then checks the size, sets mode
    /// and owner and renames into place. Returns the bytes sent.
    async fn place<R>(
        &self,
        reader: R,
        remote: &str,
        spec: &FileSpec,
        expected: Option<u64>,
    ) -> Result<u64, SshError>
    where
        R: AsyncRead + Unpin + Send,
    {
        let tmp = shell::temp_path(remote, rand::rng().random());
        let sent = match spec.method {
            TransferMethod::ExecStream => self.send_exec(reader, &tmp).await,
            TransferMethod::Sftp => self.send_sftp(reader, &tmp).await,
        };
        let sent = match sent {
            Ok(n) => n,
            Err(e) => {
                // Best effort: the temporary file must not pile up.
                let _ = self
                    .exec_unlimited(
                        &self.privileged(&shell::remove(&tmp)),
                        ExecOptions::default(),
                    )
                    .await;
                return Err(e);
            }
        };
        if let Some(expected) = expected
            && sent != expected
        {
            let _ = self
                .exec_unlimited(
                    &self.privileged(&shell::remove(&tmp)),
                    ExecOptions::default(),
                )
                .await;
            return Err(SshError::Remote {
                host: self.host().to_owned(),
                step: Step::Upload,
                reason: format!(
                    "sent {sent} bytes but expected {expected}: did the local file change?"
                ),
            });
        }
        self.helper(
            &shell::finalize(&tmp, remote, sent, spec.mode, spec.owner.as_deref()),
            Step::Finalize,
        )
        .await?;
        tracing::info!(remote, bytes = sent, method = ?spec.method, "uploaded");
        Ok(sent)
    }

    async fn send_exec<R>(&self, reader: R, tmp: &str) -> Result<u64, SshError>
    where
        R: AsyncRead + Unpin + Send,
    {
        let protocol = |source| SshError::Protocol {
            host: self.host().to_owned(),
            step: Step::Upload,
            source,
        };
        let channel = self.open_channel().await?;
        channel
            .exec(true, self.privileged(&shell::receive(tmp)).as_bytes())
            .await
            .map_err(protocol)?;
        let (mut read_half, write_half) = channel.split();

        let writer = async {
            let mut w = write_half.make_writer();
            // copy_buf hands the writer whole buffers, so russh sends full
            // packets; tokio::io::copy would cut them at 8 KiB.
            let mut reader = BufReader::with_capacity(CHUNK, reader);
            let n = tokio::io::copy_buf(&mut reader, &mut w).await?;
            // Shutdown sends EOF: `cat` ends and the script goes on.
            w.shutdown().await?;
            Ok::<u64, std::io::Error>(n)
        };
        let status = async {
            let mut status = ExitStatus::Unknown;
            let mut stderr = Vec::new();
            while let Some(msg) = read_half.wait().await {
                match msg {
                    ChannelMsg::ExtendedData { data, .. } => {
                        stderr.extend_from_slice(&data[..data.len().min(64 * 1024)]);
                    }
                    ChannelMsg::ExitStatus { exit_status } => {
                        status = ExitStatus::Code(exit_status)
                    }
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        status = ExitStatus::Signal(format!("{signal_name:?}"));
                    }
                    _ => {}
                }
            }
            ExecOutput {
                status,
                stdout: Vec::new(),
                stderr,
                truncated: false,
            }
        };
        tokio::pin!(writer, status);
        let mut sent: Option<Result<u64, std::io::Error>> = None;
        // If the host gives up early (no space, sudo refused) the writer may
        // wait forever for window; the channel closing ends both.
        let out = loop {
            tokio::select! {
                r = &mut writer, if sent.is_none() => sent = Some(r),
                out = &mut status => break out,
            }
        };
        if !out.status.success() {
            return Err(self.remote_failure(Step::Upload, &out));
        }
        match sent {
            Some(Ok(n)) => Ok(n),
            Some(Err(e)) => Err(self.io_error(Step::Upload, "sending data")(e)),
            None => Err(SshError::Remote {
                host: self.host().to_owned(),
                step: Step::Upload,
                reason: "the host closed the channel before all data was sent".into(),
            }),
        }
    }

    /// An SFTP session running with the privileges file writes need.
    async fn sftp(&self, step: Step) -> Result<SftpSession, SshError> {
        let protocol = |source| SshError::Protocol {
            host: self.host().to_owned(),
            step,
            source,
        };
        let channel = self.open_channel().await?;
        if self.needs_sudo() {
            channel
                .exec(true, shell::sudo(shell::SFTP_SERVER).as_bytes())
                .await
                .map_err(protocol)?;
        } else {
            channel
                .request_subsystem(true, "sftp")
                .await
                .map_err(protocol)?;
        }
        let config = russh_sftp::client::Config {
            max_concurrent_writes: 64,
            max_concurrent_reads: 64,
            // OpenSSH's sftp-server accepts up to 256 KiB per request.
            max_write_packet_len: 255 * 1024,
            request_timeout_secs: 60,
            ..russh_sftp::client::Config::default()
        };
        SftpSession::new_with_config(channel.into_stream(), config)
            .await
            .map_err(|source| SshError::Sftp {
                host: self.host().to_owned(),
                step,
                source,
            })
    }

    async fn send_sftp<R>(&self, reader: R, tmp: &str) -> Result<u64, SshError>
    where
        R: AsyncRead + Unpin + Send,
    {
        let sftp_err = |source| SshError::Sftp {
            host: self.host().to_owned(),
            step: Step::Upload,
            source,
        };
        let sftp = self.sftp(Step::Upload).await?;
        let attrs = FileAttributes {
            permissions: Some(0o600),
            ..FileAttributes::empty()
        };
        let mut file = sftp
            .open_with_flags_and_attributes(
                tmp,
                OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
                attrs,
            )
            .await
            .map_err(sftp_err)?;
        // Whole buffers: russh-sftp cuts each write into requests of
        // max_write_packet_len; with tokio::io::copy they would be 8 KiB.
        let mut reader = BufReader::with_capacity(CHUNK, reader);
        let n = tokio::io::copy_buf(&mut reader, &mut file)
            .await
            .map_err(self.io_error(Step::Upload, "writing over SFTP"))?;
        // Shutdown waits for every outstanding write acknowledgement.
        file.shutdown()
            .await
            .map_err(self.io_error(Step::Upload, "finishing the SFTP write"))?;
        let _ = sftp.close().await;
        Ok(n)
    }

    /// Downloads `remote` into `local` (written beside it under a temporary
    /// name, then renamed), checking the sha256 the host reports. The local
    /// file is readable by its owner only (mode 0600).
    pub async fn download(
        &self,
        remote: &str,
        local: &Path,
        method: TransferMethod,
    ) -> Result<DownloadOutcome, SshError> {
        shell::check_remote_path(remote)?;
        let span = tracing::info_span!("ssh.download", host = %self.host(), remote, local = %local.display());
        async {
            let _permits = self.permits().await;
            if self.remote_file(remote).await? == RemoteFile::Absent {
                return Err(SshError::Remote {
                    host: self.host().to_owned(),
                    step: Step::Download,
                    reason: format!("{remote} does not exist"),
                });
            }
            let tmp = local_temp(local).map_err(SshError::InvalidInput)?;
            let result = async {
                // Owner-only and new: what is downloaded is often a key or
                // a kubeconfig, and must not be readable by others meanwhile.
                let file = tokio::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)
                    .await
                    .map_err(self.io_error(Step::LocalFile, format!("cannot create {}", tmp.display())))?;
                let mut writer = HashingWriter::new(tokio::io::BufWriter::with_capacity(CHUNK, file));
                // The host hashes its copy on another channel while it streams
                // (both read from its page cache), instead of before.
                let receive = async {
                    match method {
                        TransferMethod::ExecStream => self.receive_exec(remote, &mut writer).await,
                        TransferMethod::Sftp => self.receive_sftp(remote, &mut writer).await,
                    }
                };
                let (expected, ()) = tokio::try_join!(self.remote_sha256(remote), receive)?;
                writer
                    .inner
                    .shutdown()
                    .await
                    .map_err(self.io_error(Step::LocalFile, format!("cannot write {}", tmp.display())))?;
                let (sha256, bytes) = writer.finish();
                if sha256 != expected {
                    return Err(SshError::Remote {
                        host: self.host().to_owned(),
                        step: Step::Download,
                        reason: format!(
                            "received content has sha256 {sha256}, the host reported {expected}: the file changed during the download?"
                        ),
                    });
                }
                tokio::fs::rename(&tmp, local)
                    .await
                    .map_err(self.io_error(Step::LocalFile, format!("cannot rename into {}", local.display())))?;
                Ok(DownloadOutcome { bytes, sha256 })
            }
            .await;
            if result.is_err() {
                let _ = tokio::fs::remove_file(&tmp).await;
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn receive_exec(&self, remote: &str, writer: &mut HashingWriter) -> Result<(), SshError> {
        let protocol = |source| SshError::Protocol {
            host: self.host().to_owned(),
            step: Step::Download,
            source,
        };
        let mut channel = self.open_channel().await?;
        let script = format!("cat -- {}", shell::quote(remote));
        channel
            .exec(true, self.privileged(&script).as_bytes())
            .await
            .map_err(protocol)?;
        let mut out = ExecOutput {
            status: ExitStatus::Unknown,
            stdout: Vec::new(),
            stderr: Vec::new(),
            truncated: false,
        };
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => writer
                    .write(&data)
                    .await
                    .map_err(self.io_error(Step::LocalFile, "writing the downloaded file"))?,
                ChannelMsg::ExtendedData { data, .. } => {
                    out.stderr
                        .extend_from_slice(&data[..data.len().min(64 * 1024)]);
                }
                ChannelMsg::ExitStatus { exit_status } => {
                    out.status = ExitStatus::Code(exit_status)
                }
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    out.status = ExitStatus::Signal(format!("{signal_name:?}"));
                }
                _ => {}
            }
        }
        if out.status.success() {
            Ok(())
        } else {
            Err(self.remote_failure(Step::Download, &out))
        }
    }

    async fn receive_sftp(&self, remote: &str, writer: &mut HashingWriter) -> Result<(), SshError> {
        let sftp = self.sftp(Step::Download).await?;
        let mut file = sftp.open(remote).await.map_err(|source| SshError::Sftp {
            host: self.host().to_owned(),
            step: Step::Download,
            source,
        })?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(self.io_error(Step::Download, "reading over SFTP"))?;
            if n == 0 {
                break;
            }
            writer
                .write(&buf[..n])
                .await
                .map_err(self.io_error(Step::LocalFile, "writing the downloaded file"))?;
        }
        let _ = sftp.close().await;
        Ok(())
    }
}

fn local_temp(local: &Path) -> Result<PathBuf, String> {
    let name = local
        .file_name()
        .ok_or_else(|| format!("local path {} does not name a file", local.display()))?;
    let nonce: u64 = rand::rng().random();
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".kubeseed-{nonce:016x}"));
    Ok(local.with_file_name(tmp_name))
}

/// Hashes what passes through, for uploads of unknown content.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R> HashingReader<R> {
    fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
        }
    }

    fn finish(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for HashingReader<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = &poll {
            this.hasher.update(&buf.filled()[before..]);
        }
        poll
    }
}

/// A local file being downloaded into, hashed as it is written.
struct HashingWriter {
    inner: tokio::io::BufWriter<tokio::fs::File>,
    hasher: Sha256,
    bytes: u64,
}

impl HashingWriter {
    fn new(inner: tokio::io::BufWriter<tokio::fs::File>) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    async fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        self.inner.write_all(data).await
    }

    fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_remote_description() {
        assert_eq!(parse_remote_file("absent\n"), Some(RemoteFile::Absent));
        assert_eq!(
            parse_remote_file("1234 640 etcd:etcd\n"),
            Some(RemoteFile::Present {
                size: 1234,
                mode: 0o640,
                owner: "etcd:etcd".into()
            })
        );
        assert_eq!(parse_remote_file("garbage\n"), None);
        assert_eq!(parse_remote_file("12 9x root:root\n"), None);
        let h = "A".repeat(64);
        assert_eq!(parse_sha256(&format!("{h}\n")), Some("a".repeat(64)));
        assert_eq!(parse_sha256("abc"), None);
    }

    #[test]
    fn owner_comparison() {
        assert!(owner_matches("root:root", None));
        assert!(owner_matches("etcd:etcd", Some("etcd")));
        assert!(owner_matches("etcd:etcd", Some("etcd:etcd")));
        assert!(!owner_matches("etcd:root", Some("etcd:etcd")));
        assert!(!owner_matches("root:root", Some("0")));
    }

    #[test]
    fn spec_validation() {
        assert!(FileSpec::mode(0o17777).validate().is_err());
        assert!(FileSpec::mode(0o600).owned_by("a b").validate().is_err());
        FileSpec::mode(0o600)
            .owned_by("etcd:etcd")
            .validate()
            .unwrap();
    }

    #[test]
    fn local_temp_is_a_hidden_sibling() {
        let t = local_temp(Path::new("/tmp/dir/file.bin")).unwrap();
        assert_eq!(t.parent(), Some(Path::new("/tmp/dir")));
        assert!(
            t.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(".file.bin.kubeseed-")
        );
        assert!(local_temp(Path::new("/")).is_err());
    }

    #[tokio::test]
    async fn hashing_reader_hashes_everything_read() {
        let mut r = HashingReader::new(&b"hello"[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).await.unwrap();
        assert_eq!(
            r.finish(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }
}
