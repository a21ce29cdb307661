//! Turns the preflight script's output into [`SystemFacts`]. Pure: every
//! function here takes text and is unit-tested on recorded outputs.

use std::collections::BTreeMap;
use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::facts::{
    Capabilities, CgroupHierarchy, Cgroups, ClockSample, ExistingState, Init, Kernel, Link, Module,
    OsRelease, Swap, Sysctl, SystemFacts,
};
use super::listeners;

/// The format version the script prints; the parser refuses others.
const VERSION: &str = "1";
const MARKER: &str = "@@kubeseed:";

/// Why an output could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError(pub String);

/// The script's output split into its sections, by name.
#[derive(Debug, Default)]
pub(crate) struct Sections<'a> {
    map: BTreeMap<&'a str, Vec<&'a str>>,
}

impl<'a> Sections<'a> {
    pub(crate) fn split(text: &'a str) -> Self {
        let mut map: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut current: Option<&str> = None;
        for line in text.lines() {
            if let Some(name) = line.strip_prefix(MARKER) {
                let name = name.trim();
                map.entry(name).or_default();
                current = Some(name);
            } else if let Some(name) = current
                && let Some(lines) = map.get_mut(name)
            {
                lines.push(line);
            }
        }
        // Each marker is printed after a newline: drop the blank lines that
        // leaves at the end of every section.
        for lines in map.values_mut() {
            while lines.last().is_some_and(|l| l.trim().is_empty()) {
                lines.pop();
            }
        }
        Sections { map }
    }

    /// The lines of a section (empty when it is missing).
    pub(crate) fn lines(&self, name: &str) -> &[&'a str] {
        self.map.get(name).map(Vec::as_slice).unwrap_or_default()
    }

    /// The section as one string, trimmed.
    pub(crate) fn text(&self, name: &str) -> String {
        self.lines(name).join("\n").trim().to_owned()
    }

    /// The first line of a section, trimmed; `None` when empty.
    pub(crate) fn first(&self, name: &str) -> Option<&'a str> {
        self.lines(name)
            .iter()
            .map(|l| l.trim())
            .find(|l| !l.is_empty())
    }

    fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

impl SystemFacts {
    /// Reads the output of [`super::SCRIPT`] (run as root), with the
    /// workstation's clock readings taken just before the command was sent
    /// and just after its answer (ns since the epoch).
    ///
    /// Fails only when the output is not the script's (wrong version,
    /// truncated); a missing fact inside is `None` or empty, for
    /// [`super::evaluate`] to judge.
    pub fn parse(stdout: &str, local_before_ns: i64, local_after_ns: i64) -> Result<Self, String> {
        parse(stdout, local_before_ns, local_after_ns).map_err(|e| e.0)
    }
}

pub(crate) fn parse(
    stdout: &str,
    local_before_ns: i64,
    local_after_ns: i64,
) -> Result<SystemFacts, ParseError> {
    let s = Sections::split(stdout);
    match s.first("version") {
        Some(VERSION) => {}
        Some(other) => {
            return Err(ParseError(format!(
                "the script printed format version {other}, this kubeseed reads {VERSION}"
            )));
        }
        None => {
            return Err(ParseError(
                "no version line: the output is not the preflight script's".into(),
            ));
        }
    }
    if !s.has("end") {
        return Err(ParseError(
            "the output stops before the end marker (truncated, or the script was killed)".into(),
        ));
    }
    let start = s.first("clock-start").and_then(parse_date);
    let end = s.first("clock-end").and_then(parse_date);
    let clock = ClockSample {
        local_before_ns,
        local_after_ns,
        host_start_ns: start.map(|(t, _)| t),
        host_end_ns: end.map(|(t, _)| t),
        host_resolution_ns: start.map(|(_, r)| r).max(end.map(|(_, r)| r)).unwrap_or(1),
    };
    let kernel = parse_uname(s.lines("uname"));
    let sysctls = parse_sysctls(s.lines("sysctl"), s.lines("proc-mounts"));
    let (mut overlay, mut br_netfilter, overlay_fs) = parse_modules(s.lines("modules"));
    overlay.loaded |= overlay_fs;
    // br_netfilter's sysctls exist only while it is in the kernel (loaded
    // or built in without parameters, so without /sys/module/br_netfilter).
    br_netfilter.loaded |= sysctls
        .get("net.bridge.bridge-nf-call-iptables")
        .is_some_and(|s| s.value.is_some());
    let listeners = if s.first("listeners") == Some("#proc") {
        listeners::parse_proc(
            s.lines("listeners"),
            s.lines("socket-owners"),
            s.lines("process-names"),
            big_endian(&kernel.machine),
        )
    } else {
        listeners::parse_ss(s.lines("listeners"))
    };
    Ok(SystemFacts {
        clock,
        os: parse_os_release(s.lines("os-release")),
        hostname: s.first("hostname").unwrap_or_default().to_owned(),
        machine_id: s.first("machine-id").map(str::to_owned),
        product_uuid: s.first("product-uuid").map(str::to_lowercase),
        container: s.first("container").map(str::to_owned),
        links: parse_links(s.lines("links")),
        addresses: parse_addresses(s.lines("addresses")),
        swaps: parse_swaps(s.lines("swaps")),
        init: parse_init(s.lines("init")),
        overlay,
        br_netfilter,
        sysctls,
        cgroups: parse_cgroups(
            s.first("cgroup-fs"),
            s.lines("cgroup-mounts"),
            s.lines("proc-cgroups"),
            s.first("cgroup2-controllers"),
        ),
        capabilities: parse_capabilities(s.lines("capabilities")),
        cpus: s.first("cpus").and_then(|l| l.parse().ok()),
        memory_kib: s.first("meminfo").and_then(parse_meminfo),
        programs: parse_programs(s.lines("programs")),
        listeners,
        state: parse_state(&s),
        kernel,
    })
}

