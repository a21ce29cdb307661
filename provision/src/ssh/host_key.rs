//! Host-key verification: the caller always says which key to trust.
//!
//! There is deliberately no "accept any key" policy. [`HostKeyPolicy::FirstSeen`]
//! accepts the key of a host seen for the first time and hands it back in
//! [`ObservedHostKey`]; the caller records it and pins it from then on.

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PublicKey};

use super::error::SshError;
use super::known_hosts;

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

    /// The key type's name for messages (`ssh-ed25519`, `ssh-rsa`,
    /// `ecdsa-sha2-nistp256`...), static so errors stay small.
    pub(crate) fn key_type(&self) -> &'static str {
        match self.0.algorithm() {
            Algorithm::Ed25519 => "ssh-ed25519",
            Algorithm::Rsa { .. } => "ssh-rsa",
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            } => "ecdsa-sha2-nistp256",
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP384,
            } => "ecdsa-sha2-nistp384",
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP521,
            } => "ecdsa-sha2-nistp521",
            Algorithm::Dsa => "ssh-dss",
            Algorithm::SkEd25519 => "sk-ssh-ed25519@openssh.com",
            Algorithm::SkEcdsaSha2NistP256 => "sk-ecdsa-sha2-nistp256@openssh.com",
            _ => "another key type",
        }
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
    /// (`host` for port 22, `[host]:port` otherwise; patterns, negation and
    /// hashed names work). A key on a matching `@revoked` line is refused
    /// even if another line lists it; `@cert-authority` lines are not
    /// supported and say so ([`SshError::HostCertificatesUnsupported`]).
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

/// The keys every hop of a connection presented: the host's, and each
/// bastion's on the way. A caller records every one with `first_seen` set
/// (the bastion's goes into a status' `observedBastionHostKey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionKeys {
    /// The key of the host the session runs commands on.
    pub host: ObservedHostKey,
    /// The bastions' keys, nearest first: the host's bastion, then that
    /// bastion's own, and so on. Empty without a bastion.
    pub bastions: Vec<ObservedHostKey>,
}

impl ConnectionKeys {
    /// Whether some hop's key was seen for the first time and must be recorded.
    pub fn any_first_seen(&self) -> bool {
        self.host.first_seen || self.bastions.iter().any(|k| k.first_seen)
    }
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

/// Every host key algorithm the engine accepts, in order of preference.
/// `ssh-rsa` with SHA-1 signatures is not among them: OpenSSH itself has
/// refused it by default since 8.8.
const HOST_KEY_ALGORITHMS: &[Algorithm] = &[
    Algorithm::Ed25519,
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP256,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP384,
    },
    Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP521,
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha512),
    },
    Algorithm::Rsa {
        hash: Some(HashAlg::Sha256),
    },
];

