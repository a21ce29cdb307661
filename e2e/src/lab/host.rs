//! The hosts as a test sees them, and running commands inside them.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::ExitStatusExt as _;
use std::process::Command;
use std::time::Duration;

use kubeseed_provision::ssh::{ExecOutput, ExitStatus};
use serde::Serialize;

use super::Lab;
use crate::cmd;
use crate::error::{LabError, Result};
use crate::machine;
use crate::process::ProcessId;
use crate::state::HostState;

/// One host as a test sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabHost {
    /// The host's name in the lab (`host1`...), also its hostname.
    pub name: String,
    /// Its address on the lab bridge (where SSH connects).
    pub address: Ipv4Addr,
    /// sshd's port.
    pub ssh_port: u16,
    /// Its SSH host public key, `ssh-ed25519 AAAA...`, for pinning.
    pub host_key: String,
    /// Its machine-id.
    pub machine_id: String,
    /// Its eth0 MAC.
    pub mac: String,
}

/// Runs commands inside one boot of one host (see [`Lab::executor`]).
#[derive(Debug, Clone)]
pub struct HostExec {
    host: String,
    init: ProcessId,
}

impl HostExec {
    /// Runs `command` with /bin/sh inside the host, without SSH: enters the
    /// namespaces of the host's init with nsenter (machinectl is unavailable
    /// when the runner's PID 1 is not systemd). For assertions only: the
    /// process belongs to no unit of the host's systemd.
    pub fn exec(&self, command: &str) -> Result<ExecOutput> {
        if !self.init.is_running() {
            return Err(LabError::HostDown(self.host.clone()));
        }
        let mut nsenter = Command::new("nsenter");
        nsenter
            .arg("--target")
            .arg(self.init.pid.to_string())
            .args(["--all", "--", "/usr/bin/env", "-i"])
            .args(["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
            .args(["HOME=/root", "LANG=C.UTF-8", "/bin/sh", "-c", command]);
        let output = cmd::output(&mut nsenter)?;
        // One output type for every way kubeseed runs a command on a host.
        let status = match (output.status.code(), output.status.signal()) {
            (Some(code), _) => ExitStatus::Code(u32::try_from(code).unwrap_or(u32::MAX)),
            (None, Some(signal)) => ExitStatus::Signal(signal.to_string()),
            (None, None) => ExitStatus::Unknown,
        };
        Ok(ExecOutput {
            status,
            stdout: output.stdout,
            stderr: output.stderr,
            truncated: false,
        })
    }
}

impl Lab {
    /// Whether the host's machine is running.
    pub fn is_running(&mut self, host: &str) -> bool {
        self.reap();
        self.state
            .host(host)
            .ok()
            .and_then(|h| h.nspawn)
            .is_some_and(|p| p.is_running())
    }

    /// Reaps hosts that ended (powered off or crashed) among this process's children.
    pub fn reap(&mut self) {
        for child in self.children.values_mut() {
            let _ = child.try_wait();
        }
    }

    /// Runs `command` with /bin/sh inside the host, without SSH (see [`HostExec::exec`]).
    pub fn exec(&self, host: &str, command: &str) -> Result<ExecOutput> {
        self.executor(host)?.exec(command)
    }

    /// A handle that runs commands in the host's current boot from any
    /// thread (e.g. to watch one host while another is powered off).
    pub fn executor(&self, host: &str) -> Result<HostExec> {
        let state = self.state.host(host)?;
        let init = state
            .nspawn
            .filter(ProcessId::is_running)
            .and_then(|n| machine::find_init(&n))
            .ok_or_else(|| LabError::HostDown(host.to_owned()))?;
        Ok(HostExec {
            host: host.to_owned(),
            init,
        })
    }

    /// Like [`Lab::exec`] but a non-zero exit is an error; returns stdout.
    pub fn exec_ok(&self, host: &str, command: &str) -> Result<String> {
        let output = self.exec(host, command)?;
        if output.status.success() {
            Ok(output.stdout_text())
        } else {
            Err(LabError::Command {
                command: format!("{command} (in {host})"),
                status: output.status.to_string(),
                stderr: output.stderr_text().trim().to_owned(),
            })
        }
    }
}

pub(super) fn to_lab_host(host: &HostState) -> LabHost {
    LabHost {
        name: host.name.clone(),
        address: host.address,
        ssh_port: 22,
        host_key: host.host_key.clone(),
        machine_id: host.machine_id.clone(),
        mac: host.mac.clone(),
    }
}

/// Whether an SSH server answers on `address:port` with its banner.
pub fn ssh_banner(address: Ipv4Addr, port: u16) -> bool {
    let addr = SocketAddr::from((address, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buffer = [0u8; 4];
    stream.read_exact(&mut buffer).is_ok() && &buffer == b"SSH-"
}
