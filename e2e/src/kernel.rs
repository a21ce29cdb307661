//! The runner's kernel settings a kubelet needs, which its hosts cannot set.
//!
//! inotify's per-user limits are shared by every host too (their root is the
//! runner's root): each host's systemd and each kubelet (cAdvisor) take
//! inotify instances, and with the default 128 the fourth kubelet failed to
//! start ("inotify_init: too many open files"). The lab raises them while
//! it is up, as kind's documentation asks of its users.
//!
//! The six values a kubelet with `protectKernelDefaults` checks
//! (vm.overcommit_memory, vm.panic_on_oom, kernel.panic,
//! kernel.panic_on_oops, kernel.keys.root_maxkeys/maxbytes) are not
//! namespaced, and nspawn mounts /proc/sys read-only in its machines. The
//! kubelets in lab hosts run with `protectKernelDefaults: true` (they check
//! these values instead of writing them), so the lab sets them on the runner
//! while any lab is up. The values found before the first lab came up are
//! saved once, in a file every lab shares, and put back when the last lab
//! goes down.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};
use crate::state::RUN_DIR;

/// How a wanted value is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Exactly this value (what a kubelet's `protectKernelDefaults` checks).
    Exactly(&'static str),
    /// At least this number (capacity: a larger value is kept).
    AtLeast(u64),
}

/// What the lab's hosts need of the runner's kernel.
pub const TUNABLES: [(&str, Want); 8] = [
    ("vm/overcommit_memory", Want::Exactly("1")),
    ("vm/panic_on_oom", Want::Exactly("0")),
    ("kernel/panic", Want::Exactly("10")),
    ("kernel/panic_on_oops", Want::Exactly("1")),
    ("kernel/keys/root_maxkeys", Want::Exactly("1000000")),
    ("kernel/keys/root_maxbytes", Want::Exactly("25000000")),
    ("fs/inotify/max_user_instances", Want::AtLeast(8192)),
    ("fs/inotify/max_user_watches", Want::AtLeast(524_288)),
];

/// The value to write, or `None` when `current` already meets `want`.
fn needed(current: &str, want: Want) -> Option<String> {
    match want {
        Want::Exactly(v) => (current != v).then(|| v.to_owned()),
        Want::AtLeast(n) => match current.parse::<u64>() {
            Ok(c) if c >= n => None,
            _ => Some(n.to_string()),
        },
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    values: Vec<(String, String)>,
}

fn saved_path() -> PathBuf {
    Path::new(RUN_DIR).join("kernel-tunables.json")
}

fn sysctl_path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key)
}

fn read(key: &str) -> Result<String> {
    let path = sysctl_path(key);
    fs::read_to_string(&path)
        .map(|v| v.trim().to_owned())
        .map_err(|e| LabError::io("read", &path, e))
}

fn write(key: &str, value: &str) -> Result<()> {
    let path = sysctl_path(key);
    fs::write(&path, value).map_err(|e| LabError::io("write", &path, e))
}

/// Saves the runner's values (each once, whichever lab comes first) and
/// sets what the hosts need.
pub fn apply() -> Result<()> {
    let path = saved_path();
    let mut saved = match fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str::<Saved>(&text)
            .map_err(|e| LabError::Config(format!("{} is not readable: {e}", path.display())))?,
        Err(_) => Saved { values: Vec::new() },
    };
    let before = saved.values.len();
    for (key, _) in TUNABLES {
        if !saved.values.iter().any(|(k, _)| k == key) {
            saved.values.push((key.to_owned(), read(key)?));
        }
    }
    if saved.values.len() != before {
        fs::create_dir_all(RUN_DIR).map_err(|e| LabError::io("create", RUN_DIR, e))?;
        let text = serde_json::to_string_pretty(&saved)
            .map_err(|e| LabError::Config(format!("cannot record kernel settings: {e}")))?;
        fs::write(&path, text).map_err(|e| LabError::io("write", &path, e))?;
    }
    for (key, want) in TUNABLES {
        if let Some(value) = needed(&read(key)?, want) {
            tracing::info!(
                key,
                value,
                "setting the runner's kernel tunable for the lab's hosts"
            );
            write(key, &value)?;
        }
    }
    Ok(())
}

/// Puts the saved values back when no lab other than `except` is up.
pub fn restore_unless_in_use(except: &str) -> Result<()> {
    let path = saved_path();
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(());
    };
    if other_labs_up(except) {
        return Ok(());
    }
    let saved: Saved = serde_json::from_str(&text)
        .map_err(|e| LabError::Config(format!("{} is not readable: {e}", path.display())))?;
    for (key, value) in &saved.values {
        // Only the keys this module manages, whatever the file says.
        if TUNABLES.iter().any(|(k, _)| k == key) {
            write(key, value)?;
        }
    }
    fs::remove_file(&path).map_err(|e| LabError::io("remove", &path, e))
}

fn other_labs_up(except: &str) -> bool {
    let Ok(entries) = fs::read_dir(RUN_DIR) else {
        return false;
    };
    entries
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy() != except && e.path().join("state.json").exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_values_are_set_and_larger_capacities_kept() {
        assert_eq!(needed("0", Want::Exactly("1")), Some("1".into()));
        assert_eq!(needed("1", Want::Exactly("1")), None);
        assert_eq!(needed("128", Want::AtLeast(8192)), Some("8192".into()));
        assert_eq!(needed("65536", Want::AtLeast(8192)), None);
        assert_eq!(needed("garbage", Want::AtLeast(8192)), Some("8192".into()));
    }
}