/// The uid the script ran as and the login user (sudo's `SUDO_USER`, else
/// `id -un`).
pub(crate) fn parse_identity(stdout: &str) -> (Option<u32>, Option<String>) {
    let s = Sections::split(stdout);
    (
        s.first("uid").and_then(|u| u.parse().ok()),
        s.first("user").map(str::to_owned),
    )
}

/// `date +%s.%N`: ns since the epoch and the resolution. A `date` without
/// `%N` prints it literally (or nothing): whole seconds then.
pub(crate) fn parse_date(line: &str) -> Option<(i64, i64)> {
    let (secs, frac) = match line.split_once('.') {
        Some((s, f)) => (s, f),
        None => (line, ""),
    };
    let secs: i64 = secs.trim().parse().ok()?;
    if frac.len() == 9 && frac.bytes().all(|b| b.is_ascii_digit()) {
        let nanos: i64 = frac.parse().ok()?;
        Some((secs.checked_mul(1_000_000_000)?.checked_add(nanos)?, 1))
    } else {
        Some((secs.checked_mul(1_000_000_000)?, 1_000_000_000))
    }
}

fn parse_uname(lines: &[&str]) -> Kernel {
    let get = |i: usize| {
        lines
            .get(i)
            .map(|l| l.trim().to_owned())
            .unwrap_or_default()
    };
    Kernel {
        name: get(0),
        release: get(1),
        machine: get(2),
    }
}

/// Whether /proc/net/tcp's hex words are big-endian on this machine.
fn big_endian(machine: &str) -> bool {
    matches!(
        machine,
        "s390x" | "s390" | "ppc64" | "ppc" | "mips" | "mips64"
    )
}

/// `NAME TYPE MAC` per link (type 772 is loopback).
pub(crate) fn parse_links(lines: &[&str]) -> Vec<Link> {
    lines
        .iter()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?;
            let kind = it.next().unwrap_or("-");
            let mac = it.next().unwrap_or("-");
            if name == "lo" || kind == "772" {
                return None;
            }
            let mac = mac.to_lowercase();
            let mac = (mac != "-" && !mac.is_empty() && mac != "00:00:00:00:00:00").then_some(mac);
            Some(Link {
                name: name.to_owned(),
                mac,
            })
        })
        .collect()
}

/// `ip -o addr show`: the word after `inet` / `inet6`, without the prefix length.
pub(crate) fn parse_addresses(lines: &[&str]) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        for pair in words.windows(2) {
            if let [kind, addr] = pair
                && (*kind == "inet" || *kind == "inet6")
            {
                let addr = addr.split('/').next().unwrap_or(addr);
                if let Ok(ip) = addr.parse() {
                    out.push(ip);
                }
            }
        }
    }
    out
}

/// /proc/swaps without its header.
pub(crate) fn parse_swaps(lines: &[&str]) -> Vec<Swap> {
    lines
        .iter()
        .filter(|l| !l.starts_with("Filename"))
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next()?;
            let kind = it.next().unwrap_or("unknown");
            let size_kib = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            Some(Swap {
                name: name.replace("\\040", " "),
                kind: kind.to_owned(),
                size_kib,
            })
        })
        .collect()
}

fn parse_init(lines: &[&str]) -> Init {
    let mut init = Init::default();
    for l in lines {
        let l = l.trim();
        if l == "systemd" {
            init.systemd = true;
        } else if let Some(c) = l.strip_prefix("pid1 ") {
            init.pid1 = Some(c.trim().to_owned());
        }
    }
    init
}

