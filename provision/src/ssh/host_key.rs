//! Host-key verification: the caller always says which key to trust.
//!
//! There is deliberately no "accept any key" policy. [`HostKeyPolicy::FirstSeen`]
//! accepts the key of a host seen for the first time and hands it back in
//! [`ObservedHostKey`]; the caller records it and pins it from then on.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use russh::keys::{Algorithm, HashAlg, PublicKey};

use super::error::SshError;

/// A host's public key, parsed from its OpenSSH form (`ssh-ed25519 AAAA... [comment]`).
/// Two keys are equal when the key material is; comments do not count.
#[derive(Clone)]
pub struct HostKey(PublicKey);

impl PartialEq for HostKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.key_data() == other.0.key_data()
    }
}

impl Eq for HostKey {}

impl HostKey {
    /// Parses an OpenSSH public-key line, e.g. the content of
    /// `/etc/ssh/ssh_host_ed25519_key.pub` or a `hostKey` field.
    pub fn parse(line: &str) -> Result<Self, SshError> {
        let trimmed = line.trim();
        PublicKey::from_openssh(trimmed).map(Self).map_err(|e| {
            SshError::InvalidInput(format!(
                "host key {:?} is not an OpenSSH public key ({e}); expected a line like \
                 `ssh-ed25519 AAAAC3Nza...` as found in /etc/ssh/ssh_host_ed25519_key.pub",
                abbreviate(trimmed)
            ))
        })
    }

    /// The SHA256 fingerprint as OpenSSH prints it (`SHA256:...`).
    pub fn fingerprint(&self) -> String {
        self.0.fingerprint(HashAlg::Sha256).to_string()
    }

    /// The key as an OpenSSH line without comment, suitable for recording.
    pub fn to_openssh(&self) -> String {
        let mut key = self.0.clone();
        key.set_comment("");
        key.to_openssh()
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| self.fingerprint())
    }

    /// The key's algorithm name, e.g. `ssh-ed25519`.
    pub fn algorithm(&self) -> String {
        self.0.algorithm().as_str().to_owned()
    }

    pub(crate) fn same_key(&self, other: &PublicKey) -> bool {
        self.0.key_data() == other.key_data()
    }

    pub(crate) fn from_public(key: PublicKey) -> Self {
        Self(key)
    }

    fn host_key_algorithms(&self) -> Vec<Algorithm> {
        signature_algorithms(&self.0.algorithm())
    }
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey({} {})", self.algorithm(), self.fingerprint())
    }
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.algorithm(), self.fingerprint())
    }
}

fn abbreviate(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(40) {
        Some((i, _)) => Cow::Owned(format!("{}...", &s[..i])),
        None => Cow::Borrowed(s),
    }
}

/// Which host key to trust, chosen explicitly by the caller.
#[derive(Debug, Clone)]
pub enum HostKeyPolicy {
    /// Only this key.
    Pinned(HostKey),
    /// The keys recorded for the host in an OpenSSH `known_hosts` file
    /// (`host` for port 22, `[host]:port` otherwise; hashed entries work).
    KnownHosts(PathBuf),
    /// A host never seen before: accept its key and return it in
    /// [`ObservedHostKey`] so the caller records it and uses
    /// [`HostKeyPolicy::Pinned`] for every later connection.
    FirstSeen,
}

/// The key a host presented on a successful connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedHostKey {
    /// The key.
    pub key: HostKey,
    /// True when it was accepted under [`HostKeyPolicy::FirstSeen`] and must
    /// now be recorded by the caller.
    pub first_seen: bool,
}

/// The signature algorithms a server may use to prove it holds `alg`.
fn signature_algorithms(alg: &Algorithm) -> Vec<Algorithm> {
    match alg {
        Algorithm::Rsa { .. } => vec![
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ],
        other => vec![other.clone()],
    }
}

/// The `known_hosts` name of a host: plain for port 22, `[host]:port` otherwise.
fn known_hosts_name(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_owned()
    } else {
        format!("[{address}]:{port}")
    }
}

fn known_keys(path: &Path, address: &str, port: u16) -> Result<Vec<PublicKey>, SshError> {
    russh::keys::known_hosts::known_host_keys_path(address, port, path)
        .map(|keys| keys.into_iter().map(|(_, k)| k).collect())
        .map_err(|e| {
            SshError::InvalidInput(format!(
                "cannot read the entries for {} in {}: {e}",
                known_hosts_name(address, port),
                path.display()
            ))
        })
}

impl HostKeyPolicy {
    /// The host-key algorithms to offer in key exchange, so the server
    /// presents the kind of key we hold for it (a host with ed25519 and RSA
    /// keys must show the RSA one if that is what was pinned).
    pub(crate) fn preferred_algorithms(
        &self,
        address: &str,
        port: u16,
    ) -> Result<Option<Vec<Algorithm>>, SshError> {
        let keys: Vec<Algorithm> = match self {
            HostKeyPolicy::Pinned(k) => k.host_key_algorithms(),
            HostKeyPolicy::KnownHosts(path) => known_keys(path, address, port)?
                .iter()
                .flat_map(|k| signature_algorithms(&k.algorithm()))
                .collect(),
            HostKeyPolicy::FirstSeen => return Ok(None),
        };
        let mut unique: Vec<Algorithm> = Vec::new();
        for k in keys {
            if !unique.contains(&k) {
                unique.push(k);
            }
        }
        Ok((!unique.is_empty()).then_some(unique))
    }

