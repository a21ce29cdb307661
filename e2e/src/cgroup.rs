//! A cgroup subtree per host.
//!
//! Without one, every machine's systemd would create `system.slice/ssh.service`
//! and friends in the runner's *shared* hierarchy, so stopping a unit on one
//! host could kill another host's processes. nspawn is started inside
//! `kubeseed-lab/LAB/HOST` of every hierarchy; its cgroup namespace is rooted
//! there, so the host's systemd and containerd see (and write) only that subtree.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{LabError, Result};

const TOP: &str = "kubeseed-lab";

/// The cgroup hierarchies mounted under /sys/fs/cgroup (v1 controllers, the
/// v2 unified tree, or /sys/fs/cgroup itself on a pure v2 machine).
fn hierarchies() -> Result<Vec<(PathBuf, bool)>> {
    let mounts = fs::read_to_string("/proc/self/mounts")
        .map_err(|e| LabError::io("read", "/proc/self/mounts", e))?;
    let mut found = Vec::new();
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [_, mount_point, fs_type, options, ..] = fields[..]
            && (fs_type == "cgroup" || fs_type == "cgroup2")
            && mount_point.starts_with("/sys/fs/cgroup")
        {
            let is_cpuset = fs_type == "cgroup" && options.split(',').any(|o| o == "cpuset");
            found.push((PathBuf::from(mount_point), is_cpuset));
        }
    }
    Ok(found)
}

/// Creates the host's cgroup in every hierarchy and returns the
/// `cgroup.procs` files a process writes its PID into to join them all.
pub fn create(lab: &str, host: &str) -> Result<Vec<PathBuf>> {
    let mut procs = Vec::new();
    for (root, is_cpuset) in hierarchies()? {
        let mut dir = root.clone();
        for part in [TOP, lab, host] {
            let parent = dir.clone();
            dir.push(part);
            if !dir.is_dir() {
                fs::create_dir(&dir).map_err(|e| LabError::io("create cgroup", &dir, e))?;
                if is_cpuset {
                    // A new cpuset is empty and refuses tasks until it has CPUs and memory nodes.
                    for file in ["cpuset.cpus", "cpuset.mems"] {
                        let value = fs::read_to_string(parent.join(file))
                            .map_err(|e| LabError::io("read", parent.join(file), e))?;
                        fs::write(dir.join(file), value.trim())
                            .map_err(|e| LabError::io("write", dir.join(file), e))?;
                    }
                }
            }
        }
        procs.push(dir.join("cgroup.procs"));
    }
    Ok(procs)
}

/// Removes the host's cgroup subtrees (all processes in them must have ended).
/// Returns the directories that could not be removed.
pub fn remove(lab: &str, host: &str) -> Vec<PathBuf> {
    let mut left = Vec::new();
    let Ok(hierarchies) = hierarchies() else {
        return left;
    };
    for (root, _) in hierarchies {
        let dir = root.join(TOP).join(lab).join(host);
        if dir.is_dir() {
            remove_tree(&dir, &mut left);
        }
        // The lab and top levels go when empty; another lab may still use them.
        let _ = fs::remove_dir(root.join(TOP).join(lab));
        let _ = fs::remove_dir(root.join(TOP));
    }
    left
}

/// cgroupfs directories are removed with rmdir, children first.
fn remove_tree(dir: &Path, left: &mut Vec<PathBuf>) {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path(), left);
            }
        }
    }
    if let Err(error) = fs::remove_dir(dir) {
        tracing::warn!(dir = %dir.display(), %error, "cgroup left behind");
        left.push(dir.to_path_buf());
    }
}

/// Cgroup directories of this lab that still exist (for the leftover check).
pub fn remaining(lab: &str) -> Vec<PathBuf> {
    hierarchies()
        .unwrap_or_default()
        .into_iter()
        .map(|(root, _)| root.join(TOP).join(lab))
        .filter(|dir| dir.is_dir())
        .collect()
}