/// `NAME sys=yes proc=no builtin=no file=yes` per module, and
/// `filesystem overlay` when /proc/filesystems lists overlay.
pub(crate) fn parse_modules(lines: &[&str]) -> (Module, Module, bool) {
    let mut overlay = Module::default();
    let mut br = Module::default();
    let mut overlay_fs = false;
    for l in lines {
        let mut it = l.split_whitespace();
        let Some(name) = it.next() else { continue };
        if name == "filesystem" {
            overlay_fs |= it.next() == Some("overlay");
            continue;
        }
        let mut m = Module::default();
        for kv in it {
            match kv.split_once('=') {
                Some(("sys" | "proc", "yes")) => m.loaded = true,
                Some(("builtin", "yes")) => {
                    m.builtin = true;
                    m.loaded = true;
                }
                Some(("file", "yes")) => m.available = true,
                _ => {}
            }
        }
        match name {
            "overlay" => overlay = m,
            "br_netfilter" => br = m,
            _ => {}
        }
    }
    (overlay, br, overlay_fs)
}

/// `PATH rw|ro VALUE` or `PATH absent` per sysctl; a sysctl is writable
/// only when `test -w` said so and the mount holding it is read-write
/// (container managers mount /proc/sys read-only).
pub(crate) fn parse_sysctls(lines: &[&str], mountinfo: &[&str]) -> BTreeMap<String, Sysctl> {
    let mounts = parse_mountinfo(mountinfo);
    let mut out = BTreeMap::new();
    for l in lines {
        let mut parts = l.splitn(3, ' ');
        let Some(path) = parts.next().filter(|p| !p.is_empty()) else {
            continue;
        };
        let name = path.replace('/', ".");
        let sysctl = match parts.next() {
            Some("absent") | None => Sysctl {
                value: None,
                writable: false,
            },
            Some(mode) => {
                let full = format!("/proc/sys/{path}");
                Sysctl {
                    value: Some(parts.next().unwrap_or("").trim().to_owned()),
                    writable: mode == "rw" && !mount_read_only(&mounts, &full),
                }
            }
        };
        out.insert(name, sysctl);
    }
    out
}

/// One line of /proc/self/mountinfo: what is mounted where, on top of what.
#[derive(Debug)]
struct MountLine {
    id: String,
    parent: String,
    point: String,
    read_only: bool,
}

fn parse_mountinfo(lines: &[&str]) -> Vec<MountLine> {
    lines
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(MountLine {
                id: (*f.first()?).to_owned(),
                parent: (*f.get(1)?).to_owned(),
                point: f.get(4)?.replace("\\040", " "),
                read_only: f.get(5)?.split(',').any(|o| o == "ro"),
            })
        })
        .collect()
}

fn holds(point: &str, path: &str) -> bool {
    path == point
        || point == "/"
        || path
            .strip_prefix(point)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether the mount a process actually reaches `path` through is
/// read-only. Mount points alone cannot tell: a bind mount propagated to a
/// peer can leave a second entry at the same point that a parent mount
/// hides (systemd-nspawn's /proc/sys does this). So the visible chain is
/// walked from the bottom: each step takes the child of the current mount
/// that holds `path` with the shortest mount point, since it hides the
/// deeper ones of the same parent.
fn mount_read_only(mounts: &[MountLine], path: &str) -> bool {
    let holding: Vec<&MountLine> = mounts.iter().filter(|m| holds(&m.point, path)).collect();
    let Some(mut top) = holding
        .iter()
        .filter(|m| !holding.iter().any(|p| p.id == m.parent))
        .min_by_key(|m| m.point.len())
        .copied()
    else {
        return false;
    };
    while let Some(child) = holding
        .iter()
        .filter(|m| m.parent == top.id)
        .min_by_key(|m| m.point.len())
    {
        top = child;
    }
    top.read_only
}

/// The hierarchy from `stat -f -c %T /sys/fs/cgroup` (or, without stat,
/// from /proc/self/mounts), and the usable controllers.
pub(crate) fn parse_cgroups(
    fs_type: Option<&str>,
    mounts: &[&str],
    proc_cgroups: &[&str],
    v2_controllers: Option<&str>,
) -> Cgroups {
    let mut v2_root = false;
    let mut v1_any = false;
    for l in mounts {
        let f: Vec<&str> = l.split_whitespace().collect();
        match (f.get(1), f.get(2)) {
            (Some(&"/sys/fs/cgroup"), Some(&"cgroup2")) => v2_root = true,
            (Some(_), Some(&"cgroup")) => v1_any = true,
            _ => {}
        }
    }
    let hierarchy = match fs_type {
        Some("cgroup2fs") => Some(CgroupHierarchy::V2),
        Some("tmpfs") if v1_any => Some(CgroupHierarchy::V1),
        _ if v2_root => Some(CgroupHierarchy::V2),
        _ if v1_any => Some(CgroupHierarchy::V1),
        _ => None,
    };
    let controllers = match hierarchy {
        Some(CgroupHierarchy::V2) => v2_controllers
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        Some(CgroupHierarchy::V1) => proc_cgroups
            .iter()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let (name, hierarchy, enabled) = (f.first()?, f.get(1)?, f.get(3)?);
                (*hierarchy != "0" && *enabled == "1").then(|| (*name).to_owned())
            })
            .collect(),
        None => Vec::new(),
    };
    Cgroups {
        hierarchy,
        controllers,
    }
}