impl HostKeyPolicy {
    /// The host-key algorithms to offer in key exchange: those of the keys
    /// we hold for the host first, so a host with ed25519 and RSA keys
    /// presents the RSA one if that is what was pinned; then every other,
    /// so a host without a key of the recorded type still completes key
    /// exchange and is refused with a [`SshError::HostKeyMismatch`] naming
    /// both keys, not a bare "no common algorithm".
    pub(crate) fn preferred_algorithms(
        &self,
        address: &str,
        port: u16,
    ) -> Result<Vec<Algorithm>, SshError> {
        let ours: Vec<Algorithm> = match self {
            HostKeyPolicy::Pinned(k) => k.host_key_algorithms(),
            HostKeyPolicy::KnownHosts(path) => known_hosts::lookup(path, address, port)?
                .keys
                .iter()
                .flat_map(|(_, k)| signature_algorithms(&k.algorithm()))
                .collect(),
            HostKeyPolicy::FirstSeen => Vec::new(),
        };
        let mut unique: Vec<Algorithm> = Vec::new();
        for k in ours.into_iter().chain(HOST_KEY_ALGORITHMS.iter().cloned()) {
            if !unique.contains(&k) {
                unique.push(k);
            }
        }
        Ok(unique)
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
            expected_algorithm: expected.key_type(),
            expected_fingerprint: expected.fingerprint(),
            presented_algorithm: observed.key_type(),
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
                let entries = known_hosts::lookup(path, address, port)?;
                if let Some((line, _)) = entries
                    .revoked
                    .iter()
                    .find(|(_, k)| k.key_data() == presented.key_data())
                {
                    return Err(SshError::HostKeyRevoked {
                        host: host.to_owned(),
                        presented_fingerprint: observed.fingerprint(),
                        known_hosts: path.clone(),
                        line: *line,
                    });
                }
                if entries
                    .keys
                    .iter()
                    .any(|(_, k)| k.key_data() == presented.key_data())
                {
                    return Ok(ObservedHostKey {
                        key: observed,
                        first_seen: false,
                    });
                }
                let same_kind = entries
                    .keys
                    .iter()
                    .find(|(_, k)| k.algorithm() == presented.algorithm())
                    .or(entries.keys.first());
                match (same_kind, entries.cert_authorities.first()) {
                    (Some((_, k)), _) => Err(mismatch(&HostKey::from_public(k.clone()))),
                    (None, Some(line)) => Err(SshError::HostCertificatesUnsupported {
                        host: host.to_owned(),
                        known_hosts: path.clone(),
                        line: *line,
                    }),
                    (None, None) => Err(SshError::HostKeyUnknown {
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
        assert_eq!(
            HostKeyPolicy::FirstSeen
                .preferred_algorithms("h", 22)
                .unwrap(),
            HOST_KEY_ALGORITHMS
        );
    }

    #[test]
    fn pinned_algorithms_come_first_and_every_other_follows() {
        let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDLpaKce/lTwDc8iG6D5R/BfmvVrKua7dp+HvTCzGRxfN+lazrj3RbuZyyimwjQbZpk01wi83jFKq+BjGWCCEIBuCEEnZ1bOZZ5gjnGDGzYUnpv+bSxeBcxlBuAjEiO7u19CoJXx3Mcnz4mshMmIw5+52oGQOiHmvbblekMHn+TjQ==";
        let policy = HostKeyPolicy::Pinned(HostKey::parse(rsa).unwrap());
        let algs = policy.preferred_algorithms("h", 22).unwrap();
        assert!(
            matches!(algs[0], Algorithm::Rsa { hash: Some(_) }),
            "{algs:?}"
        );
        assert!(algs.contains(&Algorithm::Ed25519), "{algs:?}");
        assert_eq!(algs.len(), HOST_KEY_ALGORITHMS.len());
        assert!(!algs.contains(&Algorithm::Rsa { hash: None }));
    }

    #[test]
    fn revoked_beats_listed_and_cert_authorities_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let a = ED_A.split(' ').nth(1).unwrap();
        let b = ED_B.split(' ').nth(1).unwrap();
        std::fs::write(
            &path,
            format!("h ssh-ed25519 {a}\n@revoked * ssh-ed25519 {a}\n@cert-authority ca.example ssh-ed25519 {b}\n"),
        )
        .unwrap();
        let policy = HostKeyPolicy::KnownHosts(path.clone());
        match policy.verify("h:22", "h", 22, &key(ED_A)).unwrap_err() {
            SshError::HostKeyRevoked { line, .. } => assert_eq!(line, 2),
            other => panic!("unexpected {other:?}"),
        }
        match policy
            .verify("ca.example:22", "ca.example", 22, &key(ED_B))
            .unwrap_err()
        {
            SshError::HostCertificatesUnsupported { line, .. } => assert_eq!(line, 3),
            other => panic!("unexpected {other:?}"),
        }
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
            policy.preferred_algorithms("10.0.0.5", 2222).unwrap()[0],
            Algorithm::Ed25519
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
