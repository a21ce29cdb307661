//! What bringing a lab up cost, what `down` left, and everything a lab made.

use std::fs;
use std::path::PathBuf;

use serde::Serialize;

use super::Lab;
use crate::cgroup;
use crate::machine;
use crate::network;
use crate::process::ProcessId;
use crate::rootfs::BuildReport;
use crate::state;

/// What bringing a lab up cost.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct UpReport {
    /// Set when the base root file system was built by this `up` (cold cache).
    pub base_build: Option<BuildReport>,
    /// Seconds from the call to every host answering SSH, base build excluded.
    pub seconds: f64,
}

/// What `down` removed and what it could not.
#[derive(Debug, Clone, Serialize)]
pub struct DownReport {
    /// Seconds `down` took.
    pub seconds: f64,
    /// Things that could not be removed (empty when all is gone).
    pub left: Vec<String>,
}

/// Everything a lab made, captured so a test can check afterwards that none
/// of it is left.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Footprint {
    /// Named network namespaces.
    pub netns: Vec<String>,
    /// Links in the runner's namespace.
    pub links: Vec<String>,
    /// Bridges whose accept rule the lab put in the runner's FORWARD chain.
    pub forward_rules: Vec<String>,
    /// Overlay mount points.
    pub mounts: Vec<PathBuf>,
    /// nspawn processes and the hosts' inits.
    pub processes: Vec<ProcessId>,
    /// The lab's data directory.
    pub dir: Option<PathBuf>,
    /// The lab's name (for its cgroups and state file).
    pub name: String,
}

impl Footprint {
    /// Whatever of this footprint still exists.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        for ns in &self.netns {
            if network::netns_exists(ns) {
                left.push(format!("network namespace {ns}"));
            }
        }
        for link in &self.links {
            if network::link_exists(link) {
                left.push(format!("link {link}"));
            }
        }
        for bridge in &self.forward_rules {
            if network::forwarding_allowed(bridge) {
                left.push(format!("iptables FORWARD rule for {bridge}"));
            }
        }
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        for mount in &self.mounts {
            let needle = format!(" {} ", mount.display());
            if mounts.lines().any(|line| line.contains(&needle)) {
                left.push(format!("mount {}", mount.display()));
            }
        }
        // A zombie has no namespaces, mounts or memory left; only its parent
        // can remove its table entry (PID 1 for hosts of a detached `lab up`).
        for process in &self.processes {
            if process.is_running() {
                left.push(format!("process {}", process.pid));
            }
        }
        if let Some(dir) = &self.dir
            && dir.exists()
        {
            left.push(format!("directory {}", dir.display()));
        }
        for dir in cgroup::remaining(&self.name) {
            left.push(format!("cgroup {}", dir.display()));
        }
        if state::state_path(&self.name).exists() {
            left.push(format!(
                "state file {}",
                state::state_path(&self.name).display()
            ));
        }
        left
    }
}

impl Lab {
    /// Everything the lab made, to check after `down` that none of it is left.
    pub fn footprint(&self) -> Footprint {
        let mut footprint = Footprint {
            name: self.state.name.clone(),
            dir: self.state.dir.clone(),
            ..Footprint::default()
        };
        footprint.links.extend(self.state.bridge.clone());
        if self.state.forward_rule {
            footprint
                .forward_rules
                .push(network::bridge_name(&self.state.name));
        }
        for host in &self.state.hosts {
            footprint.netns.extend(host.netns.clone());
            footprint.links.extend(host.veth.clone());
            footprint.mounts.extend(host.mount.clone());
            if let Some(nspawn) = host.nspawn {
                footprint.processes.push(nspawn);
                footprint.processes.extend(machine::find_init(&nspawn));
            }
        }
        footprint
    }
}
