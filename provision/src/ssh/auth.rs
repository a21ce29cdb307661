//! Client authentication: a private key (file or Secret bytes) or ssh-agent.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use russh::keys::{PrivateKey, PrivateKeyWithHashAlg};

use super::error::{SshError, Step};
use super::handler::ClientHandler;

/// The key of a `kubernetes.io/ssh-auth` Secret that holds the private key.
pub const SSH_AUTH_SECRET_KEY: &str = "ssh-privatekey";

/// How the client proves who it is.
#[derive(Clone)]
pub enum Auth {
    /// An OpenSSH or PEM private key file (ed25519, ECDSA or RSA), optionally
    /// encrypted with `passphrase`.
    KeyFile {
        /// The file.
        path: PathBuf,
        /// The passphrase of an encrypted key.
        passphrase: Option<String>,
    },
    /// The bytes of a private key, e.g. the `ssh-privatekey` entry of a
    /// `kubernetes.io/ssh-auth` Secret.
    KeyBytes {
        /// The key, PEM/OpenSSH text.
        key: Arc<[u8]>,
        /// Where the bytes came from (`Secret kubeseed-system/kubeseed-ssh`), for messages.
        origin: String,
        /// The passphrase of an encrypted key.
        passphrase: Option<String>,
    },
    /// Every identity of the ssh-agent at `SSH_AUTH_SOCK` (workstation use).
    Agent,
    /// Every identity of the ssh-agent listening on this socket.
    AgentSocket(PathBuf),
}

impl fmt::Debug for Auth {
    // Never print key material or passphrases.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::KeyFile { path, passphrase } => f
                .debug_struct("KeyFile")
                .field("path", path)
                .field("passphrase", &passphrase.as_ref().map(|_| "<redacted>"))
                .finish(),
            Auth::KeyBytes {
                origin, passphrase, ..
            } => f
                .debug_struct("KeyBytes")
                .field("origin", origin)
                .field("key", &"<redacted>")
                .field("passphrase", &passphrase.as_ref().map(|_| "<redacted>"))
                .finish(),
            Auth::Agent => f.write_str("Agent"),
            Auth::AgentSocket(p) => f.debug_tuple("AgentSocket").field(p).finish(),
        }
    }
}

impl Auth {
    /// A key file without passphrase.
    pub fn key_file(path: impl Into<PathBuf>) -> Self {
        Auth::KeyFile {
            path: path.into(),
            passphrase: None,
        }
    }

    /// The data of a `kubernetes.io/ssh-auth` Secret (`origin` names it for
    /// messages, e.g. `Secret kubeseed-system/kubeseed-ssh`).
    pub fn from_ssh_auth_secret<'a>(
        data: impl IntoIterator<Item = (&'a str, &'a [u8])>,
        origin: impl Into<String>,
        passphrase: Option<String>,
    ) -> Result<Self, SshError> {
        let origin = origin.into();
        let key = data
            .into_iter()
            .find(|(k, _)| *k == SSH_AUTH_SECRET_KEY)
            .map(|(_, v)| v)
            .ok_or_else(|| SshError::InvalidKey {
                source_name: origin.clone(),
                reason: format!(
                    "it has no `{SSH_AUTH_SECRET_KEY}` entry; create it with \
                     `kubectl create secret generic NAME --type=kubernetes.io/ssh-auth \
                     --from-file={SSH_AUTH_SECRET_KEY}=PATH`"
                ),
            })?;
        Ok(Auth::KeyBytes {
            key: Arc::from(key),
            origin,
            passphrase,
        })
    }

    /// What is offered, for messages.
    pub fn describe(&self) -> String {
        match self {
            Auth::KeyFile { path, .. } => format!("key file {}", path.display()),
            Auth::KeyBytes { origin, .. } => format!("key from {origin}"),
            Auth::Agent => "ssh-agent (SSH_AUTH_SOCK)".to_owned(),
            Auth::AgentSocket(p) => format!("ssh-agent at {}", p.display()),
        }
    }

    /// Loads and decrypts the private key (not for [`Auth::Agent`]).
    pub(crate) fn load_key(&self) -> Result<Option<PrivateKey>, SshError> {
        let (text, passphrase, name) = match self {
            Auth::KeyFile { path, passphrase } => {
                let text = std::fs::read(path).map_err(|e| SshError::InvalidKey {
                    source_name: path.display().to_string(),
                    reason: format!("cannot read it: {e}"),
                })?;
                (text, passphrase, path.display().to_string())
            }
            Auth::KeyBytes {
                key,
                origin,
                passphrase,
            } => (key.to_vec(), passphrase, origin.clone()),
            Auth::Agent | Auth::AgentSocket(_) => return Ok(None),
        };
        decode_key(&text, passphrase.as_deref(), &name).map(Some)
    }
}

