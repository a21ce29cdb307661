//! The base root file system every host boots from: made once with
//! debootstrap and cached under a key derived from what went into it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::cmd;
use crate::error::{LabError, Result};

/// The Debian suite of the base.
pub const SUITE: &str = "bookworm";
/// Used when neither `KUBESEED_LAB_MIRROR` nor the runner's apt sources name a mirror.
pub const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";

const PACKAGES: &str = include_str!("../lab/packages.txt");
const PREPARE: &str = include_str!("../lab/prepare-base.sh");
const OCI_BUSYBOX: &str = include_str!("../lab/oci-busybox.sh");

/// Where the busybox OCI archive lives inside every host.
pub const BUSYBOX_IMAGE_ARCHIVE: &str = "/usr/local/share/kubeseed-lab/busybox-oci.tar";
/// The name `ctr images import` gives that image.
pub const BUSYBOX_IMAGE: &str = "kubeseed.io/lab/busybox:1";

/// A ready base tree in the cache.
#[derive(Debug, Clone)]
pub struct BaseRootfs {
    /// The tree itself (the overlay's lower layer).
    pub tree: PathBuf,
    /// Set when this call built it (a cold cache).
    pub built: Option<BuildReport>,
}

/// What a cold build cost.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct BuildReport {
    /// Seconds spent in debootstrap and preparation.
    pub seconds: f64,
    /// Size of the tree on disk.
    pub bytes: u64,
}

/// The packages of the base, from `e2e/lab/packages.txt`.
pub fn packages() -> Vec<&'static str> {
    PACKAGES
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// The cache key: changes whenever the package list, the suite or the
/// preparation scripts change, so an edited list is rebuilt exactly once.
pub fn cache_key() -> String {
    let mut hash = Sha256::new();
    for part in [SUITE, PACKAGES, PREPARE, OCI_BUSYBOX] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..8])
}

/// `${KUBESEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeseed}/lab`.
pub fn cache_dir() -> PathBuf {
    let root = if let Some(dir) = std::env::var_os("KUBESEED_CACHE") {
        PathBuf::from(dir)
    } else if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        PathBuf::from(dir).join("kubeseed")
    } else {
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
        PathBuf::from(home).join(".cache/kubeseed")
    };
    root.join("lab")
}

/// The directory of the base for the current key.
pub fn base_dir() -> PathBuf {
    cache_dir().join(format!("rootfs-{}", cache_key()))
}

/// Whether the base for the current key is already built.
pub fn is_cached() -> bool {
    base_dir().join("complete").is_file()
}

/// Returns the cached base, building it first if needed.
pub fn ensure() -> Result<BaseRootfs> {
    let dir = base_dir();
    let tree = dir.join("tree");
    if dir.join("complete").is_file() {
        return Ok(BaseRootfs { tree, built: None });
    }
    let report = build(&dir)?;
    Ok(BaseRootfs {
        tree,
        built: Some(report),
    })
}

fn build(final_dir: &Path) -> Result<BuildReport> {
    let started = Instant::now();
    let partial = final_dir.with_extension(format!("partial-{}", std::process::id()));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(|e| LabError::io("remove", &partial, e))?;
    }
    fs::create_dir_all(&partial).map_err(|e| LabError::io("create", &partial, e))?;
    if let Err(error) = build_into(&partial) {
        // Keep the log for the reader, drop the half-made tree.
        let _ = fs::remove_dir_all(partial.join("tree"));
        return Err(error);
    }
    let bytes = disk_usage(&partial.join("tree"))?;
    let report = BuildReport {
        seconds: started.elapsed().as_secs_f64(),
        bytes,
    };
    let stamp = serde_json::json!({
        "suite": SUITE,
        "packages": packages(),
        "seconds": report.seconds,
        "bytes": report.bytes,
    });
    fs::write(partial.join("complete"), stamp.to_string())
        .map_err(|e| LabError::io("write", partial.join("complete"), e))?;
    if final_dir.join("complete").is_file() {
        // Another lab finished the same build first; theirs is as good.
        let _ = fs::remove_dir_all(&partial);
    } else {
        if final_dir.exists() {
            fs::remove_dir_all(final_dir).map_err(|e| LabError::io("remove", final_dir, e))?;
        }
        fs::rename(&partial, final_dir).map_err(|e| LabError::io("rename", &partial, e))?;
    }
    Ok(report)
}

