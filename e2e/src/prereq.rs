//! Checks that the runner can host a lab, and says exactly what is missing.

use crate::cmd;
use crate::error::{LabError, Result};

/// A program the lab runs and the Debian package that provides it.
const PROGRAMS: &[(&str, &str)] = &[
    ("systemd-nspawn", "systemd-container"),
    ("ip", "iproute2"),
    ("nsenter", "util-linux"),
    ("mount", "mount"),
    ("umount", "mount"),
    ("ssh-keygen", "openssh-client"),
    ("tar", "tar"),
    ("sha256sum", "coreutils"),
];

/// Programs needed only to build the base root file system.
const BUILD_PROGRAMS: &[(&str, &str)] = &[("debootstrap", "debootstrap")];

/// Fails with a clear message unless the runner is root and has every program
/// the lab needs (and debootstrap when the base must still be built).
pub fn check(need_debootstrap: bool) -> Result<()> {
    if !is_root()? {
        return Err(LabError::Prerequisite {
            what: "it must run as root (it creates network namespaces, a bridge, \
                   overlay mounts and systemd-nspawn machines)"
                .into(),
            fix: "run it with sudo, e.g. `sudo -E cargo run -p kubeseed-e2e --bin lab -- up 3`"
                .into(),
        });
    }
    let mut missing: Vec<(&str, &str)> = Vec::new();
    let build = if need_debootstrap {
        BUILD_PROGRAMS
    } else {
        &[]
    };
    for &(program, package) in PROGRAMS.iter().chain(build) {
        if cmd::which(program).is_none() {
            missing.push((program, package));
        }
    }
    if !missing.is_empty() {
        let programs: Vec<&str> = missing.iter().map(|(p, _)| *p).collect();
        let mut packages: Vec<&str> = missing.iter().map(|(_, p)| *p).collect();
        packages.dedup();
        return Err(LabError::Prerequisite {
            what: format!("missing program(s): {}", programs.join(", ")),
            fix: format!(
                "install them, e.g. `apt-get install -y {}`",
                packages.join(" ")
            ),
        });
    }
    let filesystems = std::fs::read_to_string("/proc/filesystems")
        .map_err(|e| LabError::io("read", "/proc/filesystems", e))?;
    if !filesystems.lines().any(|l| l.ends_with("\toverlay")) {
        return Err(LabError::Prerequisite {
            what: "the kernel has no overlay file system".into(),
            fix: "run `modprobe overlay` (hosts boot from an overlay of the base)".into(),
        });
    }
    if !std::path::Path::new("/sys/fs/cgroup").is_dir() {
        return Err(LabError::Prerequisite {
            what: "/sys/fs/cgroup is not mounted".into(),
            fix: "mount the cgroup hierarchy (hosts run systemd and containerd)".into(),
        });
    }
    Ok(())
}

/// Whether the effective user is root, read from /proc so no unsafe call is needed.
fn is_root() -> Result<bool> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| LabError::io("read", "/proc/self/status", e))?;
    Ok(status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0"))
}
