//! Upload over SFTP: pipelined write requests into the temporary file.

use russh_sftp::protocol::{FileAttributes, OpenFlags};
use tokio::io::{AsyncRead, AsyncWriteExt, BufReader};

use super::CHUNK;
use super::upload::SendError;
use crate::ssh::error::{SshError, Step};
use crate::ssh::session::Session;

impl Session {
    /// Streams `reader` into the new file `tmp`; returns the bytes sent.
    pub(super) async fn send_sftp<R>(&self, reader: R, tmp: &str) -> Result<u64, SendError>
    where
        R: AsyncRead + Unpin + Send,
    {
        let sftp_err = |source| SshError::Sftp {
            host: self.host().to_owned(),
            step: Step::Upload,
            source,
        };
        let sftp = self
            .sftp(Step::Upload)
            .await
            .map_err(SendError::NothingCreated)?;
        let attrs = FileAttributes {
            permissions: Some(0o600),
            ..FileAttributes::empty()
        };
        // EXCLUDE is O_EXCL on the host: an existing file or symlink at the
        // temporary name is neither followed nor overwritten (nor ours to
        // remove afterwards).
        let mut file = sftp
            .open_with_flags_and_attributes(
                tmp,
                OpenFlags::CREATE | OpenFlags::EXCLUDE | OpenFlags::WRITE,
                attrs,
            )
            .await
            .map_err(|e| SendError::NothingCreated(sftp_err(e)))?;
        // Whole buffers: russh-sftp cuts each write into requests of
        // max_write_packet_len; with tokio::io::copy they would be 8 KiB.
        let mut reader = BufReader::with_capacity(CHUNK, reader);
        let n = tokio::io::copy_buf(&mut reader, &mut file)
            .await
            .map_err(|e| SendError::Partial(self.io_error(Step::Upload, "writing over SFTP")(e)))?;
        // Shutdown waits for every outstanding write acknowledgement.
        file.shutdown().await.map_err(|e| {
            SendError::Partial(self.io_error(Step::Upload, "finishing the SFTP write")(e))
        })?;
        let _ = sftp.close().await;
        Ok(n)
    }
}
