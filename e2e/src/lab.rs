//! A running lab and the verbs tests use on it.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use kubeseed_provision::ssh::{ExecOutput, ExitStatus};
use nix::sys::signal::Signal;
use serde::Serialize;
use std::os::unix::process::ExitStatusExt as _;

use crate::cgroup;
use crate::cmd;
use crate::config::{LabConfig, Subnet};
use crate::error::{LabError, Result};
use crate::hostfs;
use crate::machine::{self, MachineSpec};
use crate::network;
use crate::prereq;
use crate::process::ProcessId;
use crate::rootfs::{self, BuildReport};
use crate::state::{self, HostState, LabState};

/// How long a host may take to boot to a running systemd and sshd.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
/// First address handed out by [`Lab::free_address`].
const FIRST_FREE: u8 = 200;
/// Last address handed out by [`Lab::free_address`].
const LAST_FREE: u8 = 250;
/// Marks a data directory as made by the lab (and so safe for it to delete).
const MARKER: &str = ".kubeseed-lab";

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

    fn build(&mut self, config: &LabConfig) -> Result<()> {
        let dir = state::data_root().join(&config.name);
        if dir.exists() {
            if dir.join(MARKER).exists() {
                // Left by a lab whose state vanished with /run (a reboot).
                fs::remove_dir_all(&dir).map_err(|e| LabError::io("remove stale", &dir, e))?;
            } else {
                return Err(LabError::Config(format!(
                    "{} exists and was not made by the lab; remove it or use another --name",
                    dir.display()
                )));
            }
        }
        fs::create_dir_all(&dir).map_err(|e| LabError::io("create", &dir, e))?;
        self.state.dir = Some(dir.clone());
        fs::write(dir.join(MARKER), "").map_err(|e| LabError::io("write", dir.join(MARKER), e))?;
        self.state.save()?;
        hostfs::make_lab_key(&dir)?;
        let authorized = hostfs::public_key(&dir.join("id_ed25519.pub"))?;

        let bridge = network::bridge_name(&config.name);
        network::add_bridge(&bridge)?;
        self.state.bridge = Some(bridge.clone());
        self.state.save()?;
        network::configure_bridge(&bridge, &config.subnet)?;
        // Bridged traffic between hosts passes the runner's FORWARD chain
        // (br_netfilter); open it for this bridge only, whatever the policy.
        if network::have_iptables() {
            network::allow_forwarding(&bridge)?;
            self.state.forward_rule = true;
            self.state.save()?;
        } else {
            tracing::info!("no iptables on the runner: no FORWARD rule needed");
        }

        let names: Vec<(String, Ipv4Addr)> = (1..=config.hosts)
            .map(|i| (host_name(i), config.subnet.host(i)))
            .collect();
        for (index, (name, address)) in names.iter().enumerate() {
            let index = index + 1;
            let span = tracing::info_span!("host", host = %name);
            let _entered = span.enter();
            let host = HostState {
                name: name.clone(),
                index,
                address: *address,
                mac: network::mac_for(*address),
                machine_id: hostfs::new_machine_id()?,
                host_key: String::new(),
                netns: None,
                veth: None,
                mount: None,
                cgroups: false,
                nspawn: None,
            };
            self.state.hosts.push(host);
            self.make_host(name, &names, &authorized)?;
        }
        self.write_known_hosts()?;
        let names: Vec<String> = self.state.hosts.iter().map(|h| h.name.clone()).collect();
        for name in &names {
            self.boot(name)?;
        }
        for name in &names {
            self.wait_ready(name)?;
        }
        Ok(())
    }

    /// Creates a host's namespace, link, layers and identity (not yet booted).
    fn make_host(
        &mut self,
        name: &str,
        all: &[(String, Ipv4Addr)],
        authorized: &str,
    ) -> Result<()> {
        let lab = self.state.name.clone();
        let bridge = self.state.bridge.clone().unwrap_or_default();
        let dir = self.host_dir(name);
        let (index, mac, address, machine_id) = {
            let host = self.state.host(name)?;
            (
                host.index,
                host.mac.clone(),
                host.address,
                host.machine_id.clone(),
            )
        };
        // Each thing is recorded as soon as the step that could collide with
        // someone else's (the add) has succeeded, and before it is configured.
        let netns = network::netns_name(&lab, name);
        network::add_netns(&netns)?;
        self.state.host_mut(name)?.netns = Some(netns.clone());
        self.state.save()?;
        let veth = network::veth_name(&lab, index);
        network::add_veth(&veth, &netns, &mac)?;
        self.state.host_mut(name)?.veth = Some(veth.clone());
        self.state.save()?;
        network::configure_veth(&veth, &netns, &bridge, address)?;

        for sub in ["upper", "work", "root", "containerd"] {
            fs::create_dir_all(dir.join(sub))
                .map_err(|e| LabError::io("create", dir.join(sub), e))?;
        }
        let root = dir.join("root");
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            self.state.base.display(),
            dir.join("upper").display(),
            dir.join("work").display()
        );
        cmd::run(
            "mount",
            [
                "-t".as_ref(),
                "overlay".as_ref(),
                "overlay".as_ref(),
                "-o".as_ref(),
                options.as_ref(),
                root.as_os_str(),
            ],
        )?;
        self.state.host_mut(name)?.mount = Some(root.clone());
        self.state.save()?;
        let key = hostfs::write_identity(&root, name, &machine_id, all, authorized)?;
        let host = self.state.host_mut(name)?;
        host.host_key = key;
        host.cgroups = true;
        self.state.save()?;
        cgroup::create(&lab, name)?;
        Ok(())
    }

    /// Starts nspawn for a host whose layers and links exist.
    fn boot(&mut self, name: &str) -> Result<()> {
        let span = tracing::info_span!("host", host = %name);
        let _entered = span.enter();
        let lab = self.state.name.clone();
        let dir = self.host_dir(name);
        let procs = cgroup::create(&lab, name)?;
        let host = self.state.host(name)?;
        let netns = host.netns.clone().unwrap_or_default();
        let root = dir.join("root");
        let containerd = dir.join("containerd");
        let log = dir.join("console.log");
        let child = machine::spawn(&MachineSpec {
            machine: format!("{lab}-{name}"),
            root: &root,
            netns: &netns,
            containerd_dir: &containerd,
            log: &log,
            cgroup_procs: &procs,
        })?;
        let nspawn = ProcessId::of(child.id())?;
        self.children.insert(name.to_owned(), child);
        self.state.host_mut(name)?.nspawn = Some(nspawn);
        self.state.save()?;
        tracing::info!(pid = nspawn.pid, "booting");
        Ok(())
    }

    /// Waits until the host's systemd has finished booting and sshd answers.
    fn wait_ready(&mut self, name: &str) -> Result<()> {
        let span = tracing::info_span!("host", host = %name);
        let _entered = span.enter();
        let started = Instant::now();
        let log = self.host_dir(name).join("console.log");
        let host = self.state.host(name)?.clone();
        let nspawn = host
            .nspawn
            .ok_or_else(|| LabError::HostDown(name.to_owned()))?;
        machine::wait_init(name, &nspawn, self.children.get_mut(name), &log)?;
        let deadline = started + BOOT_TIMEOUT;
        loop {
            if !self.is_running(name) {
                return Err(LabError::Command {
                    command: format!("systemd-nspawn for {name}"),
                    status: "exited while booting".into(),
                    stderr: machine::log_tail(&log),
                });
            }
            let booted = self
                .exec(name, "systemctl is-system-running")
                .map(|out| matches!(out.stdout_text().trim(), "running" | "degraded"))
                .unwrap_or(false);
            if booted && ssh_banner(host.address, 22) {
                tracing::info!(seconds = started.elapsed().as_secs_f64(), "host is up");
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(LabError::Timeout {
                    what: format!(
                        "{name} to boot and answer SSH ({})",
                        machine::log_tail(&log)
                    ),
                    seconds: BOOT_TIMEOUT.as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn host_dir(&self, name: &str) -> PathBuf {
        self.state
            .dir
            .clone()
            .unwrap_or_else(|| state::data_root().join(&self.state.name))
            .join("hosts")
            .join(name)
    }

    fn write_known_hosts(&self) -> Result<()> {
        let mut text = String::new();
        for host in &self.state.hosts {
            text.push_str(&format!("{} {}\n", host.address, host.host_key));
        }
        let path = self.known_hosts_path();
        fs::write(&path, text).map_err(|e| LabError::io("write", &path, e))
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

    /// Cleanly powers a host off (`systemctl poweroff` inside) and waits for
    /// its machine to end. Its disk and links stay, for [`Lab::start`].
    pub fn power_off(&mut self, host: &str) -> Result<()> {
        let span = tracing::info_span!("host", host = %host);
        let _entered = span.enter();
        if !self.is_running(host) {
            return Ok(());
        }
        // The command may be cut short by its own shutdown; the exit is what counts.
        let _ = self.exec(host, "systemctl poweroff --no-block");
        self.wait_stopped(host, Duration::from_secs(120))
    }

    /// Crashes a host: SIGKILL to its init, the way a power cut looks to its peers.
    pub fn crash(&mut self, host: &str) -> Result<()> {
        let span = tracing::info_span!("host", host = %host);
        let _entered = span.enter();
        let nspawn = self.state.host(host)?.nspawn.filter(ProcessId::is_running);
        let Some(nspawn) = nspawn else {
            return Ok(());
        };
        if let Some(init) = machine::find_init(&nspawn) {
            init.signal(Signal::SIGKILL)?;
        }
        self.wait_stopped(host, Duration::from_secs(30))
    }

    fn wait_stopped(&mut self, host: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while self.is_running(host) {
            if Instant::now() > deadline {
                return Err(LabError::Timeout {
                    what: format!("{host} to stop"),
                    seconds: limit.as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.children.remove(host);
        self.state.host_mut(host)?.nspawn = None;
        self.state.save()
    }

    /// Boots a host that was powered off or crashed and waits until it answers SSH.
    pub fn start(&mut self, host: &str) -> Result<()> {
        if self.is_running(host) {
            return Ok(());
        }
        self.state.host_mut(host)?.nspawn = None;
        self.boot(host)?;
        self.wait_ready(host)
    }

    /// Cuts the host's cable: its bridge port goes down, its eth0 loses carrier.
    pub fn cut_link(&self, host: &str) -> Result<()> {
        network::set_link(&self.veth(host)?, false)
    }

    /// Plugs the host's cable back in.
    pub fn restore_link(&self, host: &str) -> Result<()> {
        network::set_link(&self.veth(host)?, true)
    }

    /// Whether the host's cable is plugged in.
    pub fn link_is_up(&self, host: &str) -> Result<bool> {
        Ok(network::link_is_up(&self.veth(host)?))
    }

    fn veth(&self, host: &str) -> Result<String> {
        self.state
            .host(host)?
            .veth
            .clone()
            .ok_or_else(|| LabError::HostDown(host.to_owned()))
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
    fn teardown(&mut self) -> Vec<String> {
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

fn host_name(index: usize) -> String {
    format!("host{index}")
}

fn to_lab_host(host: &HostState) -> LabHost {
    LabHost {
        name: host.name.clone(),
        address: host.address,
        ssh_port: 22,
        host_key: host.host_key.clone(),
        machine_id: host.machine_id.clone(),
        mac: host.mac.clone(),
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