fn build_into(dir: &Path) -> Result<()> {
    let tree = dir.join("tree");
    let mirror = mirror();
    let span = tracing::info_span!("debootstrap", suite = SUITE, %mirror);
    let _entered = span.enter();
    tracing::info!(dir = %dir.display(), "building the base root file system (once per package list)");
    let log = dir.join("debootstrap.log");
    let log_file = fs::File::create(&log).map_err(|e| LabError::io("create", &log, e))?;
    let log_err = log_file
        .try_clone()
        .map_err(|e| LabError::io("open", &log, e))?;
    let mut debootstrap = Command::new("debootstrap");
    debootstrap
        .arg("--variant=minbase")
        .arg(format!("--include={}", packages().join(",")))
        .arg(SUITE)
        .arg(&tree)
        .arg(&mirror)
        .stdout(log_file)
        .stderr(log_err);
    let status = debootstrap.status().map_err(|source| LabError::Spawn {
        program: "debootstrap".into(),
        source,
    })?;
    if !status.success() {
        let text = fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(LabError::Command {
            command: cmd::command_line(&debootstrap),
            status: status.to_string(),
            stderr: format!("(full log: {})\n{}", log.display(), tail.join("\n")),
        });
    }
    let scripts = dir.join("scripts");
    fs::create_dir_all(&scripts).map_err(|e| LabError::io("create", &scripts, e))?;
    for (name, text) in [
        ("prepare-base.sh", PREPARE),
        ("oci-busybox.sh", OCI_BUSYBOX),
    ] {
        fs::write(scripts.join(name), text)
            .map_err(|e| LabError::io("write", scripts.join(name), e))?;
    }
    cmd::run(
        "sh",
        [
            scripts.join("prepare-base.sh").as_os_str(),
            tree.as_os_str(),
        ],
    )?;
    Ok(())
}

/// The Debian mirror: `KUBESEED_LAB_MIRROR`, else the first one the runner's
/// apt sources use for the suite (so the lab fetches exactly where apt does).
pub fn mirror() -> String {
    if let Ok(mirror) = std::env::var("KUBESEED_LAB_MIRROR") {
        return mirror;
    }
    let mut texts = Vec::new();
    if let Ok(text) = fs::read_to_string("/etc/apt/sources.list") {
        texts.push(text);
    }
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for path in paths {
            if let Ok(text) = fs::read_to_string(path) {
                texts.push(text);
            }
        }
    }
    texts
        .iter()
        .find_map(|text| mirror_in(text, SUITE))
        .unwrap_or_else(|| FALLBACK_MIRROR.to_owned())
}

/// Finds the URI serving `suite` in one sources file (one-line or deb822 style).
fn mirror_in(text: &str, suite: &str) -> Option<String> {
    for line in text.lines() {
        let words: Vec<&str> = line
            .split_whitespace()
            .filter(|w| !w.starts_with('['))
            .collect();
        if words.first() == Some(&"deb") && words.get(2) == Some(&suite) {
            return words.get(1).map(|u| u.trim_end_matches('/').to_owned());
        }
    }
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
        };
        let is_deb = field("Types:").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"));
        let has_suite = field("Suites:").is_some_and(|s| s.split_whitespace().any(|s| s == suite));
        if is_deb && has_suite {
            return field("URIs:")
                .and_then(|u| u.split_whitespace().next())
                .map(|u| u.trim_end_matches('/').to_owned());
        }
    }
    None
}

fn disk_usage(path: &Path) -> Result<u64> {
    let out = cmd::run("du", ["-sb".as_ref(), path.as_os_str()])?;
    Ok(out
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_list_has_what_the_hosts_need() {
        let packages = packages();
        for needed in [
            "systemd",
            "openssh-server",
            "containerd",
            "keepalived",
            "busybox-static",
        ] {
            assert!(packages.contains(&needed), "{needed} missing");
        }
        assert!(packages.iter().all(|p| !p.contains(' ')));
    }

    #[test]
    fn finds_the_mirror_in_deb822_and_one_line_sources() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n\
                      Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n";
        assert_eq!(
            mirror_in(deb822, "bookworm").as_deref(),
            Some("http://deb.debian.org/debian")
        );
        let one_line = "deb [arch=amd64] http://mirror.example/debian/ bookworm main\n";
        assert_eq!(
            mirror_in(one_line, "bookworm").as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(mirror_in("deb http://x/y trixie main", "bookworm"), None);
    }

    #[test]
    fn cache_key_is_stable_and_short() {
        assert_eq!(cache_key(), cache_key());
        assert_eq!(cache_key().len(), 16);
    }
}
