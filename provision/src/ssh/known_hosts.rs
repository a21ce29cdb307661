//! Reading an OpenSSH `known_hosts` file the way OpenSSH does (sshd(8),
//! "SSH_KNOWN_HOSTS FILE FORMAT"), for one host.
//!
//! - Names: `host` for port 22, `[host]:port` otherwise; comma-separated
//!   patterns with `*` and `?`, `!` to negate, case-insensitive; hashed
//!   names (`|1|salt|hash`, HMAC-SHA1) as `ssh-keygen -H` writes them.
//! - `@revoked` lines: that key is refused for the hosts the line names, even
//!   if another line lists it as the host's key.
//! - `@cert-authority` lines: host certificates are not supported (kubeseed
//!   verifies plain host keys); such a line for the host is reported, never
//!   silently skipped, so a caller can say why a host it expected a CA to
//!   vouch for is refused.
//!
//! Unlike OpenSSH, a line naming the host that cannot be parsed is an error,
//! not a warning: a mistyped `@revoked` line must not quietly revoke nothing.

use std::path::Path;

use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use russh::keys::PublicKey;
use sha1::Sha1;

use super::error::SshError;

/// What a known_hosts file says about one host.
#[derive(Debug, Default)]
pub(crate) struct HostEntries {
    /// The host's keys, with their 1-based line numbers.
    pub(crate) keys: Vec<(usize, PublicKey)>,
    /// Keys that must never be accepted for this host.
    pub(crate) revoked: Vec<(usize, PublicKey)>,
    /// Lines trusting a certificate authority for this host (unsupported).
    pub(crate) cert_authorities: Vec<usize>,
}

/// The name a host has in known_hosts: plain for port 22, `[host]:port` otherwise.
pub(crate) fn host_name(address: &str, port: u16) -> String {
    if port == 22 {
        address.to_owned()
    } else {
        format!("[{address}]:{port}")
    }
}

/// Reads `path` and returns the entries that name `address:port`.
pub(crate) fn lookup(path: &Path, address: &str, port: u16) -> Result<HostEntries, SshError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SshError::InvalidInput(format!(
            "cannot read the known_hosts file {}: {e}",
            path.display()
        ))
    })?;
    parse(&text, &host_name(address, port)).map_err(|(line, why)| {
        SshError::InvalidInput(format!(
            "{} line {line}, an entry for {}: {why}",
            path.display(),
            host_name(address, port)
        ))
    })
}

enum Marker {
    None,
    Revoked,
    CertAuthority,
}

fn parse(text: &str, name: &str) -> Result<HostEntries, (usize, String)> {
    let name = name.to_ascii_lowercase();
    let mut entries = HostEntries::default();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_ascii_whitespace();
        let (marker, patterns) = match fields.next() {
            Some("@revoked") => (Marker::Revoked, fields.next()),
            Some("@cert-authority") => (Marker::CertAuthority, fields.next()),
            Some(m) if m.starts_with('@') => {
                // An unknown marker naming this host is a mistake to report;
                // naming others, not ours to judge.
                if fields.next().is_some_and(|p| patterns_match(p, &name)) {
                    return Err((number, format!("unknown marker {m}")));
                }
                continue;
            }
            other => (Marker::None, other),
        };
        let Some(patterns) = patterns else {
            continue;
        };
        if !patterns_match(patterns, &name) {
            continue;
        }
        if matches!(marker, Marker::CertAuthority) {
            entries.cert_authorities.push(number);
            continue;
        }
        let (Some(kind), Some(data)) = (fields.next(), fields.next()) else {
            return Err((number, "no key type and key".into()));
        };
        let key = PublicKey::from_openssh(&format!("{kind} {data}"))
            .map_err(|e| (number, format!("the key does not parse ({e})")))?;
        match marker {
            Marker::Revoked => entries.revoked.push((number, key)),
            _ => entries.keys.push((number, key)),
        }
    }
    Ok(entries)
}

/// Whether a comma-separated pattern list names `name` (already lower
/// case): some pattern matches and no negated one does.
fn patterns_match(list: &str, name: &str) -> bool {
    let mut matched = false;
    for pattern in list.split(',') {
        if let Some(negated) = pattern.strip_prefix('!') {
            if glob(&negated.to_ascii_lowercase(), name) {
                return false;
            }
        } else if let Some(hashed) = pattern.strip_prefix("|1|") {
            matched |= hashed_matches(hashed, name);
        } else if glob(&pattern.to_ascii_lowercase(), name) {
            matched = true;
        }
    }
    matched
}

