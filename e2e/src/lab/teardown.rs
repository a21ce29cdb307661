//! Bringing a lab down: every host ended by PID, then exactly what the state
//! file recorded removed.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::report::DownReport;
use super::{Lab, MARKER};
use crate::cgroup;
use crate::cmd;
use crate::error::{LabError, Result};
use crate::machine;
use crate::network;
use crate::process::ProcessId;
use crate::state;

impl Lab {
    /// Ends every host (SIGKILL to its init, by PID) and removes everything
    /// the lab recorded: overlay mounts, cgroups, links, namespaces, its data
    /// directory and the state file.
    pub fn down(mut self) -> Result<DownReport> {
        let started = Instant::now();
        let left = self.teardown();
        self.detached = true;
        Ok(DownReport {
            seconds: started.elapsed().as_secs_f64(),
            left,
        })
    }

    /// Removes everything recorded; returns what could not be removed (and
    /// keeps those in the state file for another try).
    pub(super) fn teardown(&mut self) -> Vec<String> {
        let mut left: Vec<String> = Vec::new();
        // Kill every host first, so they die in parallel.
        for host in &self.state.hosts {
            if let Some(nspawn) = host.nspawn.filter(ProcessId::is_running)
                && let Some(init) = machine::find_init(&nspawn)
                && let Err(error) = init.signal(Signal::SIGKILL)
            {
                left.push(format!("{}: {error}", host.name));
            }
        }
        let names: Vec<String> = self.state.hosts.iter().map(|h| h.name.clone()).collect();
        for name in &names {
            let span = tracing::info_span!("host", host = %name);
            let _entered = span.enter();
            if let Err(error) = self.teardown_host(name) {
                tracing::error!(%error, "could not remove everything");
                left.push(format!("{name}: {error}"));
            }
        }
        if self.state.forward_rule {
            match network::remove_forwarding(&network::bridge_name(&self.state.name)) {
                Ok(()) => self.state.forward_rule = false,
                Err(error) => left.push(format!("iptables FORWARD rule: {error}")),
            }
        }
        if let Some(bridge) = self.state.bridge.clone() {
            match network::delete_link(&bridge) {
                Ok(()) => self.state.bridge = None,
                Err(error) => left.push(error.to_string()),
            }
        }
        if left.is_empty()
            && let Some(dir) = self.state.dir.clone()
        {
            // Only a directory the lab marked as its own is removed whole.
            if dir.join(MARKER).exists() {
                match fs::remove_dir_all(&dir) {
                    Ok(()) => {
                        self.state.dir = None;
                        // The data root goes too once no lab uses it.
                        let _ = fs::remove_dir(state::data_root());
                    }
                    Err(error) => left.push(format!("directory {}: {error}", dir.display())),
                }
            } else {
                self.state.dir = None;
            }
        }
        let saved = if left.is_empty() {
            self.state.remove_file()
        } else {
            self.state.save()
        };
        if let Err(error) = saved {
            left.push(error.to_string());
        }
        if left.is_empty()
            && let Err(error) = crate::kernel::restore_unless_in_use(&self.state.name)
        {
            left.push(format!("runner kernel settings: {error}"));
        }
        left
    }

    fn teardown_host(&mut self, name: &str) -> Result<()> {
        let lab = self.state.name.clone();
        if let Some(nspawn) = self.state.host(name)?.nspawn {
            let deadline = Instant::now() + Duration::from_secs(30);
            while self.is_running(name) {
                if Instant::now() > deadline {
                    // Its init is gone or stuck: end nspawn itself (ours, by PID).
                    nspawn.signal(Signal::SIGKILL)?;
                }
                if Instant::now() > deadline + Duration::from_secs(10) {
                    return Err(LabError::Timeout {
                        what: format!("systemd-nspawn {} of {name} to end", nspawn.pid),
                        seconds: 40.0,
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if let Some(mut child) = self.children.remove(name) {
                let _ = child.wait();
            }
            self.state.host_mut(name)?.nspawn = None;
            self.state.save()?;
        }
        if let Some(mount) = self.state.host(name)?.mount.clone() {
            unmount(&mount)?;
            self.state.host_mut(name)?.mount = None;
            self.state.save()?;
        }
        if self.state.host(name)?.cgroups {
            let left = cgroup::remove(&lab, name);
            if !left.is_empty() {
                tracing::warn!(?left, "cgroups left behind");
            }
            self.state.host_mut(name)?.cgroups = false;
        }
        if let Some(veth) = self.state.host(name)?.veth.clone() {
            network::delete_link(&veth)?;
            self.state.host_mut(name)?.veth = None;
        }
        if let Some(netns) = self.state.host(name)?.netns.clone() {
            network::delete_netns(&netns)?;
            self.state.host_mut(name)?.netns = None;
        }
        self.state.save()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.detached {
            let left = self.teardown();
            if !left.is_empty() {
                tracing::error!(?left, lab = %self.state.name, "bringing the dropped lab down left things behind");
            }
        }
    }
}

/// Unmounts an overlay of ours; a busy mount is retried, then detached lazily.
fn unmount(path: &Path) -> Result<()> {
    let mounted = || {
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let needle = format!(" {} ", path.display());
        mounts.lines().any(|line| line.contains(&needle))
    };
    for _ in 0..20 {
        if !mounted() {
            return Ok(());
        }
        if cmd::run("umount", [path]).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if mounted() {
        cmd::run("umount", ["-l".as_ref(), path.as_os_str()])?;
    }
    Ok(())
}
