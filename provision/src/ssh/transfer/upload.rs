//! Uploads: skipped when the host has the same content, otherwise sent to a
//! temporary name beside the destination and renamed into place.

use std::path::Path;

use rand::Rng as _;
use sha2::{Digest, Sha256};
use tokio::io::AsyncRead;
use tracing::Instrument as _;

use super::hashing::{HashingReader, sha256_file};
use super::remote_file::{RemoteFile, owner_matches};
use super::spec::{FileSpec, TransferMethod, UploadOutcome};
use crate::ssh::error::{SshError, Step};
use crate::ssh::session::Session;
use crate::ssh::shell;

/// Why sending to the temporary name failed, and whether that name is
/// ours to clean up.
#[derive(Debug)]
pub(super) enum SendError {
    /// Nothing was created: the channel did not start, or the temporary name
    /// was already taken (by something that is not ours to remove).
    NothingCreated(SshError),
    /// The temporary file may exist, partly written.
    Partial(SshError),
}

impl Session {
    /// Uploads a local file to `remote` with `spec`'s mode and owner,
    /// creating missing parent directories (mode 0755). Skipped (nothing
    /// sent) when the host already has the same sha256.
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
    /// unit files), creating missing parent directories (mode 0755).
    /// Skipped when the host already has the same content.
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

    /// Streams everything `reader` yields to `remote`, creating missing
    /// parent directories (mode 0755). Never skipped: the content is only
    /// known once sent.
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
            // Also surfaces sudo and "not a regular file" before sending.
            self.prepare_destination(remote).await?;
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
        } = self.prepare_destination(remote).await?
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
            sha256,
            metadata_updated,
        }))
    }

    /// Sends the bytes to a new temporary name, then checks the size, sets
    /// mode and owner and renames into place. Returns the bytes sent.
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
        let sent = sent.and_then(|n| match expected {
            Some(e) if e != n => Err(SendError::Partial(self.remote_error(
                Step::Upload,
                format!("sent {n} bytes but expected {e}: did the local file change?"),
            ))),
            _ => Ok(n),
        });
        let sent = match sent {
            Ok(n) => n,
            Err(SendError::NothingCreated(e)) => return Err(e),
            Err(SendError::Partial(e)) => {
                // The temporary file must not pile up.
                self.helper_best_effort(&shell::remove(&tmp), Step::Upload)
                    .await;
                return Err(e);
            }
        };
        self.helper(
            &shell::finalize(&tmp, remote, sent, spec.mode, spec.owner.as_deref()),
            Step::Finalize,
        )
        .await?;
        tracing::info!(remote, bytes = sent, method = ?spec.method, "uploaded");
        Ok(sent)
    }
}