pub(crate) fn parse_capabilities(lines: &[&str]) -> Capabilities {
    let mut caps = Capabilities::default();
    for l in lines {
        let Some((key, value)) = l.split_once(':') else {
            continue;
        };
        let Ok(bits) = u64::from_str_radix(value.trim(), 16) else {
            continue;
        };
        match key {
            "CapEff" => caps.effective = bits,
            "CapBnd" => caps.bounding = bits,
            _ => {}
        }
    }
    caps
}

/// `MemTotal:  24683584 kB`.
pub(crate) fn parse_meminfo(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("MemTotal:")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// os-release: `KEY=value`, values optionally quoted.
pub(crate) fn parse_os_release(lines: &[&str]) -> OsRelease {
    let mut os = OsRelease::default();
    for l in lines {
        let Some((key, value)) = l.split_once('=') else {
            continue;
        };
        let value = unquote(value.trim());
        match key.trim() {
            "ID" => os.id = Some(value),
            "ID_LIKE" => os.id_like = value.split_whitespace().map(str::to_owned).collect(),
            "VERSION_ID" => os.version_id = Some(value),
            "PRETTY_NAME" => os.pretty_name = Some(value),
            _ => {}
        }
    }
    os
}

fn unquote(v: &str) -> String {
    let inner = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(v);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `NAME PATH` or `NAME -`.
pub(crate) fn parse_programs(lines: &[&str]) -> BTreeMap<String, Option<String>> {
    lines
        .iter()
        .filter_map(|l| {
            let (name, path) = l.trim().split_once(' ')?;
            let path = path.trim();
            let path = (path != "-" && !path.is_empty()).then(|| path.to_owned());
            Some((name.to_owned(), path))
        })
        .collect()
}

/// The lines after `#dir`; `None` when the section has no `#dir` line.
fn dir_listing(lines: &[&str]) -> Option<Vec<String>> {
    let (first, rest) = lines.split_first()?;
    (first.trim() == "#dir").then(|| {
        rest.iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

fn parse_state(s: &Sections<'_>) -> ExistingState {
    let pem = |name: &str| {
        let text = s.text(name);
        (!text.is_empty()).then(|| certificate_fingerprint(text.as_bytes()))
    };
    ExistingState {
        etc_kubernetes: dir_listing(s.lines("etc-kubernetes")),
        var_lib_etcd: dir_listing(s.lines("var-lib-etcd")),
        var_lib_kubeseed: dir_listing(s.lines("var-lib-kubeseed")),
        cluster_id: s.first("cluster-id").map(str::to_owned),
        ca_fingerprint: pem("ca-crt"),
        etcd_ca_fingerprint: pem("etcd-ca-crt"),
    }
}

/// The fingerprint kubeseed compares CAs by: `sha256:` and the lower-case
/// hex SHA-256 of the first certificate's DER (what `openssl x509
/// -fingerprint -sha256` shows, without colons). Bytes that hold no PEM
/// certificate get `file-sha256:` and the hash of the bytes themselves, so
/// they never match a real CA.
pub fn certificate_fingerprint(pem: &[u8]) -> String {
    match x509_parser::pem::parse_x509_pem(pem) {
        Ok((_, block)) if block.label == "CERTIFICATE" => {
            format!("sha256:{}", hex::encode(Sha256::digest(&block.contents)))
        }
        _ => format!("file-sha256:{}", hex::encode(Sha256::digest(pem))),
    }
}

/// A fingerprint as the caller may write it (upper case, colons, with or
/// without `sha256:`), in [`certificate_fingerprint`]'s form.
pub(crate) fn normalize_fingerprint(fp: &str) -> String {
    let fp = fp.trim();
    let (prefix, hex) = match fp.split_once(':') {
        Some((p, rest)) if p.eq_ignore_ascii_case("sha256") || p == "file-sha256" => {
            (p.to_ascii_lowercase(), rest)
        }
        _ => ("sha256".to_owned(), fp),
    };
    let hex: String = hex
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    format!("{prefix}:{hex}")
}
