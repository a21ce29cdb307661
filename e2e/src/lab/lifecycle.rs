//! Bringing hosts up: namespaces, links, overlay layers, identity, boot.

use std::fs;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::host::ssh_banner;
use super::{Lab, MARKER, host_name};
use crate::cgroup;
use crate::cmd;
use crate::config::LabConfig;
use crate::error::{LabError, Result};
use crate::hostfs;
use crate::machine::{self, MachineSpec};
use crate::network;
use crate::process::ProcessId;
use crate::state::{self, HostState};

/// How long a host may take to boot to a running systemd and sshd.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);

impl Lab {
    pub(super) fn build(&mut self, config: &LabConfig) -> Result<()> {
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
    pub(super) fn boot(&mut self, name: &str) -> Result<()> {
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
    pub(super) fn wait_ready(&mut self, name: &str) -> Result<()> {
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
}
