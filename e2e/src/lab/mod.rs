//! A running lab and the verbs tests use on it, split by what a reader looks
//! for: the hosts a test sees ([`host`]), bringing a lab up ([`lifecycle`]),
//! the faults a test injects ([`faults`]), what up and down cost and left
//! ([`report`]) and bringing it down ([`teardown`]).

mod faults;
mod host;
mod lifecycle;
mod report;
mod teardown;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Instant;

use host::to_lab_host;
pub use host::{HostExec, LabHost, ssh_banner};
pub use report::{DownReport, Footprint, UpReport};

use crate::config::{LabConfig, Subnet};
use crate::error::{LabError, Result};
use crate::network;
use crate::prereq;
use crate::process::ProcessId;
use crate::rootfs;
use crate::state::{self, LabState};

/// First address handed out by [`Lab::free_address`].
const FIRST_FREE: u8 = 200;
/// Last address handed out by [`Lab::free_address`].
const LAST_FREE: u8 = 250;
/// Marks a data directory as made by the lab (and so safe for it to delete).
const MARKER: &str = ".kubeseed-lab";

/// A lab of real hosts. Dropping it without [`Lab::down`] brings it down
/// anyway (unless [`Lab::detach`] was called), so a failing test leaves nothing.
#[derive(Debug)]
pub struct Lab {
    state: LabState,
    /// nspawn children started by this process, kept so they are reaped.
    children: HashMap<String, Child>,
    report: Option<UpReport>,
    detached: bool,
}

impl Lab {
    /// Builds (or reuses) the base, then boots `config.hosts` hosts and waits
    /// until each answers SSH. On failure everything already made is removed.
    pub fn up(config: LabConfig) -> Result<Lab> {
        let started = Instant::now();
        config.validate()?;
        prereq::check(!rootfs::is_cached())?;
        let state_path = state::state_path(&config.name);
        if state_path.exists() {
            return Err(LabError::AlreadyUp(config.name.clone(), state_path));
        }
        network::check_subnet_free(&config.subnet)?;
        network::ensure_link_free(&network::bridge_name(&config.name))?;
        for index in 1..=config.hosts {
            network::ensure_link_free(&network::veth_name(&config.name, index))?;
            network::ensure_netns_free(&network::netns_name(&config.name, &host_name(index)))?;
        }
        let base = rootfs::ensure()?;
        let base_seconds = base.built.map_or(0.0, |b| b.seconds);
        crate::kernel::apply()?;

        let mut lab = Lab {
            state: LabState {
                name: config.name.clone(),
                subnet: config.subnet,
                dir: None,
                base: base.tree.clone(),
                bridge: None,
                forward_rule: false,
                hosts: Vec::new(),
                handed_out: Vec::new(),
                owner: Some(ProcessId::of(std::process::id())?),
            },
            children: HashMap::new(),
            report: None,
            detached: false,
        };
        if let Err(error) = lab.build(&config) {
            tracing::error!(%error, "lab up failed; removing what it made");
            let left = lab.teardown();
            if !left.is_empty() {
                tracing::error!(?left, "cleanup after the failed up was incomplete");
            }
            lab.detached = true;
            return Err(error);
        }
        lab.report = Some(UpReport {
            base_build: base.built,
            seconds: started.elapsed().as_secs_f64() - base_seconds,
        });
        Ok(lab)
    }

    /// Takes over a lab brought up by another process (for `down`, `exec`...).
    /// Hosts started by that process are not this process's children.
    pub fn attach(name: &str) -> Result<Lab> {
        let state = LabState::load(name)?
            .ok_or_else(|| LabError::NotUp(name.to_owned(), state::state_path(name)))?;
        Ok(Lab {
            state,
            children: HashMap::new(),
            report: None,
            detached: true,
        })
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// The lab's /24.
    pub fn subnet(&self) -> Subnet {
        self.state.subnet
    }

    /// The runner's address on the lab bridge.
    pub fn gateway(&self) -> Ipv4Addr {
        self.state.subnet.gateway()
    }

    /// The lab's bridge (hosts' eth0 are its ports).
    pub fn bridge(&self) -> Option<&str> {
        self.state.bridge.as_deref()
    }

    /// What `up` cost (only on the `Lab` that ran `up`).
    pub fn up_report(&self) -> Option<UpReport> {
        self.report
    }

    /// The hosts, in order.
    pub fn hosts(&self) -> Vec<LabHost> {
        self.state.hosts.iter().map(to_lab_host).collect()
    }

    /// One host by name.
    pub fn host(&self, name: &str) -> Result<LabHost> {
        self.state.host(name).map(to_lab_host)
    }

    /// The private key every host's root authorizes.
    pub fn ssh_private_key_path(&self) -> PathBuf {
        self.data_dir().join("id_ed25519")
    }

    /// An OpenSSH known_hosts file pinning every host's key by address.
    pub fn known_hosts_path(&self) -> PathBuf {
        self.data_dir().join("known_hosts")
    }

    fn data_dir(&self) -> PathBuf {
        self.state
            .dir
            .clone()
            .unwrap_or_else(|| state::data_root().join(&self.state.name))
    }

    /// An `ssh` command to `host` as root with the lab key and pinned host keys.
    pub fn ssh_command(&self, host: &str) -> Result<Command> {
        let host = self.state.host(host)?;
        let mut command = Command::new("ssh");
        command
            .arg("-i")
            .arg(self.ssh_private_key_path())
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.known_hosts_path().display()
            ))
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .args(["-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR"])
            .arg(format!("root@{}", host.address));
        Ok(command)
    }

    /// An address on the lab subnet that no host uses and that was not handed
    /// out before (for VIPs). Addresses come from .200–.250.
    pub fn free_address(&mut self) -> Result<Ipv4Addr> {
        let subnet = self.state.subnet;
        let address = (FIRST_FREE..=LAST_FREE)
            .map(|last| subnet.address(last))
            .find(|a| {
                !self.state.handed_out.contains(a)
                    && !self.state.hosts.iter().any(|h| h.address == *a)
            })
            .ok_or_else(|| LabError::AddressesExhausted(subnet.to_string()))?;
        self.state.handed_out.push(address);
        self.state.save()?;
        Ok(address)
    }

    /// Records the process that owns this lab (by default the one that ran
    /// `up`), so `lab down` elsewhere asks it to end the lab instead of
    /// racing it, and a stale lab can be told from one in use.
    pub fn set_owner(&mut self, owner: Option<ProcessId>) -> Result<()> {
        self.state.owner = owner;
        self.state.save()
    }

    /// The recorded owner process, if any.
    pub fn owner(&self) -> Option<ProcessId> {
        self.state.owner
    }

    /// Leaves the lab running when this value is dropped (`lab up` hands it
    /// over to a later `lab down`).
    pub fn detach(mut self) {
        self.detached = true;
    }
}

fn host_name(index: usize) -> String {
    format!("host{index}")
}
