//! The record of everything a lab created, written before or right after each
//! creation, so `down` (even from another process, even after a failed `up`)
//! removes exactly that and nothing else.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Subnet;
use crate::error::{LabError, Result};
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
    /// Reads the state of lab `name`; `Ok(None)` when it is not up.
    pub fn load(name: &str) -> Result<Option<LabState>> {
        let path = state_path(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LabError::io("read", &path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| LabError::State {
                path,
                message: format!("{e}; remove what it lists by hand, then the file"),
            })
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
