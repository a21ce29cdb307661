//! Downloads: into a new owner-only local file, checked against the sha256
//! the host reports, then renamed into place.

use std::path::{Path, PathBuf};

use rand::Rng as _;
use russh::ChannelMsg;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::Instrument as _;

use super::CHUNK;
use super::remote_file::RemoteFile;
use super::spec::{DownloadOutcome, TransferMethod};
use crate::ssh::error::{SshError, Step};
use crate::ssh::exec::{ExecOutput, ExitStatus};
use crate::ssh::session::Session;
use crate::ssh::shell;

impl Session {
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
                return Err(self.remote_error(Step::Download, format!("{remote} does not exist")));
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
                    return Err(self.remote_error(
                        Step::Download,
                        format!(
                            "received content has sha256 {sha256}, the host reported {expected}: the file changed during the download?"
                        ),
                    ));
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
        channel
            .exec(true, self.privileged(&shell::send(remote)).as_bytes())
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

/// A hidden sibling of `local`, so the final rename stays on one filesystem.
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
}