    /// Decides on the key a host presented. `host` is for messages.
    pub(crate) fn verify(
        &self,
        host: &str,
        address: &str,
        port: u16,
        presented: &PublicKey,
    ) -> Result<ObservedHostKey, SshError> {
        let observed = HostKey::from_public(presented.clone());
        let mismatch = |expected: &HostKey| SshError::HostKeyMismatch {
            host: host.to_owned(),
            expected_fingerprint: expected.fingerprint(),
            presented_fingerprint: observed.fingerprint(),
        };
        match self {
            HostKeyPolicy::Pinned(pinned) => {
                if pinned.same_key(presented) {
                    Ok(ObservedHostKey {
                        key: observed,
                        first_seen: false,
                    })
                } else {
                    Err(mismatch(pinned))
                }
            }
            HostKeyPolicy::KnownHosts(path) => {
                let known = known_keys(path, address, port)?;
                if known.iter().any(|k| k.key_data() == presented.key_data()) {
                    return Ok(ObservedHostKey {
                        key: observed,
                        first_seen: false,
                    });
                }
                let same_kind = known
                    .iter()
                    .find(|k| k.algorithm() == presented.algorithm())
                    .or(known.first());
                match same_kind {
                    Some(k) => Err(mismatch(&HostKey::from_public(k.clone()))),
                    None => Err(SshError::HostKeyUnknown {
                        host: host.to_owned(),
                        presented_fingerprint: observed.fingerprint(),
                        known_hosts: path.clone(),
                    }),
                }
            }
            HostKeyPolicy::FirstSeen => Ok(ObservedHostKey {
                key: observed,
                first_seen: true,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ a@b";
    const ED_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

    fn key(line: &str) -> PublicKey {
        PublicKey::from_openssh(line).unwrap()
    }

    #[test]
    fn parse_rejects_garbage_with_a_hint() {
        let e = HostKey::parse("not a key").unwrap_err().to_string();
        assert!(e.contains("not an OpenSSH public key"), "{e}");
        assert!(e.contains("ssh_host_ed25519_key.pub"), "{e}");
    }

    #[test]
    fn openssh_form_drops_the_comment() {
        let k = HostKey::parse(ED_A).unwrap();
        assert!(!k.to_openssh().contains("a@b"));
        assert_eq!(
            HostKey::parse(&k.to_openssh()).unwrap(),
            HostKey::parse(ED_A).unwrap()
        );
        assert!(k.fingerprint().starts_with("SHA256:"));
    }

    #[test]
    fn pinned_accepts_its_key_and_rejects_another_with_both_fingerprints() {
        let policy = HostKeyPolicy::Pinned(HostKey::parse(ED_A).unwrap());
        let ok = policy.verify("h:22", "h", 22, &key(ED_A)).unwrap();
        assert!(!ok.first_seen);
        match policy.verify("h:22", "h", 22, &key(ED_B)).unwrap_err() {
            SshError::HostKeyMismatch {
                expected_fingerprint,
                presented_fingerprint,
                ..
            } => {
                assert_eq!(
                    expected_fingerprint,
                    HostKey::parse(ED_A).unwrap().fingerprint()
                );
                assert_eq!(
                    presented_fingerprint,
                    HostKey::parse(ED_B).unwrap().fingerprint()
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn first_seen_returns_the_key() {
        let seen = HostKeyPolicy::FirstSeen
            .verify("h:22", "h", 22, &key(ED_B))
            .unwrap();
        assert!(seen.first_seen);
        assert_eq!(seen.key, HostKey::parse(ED_B).unwrap());
        assert!(
            HostKeyPolicy::FirstSeen
                .preferred_algorithms("h", 22)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn known_hosts_matches_bracketed_port_and_reports_unknown_and_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let b64 = ED_A.split(' ').nth(1).unwrap();
        std::fs::write(
            &path,
            format!("# comment\n[10.0.0.5]:2222 ssh-ed25519 {b64}\nother ssh-ed25519 {b64}\n"),
        )
        .unwrap();
        let policy = HostKeyPolicy::KnownHosts(path.clone());
        policy.verify("x", "10.0.0.5", 2222, &key(ED_A)).unwrap();
        assert!(matches!(
            policy.verify("x", "10.0.0.5", 2222, &key(ED_B)),
            Err(SshError::HostKeyMismatch { .. })
        ));
        assert!(matches!(
            policy.verify("x", "10.0.0.5", 22, &key(ED_A)),
            Err(SshError::HostKeyUnknown { .. })
        ));
        assert_eq!(
            policy.preferred_algorithms("10.0.0.5", 2222).unwrap(),
            Some(vec![Algorithm::Ed25519])
        );
    }

    #[test]
    fn rsa_pins_offer_sha2_signatures() {
        let algs = signature_algorithms(&Algorithm::Rsa { hash: None });
        assert_eq!(algs.len(), 2);
        assert!(
            algs.iter()
                .all(|a| matches!(a, Algorithm::Rsa { hash: Some(_) }))
        );
    }
}
