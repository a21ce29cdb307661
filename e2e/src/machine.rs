//! Booting a host: systemd-nspawn with the options measured to give a working
//! systemd, sshd and containerd on this kind of machine (see docs in lib.rs).

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::process::{self, ProcessId};

/// Everything nspawn needs to boot one host.
#[derive(Debug)]
pub struct MachineSpec<'a> {
    /// Unique per runner (nspawn keys runtime files by it): `LAB-HOST`.
    pub machine: String,
    /// The host's merged overlay root.
    pub root: &'a Path,
    /// The host's network namespace name.
    pub netns: &'a str,
    /// A real directory bound at /var/lib/containerd (containerd's snapshotter
    /// cannot put overlay mounts on top of overlayfs).
    pub containerd_dir: &'a Path,
    /// Console output goes here.
    pub log: &'a Path,
    /// `cgroup.procs` files of the host's cgroups, joined before nspawn starts.
    pub cgroup_procs: &'a [PathBuf],
}

/// Starts nspawn for a host and returns the child (its PID is nspawn's).
pub fn spawn(spec: &MachineSpec<'_>) -> Result<Child> {
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(spec.log)
        .map_err(|e| LabError::io("open", spec.log, e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| LabError::io("open", spec.log, e))?;
    // A tiny shell joins the host's cgroups and then execs nspawn, so the
    // cgroup namespace nspawn creates is rooted in the host's own subtree
    // (no unsafe pre_exec hook needed).
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(
            r#"while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@""#,
        )
        .arg("kubeseed-lab-start");
    command.args(spec.cgroup_procs);
    command
        .arg("--")
        .arg("systemd-nspawn")
        .arg("--quiet")
        .arg("--directory")
        .arg(spec.root)
        .arg("--boot")
        // PID 1 of the runner may not be systemd: no machined, no scope units.
        .arg("--register=no")
        .arg("--keep-unit")
        .arg(format!("--machine={}", spec.machine))
        .arg(format!(
            "--network-namespace-path=/run/netns/{}",
            spec.netns
        ))
        // containerd and runc inside need every capability, the keyring and bpf.
        .arg("--capability=all")
        .arg("--system-call-filter=@keyring bpf")
        .arg(format!(
            "--bind={}:/var/lib/containerd",
            spec.containerd_dir.display()
        ))
        // The kubelet reads the kernel log (its OOM watcher) like any node's.
        .arg("--bind-ro=/dev/kmsg")
        .arg("--resolv-conf=off")
        .arg("--timezone=off")
        .arg("--link-journal=no")
        .arg("--console=read-only")
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own process group: a Ctrl-C meant for `lab up` must not reach the hosts.
        .process_group(0);
    command.spawn().map_err(|source| LabError::Spawn {
        program: "systemd-nspawn".into(),
        source,
    })
}

/// The host's init (systemd, PID 1 inside): nspawn's child in another PID namespace.
pub fn find_init(nspawn: &ProcessId) -> Option<ProcessId> {
    let ours = process::pid_namespace(std::process::id())?;
    nspawn
        .children()
        .into_iter()
        .find(|&pid| process::pid_namespace(pid).is_some_and(|ns| ns != ours))
        .and_then(|pid| ProcessId::of(pid).ok())
}

/// Waits until nspawn has made the host's init.
pub fn wait_init(
    host: &str,
    nspawn: &ProcessId,
    child: Option<&mut Child>,
    log: &Path,
) -> Result<ProcessId> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut child = child;
    loop {
        if let Some(init) = find_init(nspawn) {
            return Ok(init);
        }
        let exited = match child.as_deref_mut() {
            Some(child) => child.try_wait().ok().flatten().is_some(),
            None => !nspawn.is_running(),
        };
        if exited {
            return Err(LabError::Command {
                command: format!("systemd-nspawn for {host}"),
                status: "exited before booting".into(),
                stderr: log_tail(log),
            });
        }
        if Instant::now() > deadline {
            return Err(LabError::Timeout {
                what: format!(
                    "systemd-nspawn to start {host}'s init (log: {})",
                    log.display()
                ),
                seconds: 60.0,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last lines of a host's console log, for error messages.
pub fn log_tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(15);
    format!(
        "(console log {})\n{}",
        log.display(),
        lines[start..].join("\n")
    )
}
