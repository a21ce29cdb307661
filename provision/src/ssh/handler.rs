//! The russh client handler: it only decides on the server's host key.

use std::sync::{Arc, Mutex};

use russh::keys::PublicKeyOrCertificate;

use super::error::{SshError, Step};
use super::host_key::{HostKeyPolicy, ObservedHostKey};

/// What ends a connection attempt inside russh's event loop.
#[derive(Debug)]
pub(crate) enum HandlerError {
    /// The protocol layer failed.
    Russh(russh::Error),
    /// The host key was refused; carries the typed reason.
    HostKey(Box<SshError>),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Russh(e)
    }
}

impl HandlerError {
    pub(crate) fn into_ssh(self, host: &str, step: Step) -> SshError {
        match self {
            HandlerError::HostKey(e) => *e,
            HandlerError::Russh(source) => SshError::Protocol {
                host: host.to_owned(),
                step,
                source,
            },
        }
    }
}

/// Verifies the host key against the caller's policy and remembers what the
/// host presented.
#[derive(Debug)]
pub(crate) struct ClientHandler {
    pub(crate) host: String,
    pub(crate) address: String,
    pub(crate) port: u16,
    pub(crate) policy: HostKeyPolicy,
    pub(crate) observed: Arc<Mutex<Option<ObservedHostKey>>>,
}

impl russh::client::Handler for ClientHandler {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_public_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => key,
            // Host certificates are never requested (Preferred has none), so a
            // certificate here is a server misbehaving.
            PublicKeyOrCertificate::Certificate(_) => {
                return Err(HandlerError::HostKey(Box::new(SshError::Remote {
                    host: self.host.clone(),
                    step: Step::Handshake,
                    reason: "the host presented a certificate that was not asked for".into(),
                })));
            }
        };
        match self
            .policy
            .verify(&self.host, &self.address, self.port, key)
        {
            Ok(observed) => {
                tracing::debug!(host = %self.host, key = %observed.key, first_seen = observed.first_seen, "host key accepted");
                if let Ok(mut slot) = self.observed.lock() {
                    *slot = Some(observed);
                }
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(host = %self.host, error = %e, "host key refused");
                Err(HandlerError::HostKey(Box::new(e)))
            }
        }
    }
}
