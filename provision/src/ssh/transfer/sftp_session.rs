//! SFTP sessions with the rights file operations need: the `sftp` subsystem
//! for root, `sudo -n sftp-server` on an exec channel otherwise (the
//! subsystem would run as the login user).

use russh_sftp::client::SftpSession;

use crate::ssh::error::{SshError, Step};
use crate::ssh::session::Session;
use crate::ssh::shell;

impl Session {
    pub(super) async fn sftp(&self, step: Step) -> Result<SftpSession, SshError> {
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
}