fn decode_key(bytes: &[u8], passphrase: Option<&str>, name: &str) -> Result<PrivateKey, SshError> {
    let invalid = |reason: String| SshError::InvalidKey {
        source_name: name.to_owned(),
        reason,
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|_| invalid("it is not text; expected an OpenSSH or PEM private key".into()))?;
    if text.trim().is_empty() {
        return Err(invalid("it is empty".into()));
    }
    match russh::keys::decode_secret_key(text, passphrase) {
        Ok(key) => Ok(key),
        Err(russh::keys::Error::KeyIsEncrypted) => Err(invalid(
            "the key is encrypted and no passphrase was given; supply its passphrase".into(),
        )),
        Err(e) if passphrase.is_some() => Err(invalid(format!(
            "cannot decode or decrypt it ({e}); check the passphrase"
        ))),
        Err(e) => Err(invalid(format!(
            "cannot decode it ({e}); expected an ed25519, ECDSA or RSA private key in OpenSSH or PEM form"
        ))),
    }
}

/// Authenticates `handle` as `user`; `host` is for messages.
pub(crate) async fn authenticate(
    handle: &mut russh::client::Handle<ClientHandler>,
    auth: &Auth,
    user: &str,
    host: &str,
) -> Result<(), SshError> {
    let protocol = |source| SshError::Protocol {
        host: host.to_owned(),
        step: Step::Authenticate,
        source,
    };
    let rejected = || SshError::AuthRejected {
        host: host.to_owned(),
        user: user.to_owned(),
        method: auth.describe(),
    };
    match auth.load_key()? {
        Some(key) => {
            // RSA keys sign with the best SHA-2 variant the server accepts.
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(protocol)?
                .flatten();
            let key = PrivateKeyWithHashAlg::new(Arc::new(key), hash);
            let result = handle
                .authenticate_publickey(user, key)
                .await
                .map_err(protocol)?;
            if result.success() {
                Ok(())
            } else {
                Err(rejected())
            }
        }
        None => {
            let socket = match auth {
                Auth::AgentSocket(p) => Some(p.as_path()),
                _ => None,
            };
            authenticate_with_agent(handle, socket, user, host, rejected).await
        }
    }
}

async fn authenticate_with_agent(
    handle: &mut russh::client::Handle<ClientHandler>,
    socket: Option<&std::path::Path>,
    user: &str,
    host: &str,
    rejected: impl Fn() -> SshError,
) -> Result<(), SshError> {
    let agent_err = |reason: String| SshError::Agent {
        host: host.to_owned(),
        reason,
    };
    let socket: PathBuf = match socket {
        Some(p) => p.to_owned(),
        None => std::env::var_os("SSH_AUTH_SOCK")
            .map(PathBuf::from)
            .ok_or_else(|| {
                agent_err(
                    "SSH_AUTH_SOCK is not set; start ssh-agent and `ssh-add` a key, or give a key file"
                        .into(),
                )
            })?,
    };
    let mut agent = russh::keys::agent::client::AgentClient::connect_uds(&socket)
        .await
        .map_err(|e| {
            agent_err(format!(
                "cannot connect to the agent at {}: {e}",
                socket.display()
            ))
        })?;
    let identities = agent
        .request_identities()
        .await
        .map_err(|e| agent_err(format!("cannot list identities: {e}")))?;
    if identities.is_empty() {
        return Err(agent_err("the agent holds no keys; `ssh-add` one".into()));
    }
    let hash = handle
        .best_supported_rsa_hash()
        .await
        .map_err(|source| SshError::Protocol {
            host: host.to_owned(),
            step: Step::Authenticate,
            source,
        })?
        .flatten();
    for identity in identities {
        let russh::keys::agent::AgentIdentity::PublicKey { key, .. } = identity else {
            continue;
        };
        let hash = if key.algorithm().is_rsa() { hash } else { None };
        match handle
            .authenticate_publickey_with(user, key, hash, &mut agent)
            .await
        {
            Ok(r) if r.success() => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(agent_err(format!("signing failed: {e}"))),
        }
    }
    Err(rejected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let a = Auth::KeyBytes {
            key: Arc::from(&b"-----BEGIN OPENSSH PRIVATE KEY-----"[..]),
            origin: "Secret ns/s".into(),
            passphrase: Some("hunter2".into()),
        };
        let d = format!("{a:?}");
        assert!(!d.contains("hunter2") && !d.contains("BEGIN"), "{d}");
    }

    #[test]
    fn secret_without_privatekey_entry_says_how_to_make_one() {
        let e = Auth::from_ssh_auth_secret([("other", &b"x"[..])], "Secret ns/s", None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("Secret ns/s") && e.contains("ssh-privatekey"),
            "{e}"
        );
    }

    #[test]
    fn garbage_and_empty_keys_are_clear_errors() {
        let e = decode_key(b"", None, "k").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = decode_key(b"hello", None, "k").unwrap_err().to_string();
        assert!(e.contains("cannot decode"), "{e}");
        let e = decode_key(&[0xff, 0xfe], None, "k")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not text"), "{e}");
    }
}