/// `salt|hash`, both base64: HMAC-SHA1(key = salt, name) == hash.
fn hashed_matches(hashed: &str, name: &str) -> bool {
    let engine = base64::engine::general_purpose::STANDARD;
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (engine.decode(salt), engine.decode(hash)) else {
        return false;
    };
    let Ok(mac) = Hmac::<Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.chain_update(name.as_bytes())
        .verify_slice(&hash)
        .is_ok()
}

/// OpenSSH's wildcard match: `*` any run of characters, `?` one character.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ";
    const B: &str = "AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF";

    #[test]
    fn globs_like_openssh() {
        assert!(glob("*", "anything"));
        assert!(glob("10.0.0.?", "10.0.0.5"));
        assert!(!glob("10.0.0.?", "10.0.0.50"));
        assert!(glob("*.example.com", "a.b.example.com"));
        assert!(!glob("*.example.com", "example.com"));
        assert!(glob("[10.0.0.5]:*", "[10.0.0.5]:2222"));
    }

    #[test]
    fn names_ports_negation_and_case() {
        let text = format!(
            "# comment\n\
             [10.0.0.5]:2222 ssh-ed25519 {A}\n\
             10.0.0.5\tssh-ed25519   {B} spaced  and tabbed\n\
             *.EXAMPLE.com,!bad.example.com ssh-ed25519 {A}\n"
        );
        let e = parse(&text, "[10.0.0.5]:2222").unwrap();
        assert_eq!(e.keys.len(), 1);
        assert_eq!(e.keys[0].0, 2);
        let e = parse(&text, "10.0.0.5").unwrap();
        assert_eq!(e.keys.iter().map(|k| k.0).collect::<Vec<_>>(), [3]);
        assert_eq!(parse(&text, "good.example.com").unwrap().keys.len(), 1);
        assert!(parse(&text, "bad.example.com").unwrap().keys.is_empty());
    }

    #[test]
    fn hashed_names_match_what_ssh_keygen_writes() {
        // HMAC-SHA1 with key "0123456789abcdefghij" of "10.0.0.5".
        let salt = base64::engine::general_purpose::STANDARD.encode(b"0123456789abcdefghij");
        let mac = Hmac::<Sha1>::new_from_slice(b"0123456789abcdefghij")
            .unwrap()
            .chain_update(b"10.0.0.5")
            .finalize()
            .into_bytes();
        let hash = base64::engine::general_purpose::STANDARD.encode(mac);
        let text = format!("|1|{salt}|{hash} ssh-ed25519 {A}\n");
        assert_eq!(parse(&text, "10.0.0.5").unwrap().keys.len(), 1);
        assert!(parse(&text, "10.0.0.6").unwrap().keys.is_empty());
    }

    #[test]
    fn markers_are_kept_apart() {
        let text = format!(
            "10.0.0.5 ssh-ed25519 {A}\n\
             @revoked * ssh-ed25519 {A}\n\
             @cert-authority *.example.com,10.0.0.5 ssh-ed25519 {B}\n\
             @revoked other ssh-ed25519 {B}\n"
        );
        let e = parse(&text, "10.0.0.5").unwrap();
        assert_eq!(e.keys.len(), 1);
        assert_eq!(e.revoked.len(), 1);
        assert_eq!(e.revoked[0].0, 2);
        assert_eq!(e.cert_authorities, [3]);
    }

    #[test]
    fn a_broken_line_for_the_host_is_an_error_and_for_others_ignored() {
        let text = "@revoked 10.0.0.5 ssh-ed25519 !!!notbase64\nother ssh-ed25519 ???\n";
        let (line, why) = parse(text, "10.0.0.5").unwrap_err();
        assert_eq!(line, 1);
        assert!(why.contains("does not parse"), "{why}");
        assert!(parse(text, "10.0.0.6").unwrap().keys.is_empty());
        let (_, why) = parse("@bogus 10.0.0.5 ssh-ed25519 x\n", "10.0.0.5").unwrap_err();
        assert!(why.contains("unknown marker"), "{why}");
    }
}
