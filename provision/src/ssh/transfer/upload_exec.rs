//! Upload over a plain exec channel: the host's `dd` writes stdin into the
//! temporary file. No per-request acknowledgements, so it is bounded only by
//! the channel window and the cipher.

use russh::ChannelMsg;
use tokio::io::{AsyncRead, AsyncWriteExt, BufReader};

use super::CHUNK;
use super::upload::SendError;
use crate::ssh::error::{SshError, Step};
use crate::ssh::exec::{ExecOutput, ExitStatus};
use crate::ssh::session::Session;
use crate::ssh::shell;

impl Session {
    /// Streams `reader` into the new file `tmp`; returns the bytes sent.
    pub(super) async fn send_exec<R>(&self, reader: R, tmp: &str) -> Result<u64, SendError>
    where
        R: AsyncRead + Unpin + Send,
    {
        let protocol = |source| {
            SendError::NothingCreated(SshError::Protocol {
                host: self.host().to_owned(),
                step: Step::Upload,
                source,
            })
        };
        let channel = self
            .open_channel()
            .await
            .map_err(SendError::NothingCreated)?;
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
            let copied = tokio::io::copy_buf(&mut reader, &mut w).await;
            // EOF even when the local side failed: the host's `dd` ends, so
            // the status below arrives (instead of waiting forever), and the
            // cleanup that follows a failure runs after `dd` stopped writing.
            let eof = w.shutdown().await;
            let n = copied?;
            eof?;
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
        if out.status == ExitStatus::Code(shell::EXIT_NAME_TAKEN) {
            return Err(SendError::NothingCreated(
                self.remote_failure(Step::Upload, &out),
            ));
        }
        if !out.status.success() {
            return Err(SendError::Partial(self.remote_failure(Step::Upload, &out)));
        }
        match sent {
            Some(Ok(n)) => Ok(n),
            Some(Err(e)) => Err(SendError::Partial(self
                .io_error(Step::Upload, "sending data")(
                e
            ))),
            None => Err(SendError::Partial(self.remote_error(
                Step::Upload,
                "the host closed the channel before all data was sent",
            ))),
        }
    }
}
