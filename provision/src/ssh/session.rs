//! One authenticated connection to a host, reused for many channels.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use russh::client::{Config, Handle, Msg};
use russh::{Channel, Preferred, cipher, kex};
use tokio::net::TcpStream;
use tracing::Instrument as _;

use super::auth::authenticate;
use super::error::{SshError, Step};
use super::handler::ClientHandler;
use super::host_key::{ConnectionKeys, ObservedHostKey};
use super::limits::{Limits, Permits};
use super::target::SshTarget;

/// Ciphers in order of preference. AES-GCM first: with AES-NI it is the
/// fastest of the set on x86 (measured in `benches/transfer.rs`); every
/// OpenSSH since 6.2 offers it.
const CIPHERS: &[cipher::Name] = &[
    cipher::AES_256_GCM,
    cipher::CHACHA20_POLY1305,
    cipher::AES_256_CTR,
    cipher::AES_128_CTR,
];

/// Key exchange in order of preference: post-quantum hybrid and curve25519
/// first, then the NIST curves (the only ones a FIPS-restricted or
/// hardened OpenSSH may allow, `KexAlgorithms ecdh-sha2-nistp*`), then the
/// finite-field groups. russh's default leaves the NIST curves out, and such
/// a server could not be reached at all ("No common Kex algorithm").
const KEX: &[kex::Name] = &[
    kex::MLKEM768X25519_SHA256,
    kex::CURVE25519,
    kex::CURVE25519_PRE_RFC_8731,
    kex::ECDH_SHA2_NISTP256,
    kex::ECDH_SHA2_NISTP384,
    kex::ECDH_SHA2_NISTP521,
    kex::DH_GEX_SHA256,
    kex::DH_G18_SHA512,
    kex::DH_G17_SHA512,
    kex::DH_G16_SHA512,
    kex::DH_G15_SHA512,
    kex::DH_G14_SHA256,
    kex::EXTENSION_SUPPORT_AS_CLIENT,
    kex::EXTENSION_OPENSSH_STRICT_KEX_AS_CLIENT,
];

/// An authenticated SSH connection. Cheap operations open a channel each;
/// the connection itself is opened once. Dropping it disconnects.
pub struct Session {
    handle: Handle<ClientHandler>,
    host: String,
    user: String,
    pub(crate) limits: Limits,
    host_key: ObservedHostKey,
    // Kept alive: our TCP stream is a channel of the bastion's connection.
    bastion: Option<Box<Session>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("host", &self.host)
            .field("user", &self.user)
            .field("host_key", &self.host_key)
            .field("bastion", &self.bastion)
            .finish()
    }
}

