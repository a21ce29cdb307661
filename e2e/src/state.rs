//! The record of everything a lab created, written before or right after each
//! creation, so `down` (even from another process, even after a failed `up`)
//! removes exactly that and nothing else.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Subnet;
use crate::error::{LabError, Result};
use crate::network;
use crate::process::ProcessId;

/// Where state files live: gone after a reboot, like everything they record.
pub const RUN_DIR: &str = "/run/kubeseed-lab";

/// Where a lab keeps host layers, keys and logs: `KUBESEED_LAB_DIR` or
/// /var/lib/kubeseed-lab (not /run: containerd state can be large).
pub fn data_root() -> PathBuf {
    std::env::var_os("KUBESEED_LAB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/kubeseed-lab"))
}

/// The state file of lab `name`.
pub fn state_path(name: &str) -> PathBuf {
    Path::new(RUN_DIR).join(name).join("state.json")
}

/// Everything one lab made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    /// The lab's name.
    pub name: String,
    /// Its /24.
    pub subnet: Subnet,
    /// Its data directory (created by the lab; removed whole by `down`).
    pub dir: Option<PathBuf>,
    /// The base tree the hosts' overlays sit on.
    pub base: PathBuf,
    /// The bridge, once created.
    pub bridge: Option<String>,
    /// Whether the lab's accept rule for its bridge is in the runner's
    /// FORWARD chain (see [`crate::network::forward_rule`]).
    #[serde(default)]
    pub forward_rule: bool,
    /// The hosts.
    pub hosts: Vec<HostState>,
    /// Addresses handed out by `free_address`.
    pub handed_out: Vec<Ipv4Addr>,
    /// A process that owns the lab and must end it (`lab up` in the foreground).
    pub owner: Option<ProcessId>,
}

/// Everything one host is made of.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostState {
    /// Host name (also its hostname).
    pub name: String,
    /// 1-based index.
    pub index: usize,
    /// Its address on the bridge.
    pub address: Ipv4Addr,
    /// Its eth0 MAC.
    pub mac: String,
    /// Its machine-id.
    pub machine_id: String,
    /// Its SSH host public key (`ssh-ed25519 AAAA...`).
    pub host_key: String,
    /// The network namespace, once created.
    pub netns: Option<String>,
    /// The runner-side veth, once created.
    pub veth: Option<String>,
    /// The overlay's mount point, while mounted.
    pub mount: Option<PathBuf>,
    /// Whether cgroup subtrees were created for it.
    pub cgroups: bool,
    /// The running systemd-nspawn process.
    pub nspawn: Option<ProcessId>,
}

