//! What makes each host itself, written into its own overlay upper layer:
//! hostname, /etc/hosts, machine-id, SSH host key and the lab's authorized key.

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::cmd;
use crate::error::{LabError, Result};

/// A fresh random machine-id (32 lowercase hex digits), from the kernel's UUID source.
pub fn new_machine_id() -> Result<String> {
    let uuid = fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map_err(|e| LabError::io("read", "/proc/sys/kernel/random/uuid", e))?;
    Ok(uuid.trim().replace('-', ""))
}

/// Writes the host's identity into `root` (its merged overlay) and returns
/// its SSH host public key line.
pub fn write_identity(
    root: &Path,
    hostname: &str,
    machine_id: &str,
    all_hosts: &[(String, Ipv4Addr)],
    authorized_key: &str,
) -> Result<String> {
    write(root, "etc/hostname", &format!("{hostname}\n"), 0o644)?;
    write(root, "etc/machine-id", &format!("{machine_id}\n"), 0o444)?;
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (name, address) in all_hosts {
        hosts.push_str(&format!("{address}\t{name}\n"));
    }
    write(root, "etc/hosts", &hosts, 0o644)?;
    let ssh_dir = root.join("root/.ssh");
    fs::create_dir_all(&ssh_dir).map_err(|e| LabError::io("create", &ssh_dir, e))?;
    fs::set_permissions(&ssh_dir, fs::Permissions::from_mode(0o700))
        .map_err(|e| LabError::io("chmod", &ssh_dir, e))?;
    write(root, "root/.ssh/authorized_keys", authorized_key, 0o600)?;

    let key = root.join("etc/ssh/ssh_host_ed25519_key");
    for path in [key.clone(), key.with_extension("pub")] {
        if path.exists() {
            fs::remove_file(&path).map_err(|e| LabError::io("remove", &path, e))?;
        }
    }
    ed25519_keygen(&key, &format!("root@{hostname}"))?;
    public_key(&key.with_extension("pub"))
}

/// `TYPE BASE64` of an OpenSSH public key file (the comment dropped).
pub fn public_key(path: &Path) -> Result<String> {
    let text = fs::read_to_string(path).map_err(|e| LabError::io("read", path, e))?;
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(kind), Some(data)) => Ok(format!("{kind} {data}")),
        _ => Err(LabError::State {
            path: path.to_path_buf(),
            message: "not an OpenSSH public key".into(),
        }),
    }
}

/// Makes the lab's own SSH key pair (`id_ed25519`) in `dir`.
pub fn make_lab_key(dir: &Path) -> Result<()> {
    ed25519_keygen(&dir.join("id_ed25519"), "kubeseed-lab")
}

/// Makes an unencrypted ed25519 key pair at `key` (and `key.pub`).
fn ed25519_keygen(key: &Path, comment: &str) -> Result<()> {
    cmd::run(
        "ssh-keygen",
        [
            "-q".as_ref(),
            "-t".as_ref(),
            "ed25519".as_ref(),
            "-N".as_ref(),
            "".as_ref(),
            "-C".as_ref(),
            comment.as_ref(),
            "-f".as_ref(),
            key.as_os_str(),
        ],
    )?;
    Ok(())
}

fn write(root: &Path, relative: &str, text: &str, mode: u32) -> Result<()> {
    let path = root.join(relative);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| LabError::io("create", parent, e))?;
    }
    // The base may hold a read-only file here (machine-id is 0444).
    if path.exists() {
        fs::remove_file(&path).map_err(|e| LabError::io("replace", &path, e))?;
    }
    fs::write(&path, text).map_err(|e| LabError::io("write", &path, e))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(mode))
        .map_err(|e| LabError::io("chmod", &path, e))
}