impl Session {
    /// Connects, verifies the host key under the target's policy and
    /// authenticates; through the bastion chain if there is one. Returns the
    /// key every hop presented (the bastions' too), so a caller records each
    /// one seen for the first time. Transient failures (refused, reset,
    /// timed out) are retried with backoff and jitter; a refused host key or
    /// login is not.
    pub async fn connect(
        target: &SshTarget,
        limits: &Limits,
    ) -> Result<(Session, ConnectionKeys), SshError> {
        target.validate()?;
        let span = tracing::info_span!("ssh.connect", host = %target.host(), user = %target.user);
        async {
            let attempts = limits.connect_attempts.max(1);
            let mut attempt = 1;
            loop {
                match Self::connect_once(target, limits).await {
                    Ok(session) => {
                        let keys = session.connection_keys();
                        return Ok((session, keys));
                    }
                    Err(e) if e.is_transient() && attempt < attempts => {
                        let delay = limits.backoff(attempt);
                        tracing::warn!(error = %e, attempt, ?delay, "connect failed; retrying");
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn connect_once(target: &SshTarget, limits: &Limits) -> Result<Session, SshError> {
        let host = target.host();
        let (bastion, stream): (Option<Box<Session>>, _) = match &target.bastion {
            Some(b) => {
                // Boxed: the bastion may itself have a bastion.
                let (bastion, _) = Box::pin(Session::connect(b, limits)).await?;
                let channel = bastion
                    .handle
                    .channel_open_direct_tcpip(
                        target.address.clone(),
                        u32::from(target.port),
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|source| SshError::Protocol {
                        host: host.clone(),
                        step: Step::Connect,
                        source,
                    })?;
                tracing::debug!(bastion = %bastion.host, "direct-tcpip channel open");
                (
                    Some(Box::new(bastion)),
                    Stream::Tunnel(channel.into_stream()),
                )
            }
            None => {
                let tcp = tokio::time::timeout(
                    limits.connect_timeout,
                    TcpStream::connect((target.address.as_str(), target.port)),
                )
                .await
                .map_err(|_| SshError::Timeout {
                    host: host.clone(),
                    step: Step::Connect,
                    after: limits.connect_timeout,
                })?
                .map_err(|source| SshError::Io {
                    host: host.clone(),
                    step: Step::Connect,
                    what: "TCP connect".into(),
                    source,
                })?;
                // Small requests (exec, SFTP acks) should not wait for Nagle.
                let _ = tcp.set_nodelay(true);
                (None, Stream::Tcp(tcp))
            }
        };

        let observed = Arc::new(Mutex::new(None));
        let handler = ClientHandler {
            host: host.clone(),
            address: target.address.clone(),
            port: target.port,
            policy: target.host_key.clone(),
            observed: observed.clone(),
        };
        let config = Arc::new(client_config(target, limits)?);
        let handshake = async {
            let mut handle = match stream {
                Stream::Tcp(s) => russh::client::connect_stream(config, s, handler).await,
                Stream::Tunnel(s) => russh::client::connect_stream(config, s, handler).await,
            }
            .map_err(|e| e.into_ssh(&host, Step::Handshake))?;
            authenticate(&mut handle, &target.auth, &target.user, &host).await?;
            Ok::<_, SshError>(handle)
        };
        let handle = tokio::time::timeout(limits.connect_timeout, handshake)
            .await
            .map_err(|_| SshError::Timeout {
                host: host.clone(),
                step: Step::Handshake,
                after: limits.connect_timeout,
            })??;
        let host_key = observed
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
            .ok_or_else(|| SshError::Remote {
                host: host.clone(),
                step: Step::Handshake,
                reason: "the connection was established without a verified host key".into(),
            })?;
        tracing::info!(host = %host, user = %target.user, key = %host_key.key, "connected");
        Ok(Session {
            handle,
            host,
            user: target.user.clone(),
            limits: limits.clone(),
            host_key,
            bastion,
        })
    }

    /// `address:port` of the host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The login user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Whether privileged work goes through `sudo -n`.
    pub fn needs_sudo(&self) -> bool {
        self.user != "root"
    }

    /// The host key the host presented.
    pub fn host_key(&self) -> &ObservedHostKey {
        &self.host_key
    }

    /// The keys of this host and of every bastion on the way, nearest first.
    pub fn connection_keys(&self) -> ConnectionKeys {
        let mut bastions = Vec::new();
        let mut hop = self.bastion();
        while let Some(b) = hop {
            bastions.push(b.host_key.clone());
            hop = b.bastion();
        }
        ConnectionKeys {
            host: self.host_key.clone(),
            bastions,
        }
    }

    /// The session of the bastion this one runs through.
    pub fn bastion(&self) -> Option<&Session> {
        self.bastion.as_deref()
    }

    /// Whether the connection has been closed.
    pub fn is_closed(&self) -> bool {
        self.handle.is_closed()
    }

    /// Disconnects politely (the bastion too).
    pub async fn close(self) -> Result<(), SshError> {
        self.handle
            .disconnect(russh::Disconnect::ByApplication, "", "en")
            .await
            .map_err(|source| SshError::Protocol {
                host: self.host.clone(),
                step: Step::Exec,
                source,
            })?;
        if let Some(b) = self.bastion {
            Box::pin(b.close()).await?;
        }
        Ok(())
    }

    pub(crate) async fn permits(&self) -> Permits {
        self.limits.acquire(&self.host).await
    }

    pub(crate) async fn open_channel(&self) -> Result<Channel<Msg>, SshError> {
        self.handle
            .channel_open_session()
            .await
            .map_err(|source| SshError::Protocol {
                host: self.host.clone(),
                step: Step::OpenChannel,
                source,
            })
    }
}

enum Stream {
    Tcp(TcpStream),
    Tunnel(russh::ChannelStream<Msg>),
}

fn client_config(target: &SshTarget, limits: &Limits) -> Result<Config, SshError> {
    let preferred = Preferred {
        kex: Cow::Borrowed(KEX),
        key: Cow::Owned(
            target
                .host_key
                .preferred_algorithms(&target.address, target.port)?,
        ),
        cipher: Cow::Borrowed(CIPHERS),
        ..Preferred::default()
    };
    Ok(Config {
        window_size: limits.window_size,
        maximum_packet_size: limits.max_packet_size,
        preferred,
        nodelay: true,
        keepalive_interval: Some(std::time::Duration::from_secs(30)),
        keepalive_max: 3,
        ..Config::default()
    })
}