impl LabState {
    /// Reads the state of lab `name`; `Ok(None)` when it is not up. A state
    /// file that lists anything the lab would not have made under that name
    /// (see [`LabState::check_own`]) is refused as a whole.
    pub fn load(name: &str) -> Result<Option<LabState>> {
        let path = state_path(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LabError::io("read", &path, e)),
        };
        let state: LabState = serde_json::from_str(&text).map_err(|e| LabError::State {
            path: path.clone(),
            message: format!("{e}; remove what it lists by hand, then the file"),
        })?;
        state.check_own(name).map_err(|why| LabError::State {
            path,
            message: format!(
                "{why}; the lab touches nothing a state file lists unless it is a name the lab \
                 itself derives for lab `{name}`: remove what the lab made by hand, then the file"
            ),
        })?;
        Ok(Some(state))
    }

    /// Checks every namespace, link, mount, directory and process the state
    /// lists against what lab `name` itself makes: its bridge and veths
    /// (`ks-NAME-...`), namespaces (`kubeseed-NAME-hostN`), its data
    /// directory (`data_root()/NAME`, with `KUBESEED_LAB_DIR` as at `up`),
    /// the overlay mounts below it, and systemd-nspawn processes of its
    /// machines. `down` deletes and kills what the file lists, so a file
    /// edited by hand, or written by another version, must not be trusted.
    pub fn check_own(&self, name: &str) -> std::result::Result<(), String> {
        crate::config::validate_name(name).map_err(|e| e.to_string())?;
        if self.name != name {
            return Err(format!("it is the state of lab `{}`", self.name));
        }
        let foreign = |what: &str,
                       found: &dyn std::fmt::Display,
                       expected: &dyn std::fmt::Display| {
            Err(format!(
                "it lists the {what} {found}, which lab `{name}` never makes (it would be {expected})"
            ))
        };
        let bridge = network::bridge_name(name);
        if let Some(b) = &self.bridge
            && *b != bridge
        {
            return foreign("bridge", b, &bridge);
        }
        let dir = data_root().join(name);
        if let Some(d) = &self.dir
            && *d != dir
        {
            return foreign("data directory", &d.display(), &dir.display());
        }
        for (i, host) in self.hosts.iter().enumerate() {
            let index = i + 1;
            let host_name = format!("host{index}");
            if host.name != host_name || host.index != index {
                return foreign(
                    "host",
                    &format!("{} (number {})", host.name, host.index),
                    &format!("{host_name} (number {index})"),
                );
            }
            let netns = network::netns_name(name, &host.name);
            if let Some(n) = &host.netns
                && *n != netns
            {
                return foreign("network namespace", n, &netns);
            }
            let veth = network::veth_name(name, index);
            if let Some(v) = &host.veth
                && *v != veth
            {
                return foreign("link", v, &veth);
            }
            let mount = dir.join("hosts").join(&host.name).join("root");
            if let Some(m) = &host.mount
                && *m != mount
            {
                return foreign("mount", &m.display(), &mount.display());
            }
            if let Some(nspawn) = host.nspawn
                && nspawn.is_running()
            {
                let machine = format!("--machine={name}-{}", host.name);
                let cmdline = fs::read(format!("/proc/{}/cmdline", nspawn.pid)).unwrap_or_default();
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                // Before its exec, the process is the small shell that starts nspawn.
                let is_nspawn = args.first().is_some_and(|a| a.ends_with(b"systemd-nspawn"))
                    || args.contains(&&b"kubeseed-lab-start"[..]);
                if !is_nspawn || !args.contains(&machine.as_bytes()) {
                    return foreign(
                        "process",
                        &format!(
                            "{} ({})",
                            nspawn.pid,
                            String::from_utf8_lossy(&cmdline).replace('\0', " ")
                        ),
                        &format!("systemd-nspawn {machine}"),
                    );
                }
            }
        }
        Ok(())
    }

    /// Writes the state atomically (write then rename).
    pub fn save(&self) -> Result<()> {
        let path = state_path(&self.name);
        let dir = path.parent().unwrap_or(Path::new(RUN_DIR));
        fs::create_dir_all(dir).map_err(|e| LabError::io("create", dir, e))?;
        let text = serde_json::to_string_pretty(self).map_err(|e| LabError::State {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let temporary = path.with_extension("json.new");
        fs::write(&temporary, text).map_err(|e| LabError::io("write", &temporary, e))?;
        fs::rename(&temporary, &path).map_err(|e| LabError::io("rename", &temporary, e))
    }

    /// Deletes the state file and its directory.
    pub fn remove_file(&self) -> Result<()> {
        let path = state_path(&self.name);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LabError::io("remove", &path, e)),
        }
        if let Some(dir) = path.parent() {
            let _ = fs::remove_dir(dir);
        }
        let _ = fs::remove_dir(RUN_DIR);
        Ok(())
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Result<&HostState> {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| LabError::NoSuchHost(name.to_owned()))
    }

    /// The host called `name`, to change.
    pub fn host_mut(&mut self, name: &str) -> Result<&mut HostState> {
        self.hosts
            .iter_mut()
            .find(|h| h.name == name)
            .ok_or_else(|| LabError::NoSuchHost(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(name: &str) -> LabState {
        let dir = data_root().join(name);
        LabState {
            name: name.into(),
            subnet: "10.213.7.0/24".parse().unwrap(),
            dir: Some(dir.clone()),
            base: "/var/cache/base".into(),
            bridge: Some(network::bridge_name(name)),
            forward_rule: true,
            hosts: vec![HostState {
                name: "host1".into(),
                index: 1,
                address: "10.213.7.11".parse().unwrap(),
                mac: "02:6b:73:d5:07:0b".into(),
                machine_id: "0".into(),
                host_key: String::new(),
                netns: Some(network::netns_name(name, "host1")),
                veth: Some(network::veth_name(name, 1)),
                mount: Some(dir.join("hosts/host1/root")),
                cgroups: true,
                nspawn: None,
            }],
            handed_out: vec![],
            owner: None,
        }
    }

    #[test]
    fn what_the_lab_derives_is_accepted_and_anything_else_refused() {
        state("t1").check_own("t1").unwrap();
        type Change = fn(&mut LabState);
        let cases: [(&str, Change); 8] = [
            ("it is the state of lab", |s| s.name = "other".into()),
            ("bridge eth0", |s| s.bridge = Some("eth0".into())),
            ("data directory /etc", |s| s.dir = Some("/etc".into())),
            ("network namespace", |s| {
                s.hosts[0].netns = Some("prod".into())
            }),
            ("link docker0", |s| s.hosts[0].veth = Some("docker0".into())),
            ("mount /", |s| s.hosts[0].mount = Some("/".into())),
            ("host", |s| s.hosts[0].name = "../x".into()),
            ("process", |s| {
                s.hosts[0].nspawn = Some(ProcessId::of(std::process::id()).unwrap())
            }),
        ];
        for (want, change) in cases {
            let mut s = state("t1");
            change(&mut s);
            let err = s.check_own("t1").unwrap_err();
            assert!(err.contains(want), "{want}: {err}");
        }
        assert!(state("t1").check_own("Bad/Name").is_err());
    }
}
