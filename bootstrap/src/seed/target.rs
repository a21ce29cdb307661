//! How `bootstrap seed` reaches the host: address, user, key, and which host
//! key it trusts.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use kubeseed_provision::ssh::{Auth, HostKey, HostKeyPolicy, ObservedHostKey, SshTarget};

use crate::cli::SeedArgs;
use crate::state::StateDir;

/// The SSH target for `args`: a pinned key, the given known_hosts file, the
/// state directory's known_hosts once the host was seen, else first-seen.
pub fn ssh_target(args: &SeedArgs, state: &StateDir) -> anyhow::Result<SshTarget> {
    let policy = if let Some(line) = &args.host_key {
        HostKeyPolicy::Pinned(HostKey::parse(line).context("--host-key")?)
    } else if let Some(file) = &args.known_hosts {
        if !file.exists() {
            bail!(
                "--known-hosts {} does not exist; add the host's key to it (ssh-keyscan -p {} {} >> {}) or drop the flag to record the key on first sight",
                file.display(),
                args.port,
                args.host,
                file.display()
            );
        }
        HostKeyPolicy::KnownHosts(file.clone())
    } else if knows(&state.known_hosts(), &args.host, args.port) {
        HostKeyPolicy::KnownHosts(state.known_hosts())
    } else {
        HostKeyPolicy::FirstSeen
    };
    Ok(SshTarget::new(
        args.host.clone(),
        args.user.clone(),
        identity(args)?,
        policy,
    )
    .with_port(args.port))
}

fn identity(args: &SeedArgs) -> anyhow::Result<Auth> {
    if let Some(path) = &args.identity {
        if !path.exists() {
            bail!("--identity {} does not exist", path.display());
        }
        return Ok(Auth::key_file(path));
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    for name in ["id_ed25519", "id_ecdsa", "id_rsa"] {
        let path = home.join(".ssh").join(name);
        if path.exists() {
            return Ok(Auth::key_file(path));
        }
    }
    if std::env::var_os("SSH_AUTH_SOCK").is_some() {
        return Ok(Auth::Agent);
    }
    bail!(
        "no SSH key: give one with --identity FILE (none of ~/.ssh/id_ed25519, id_ecdsa, id_rsa exists and no ssh-agent runs)"
    )
}

/// The name a host has in known_hosts: `host` on port 22, `[host]:port` otherwise.
fn known_hosts_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

fn knows(file: &Path, host: &str, port: u16) -> bool {
    let name = known_hosts_name(host, port);
    std::fs::read_to_string(file).is_ok_and(|text| {
        text.lines()
            .filter_map(|l| l.split_whitespace().next())
            .any(|names| names.split(',').any(|n| n == name))
    })
}

/// Records a key seen for the first time, so every later run enforces it.
pub fn record_first_seen(
    state: &StateDir,
    args: &SeedArgs,
    observed: &ObservedHostKey,
) -> anyhow::Result<()> {
    if !observed.first_seen {
        return Ok(());
    }
    let path = state.known_hosts();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot record the host key in {}", path.display()))?;
    writeln!(
        file,
        "{} {}",
        known_hosts_name(&args.host, args.port),
        observed.key.to_openssh()
    )?;
    eprintln!(
        "host key of {} seen for the first time: {} (recorded in {}; enforced from now on)",
        args.host,
        observed.key.fingerprint(),
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_lookup_uses_openssh_names() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("kh");
        std::fs::write(
            &f,
            "10.0.0.1 ssh-ed25519 AAAA\n[10.0.0.2]:2222,other ssh-ed25519 BBBB\n",
        )
        .unwrap();
        assert!(knows(&f, "10.0.0.1", 22));
        assert!(!knows(&f, "10.0.0.1", 2222));
        assert!(knows(&f, "10.0.0.2", 2222));
        assert!(!knows(&f, "10.0.0.3", 22));
    }
}
