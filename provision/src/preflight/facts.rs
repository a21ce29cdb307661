//! What [`super::gather`] observed on a host: plain data, no judgement.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::cluster::{CgroupDriver, CgroupVersion, HostProfile};

/// Linux capability numbers preflight looks at.
pub const CAP_SYS_MODULE: u32 = 16;
/// Needed to lower OOM scores (`oom_score_adj` below 0) and to raise rlimits.
pub const CAP_SYS_RESOURCE: u32 = 24;

/// Everything preflight learned about one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    /// `address:port`, as the [`crate::host::Host`] names itself.
    pub host: String,
    /// Whether kubeseed's commands run as root there.
    pub access: Access,
    /// The rest, gathered by one script run as root; `None` when commands
    /// could not run as root (see `access`): nothing else was looked at.
    pub system: Option<SystemFacts>,
}

/// How kubeseed's commands run on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Access {
    /// As root: logged in as root, or through `sudo -n` when `sudo_user` is set.
    Root {
        /// The login user when it is not root (sudo's `SUDO_USER`).
        sudo_user: Option<String>,
    },
    /// Commands ran, but not as uid 0 (a broken sudo rule, `Defaults runas`...).
    NotRoot {
        /// The uid they ran as.
        uid: u32,
    },
    /// The login user is not root and `sudo -n` wants a password.
    SudoNeedsPassword {
        /// The login user.
        user: String,
    },
    /// The login user is not root and sudo is not installed.
    SudoMissing {
        /// What the SSH engine said.
        message: String,
    },
}

/// The facts the preflight script gathered (as root).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemFacts {
    /// The host's clock against the workstation's.
    pub clock: ClockSample,
    /// `uname -s`, `-r`, `-m`.
    pub kernel: Kernel,
    /// /etc/os-release.
    pub os: OsRelease,
    /// `uname -n`.
    pub hostname: String,
    /// /etc/machine-id (`None` when missing or empty).
    pub machine_id: Option<String>,
    /// /sys/class/dmi/id/product_uuid (`None` in containers and most VMs without DMI).
    pub product_uuid: Option<String>,
    /// What /run/systemd/container says (`systemd-nspawn`, `docker`...), or
    /// `docker` when /.dockerenv exists; `None` on a machine of its own.
    pub container: Option<String>,
    /// Network links other than loopback.
    pub links: Vec<Link>,
    /// Every address on the host's links (from `ip -o addr`; empty without `ip`).
    pub addresses: Vec<IpAddr>,
    /// Active swap areas (/proc/swaps).
    pub swaps: Vec<Swap>,
    /// Whether systemd is init (/run/systemd/system exists), and PID 1's name.
    pub init: Init,
    /// The overlay module (containerd's snapshotter).
    pub overlay: Module,
    /// The br_netfilter module (bridged traffic through iptables).
    pub br_netfilter: Module,
    /// The sysctls preflight reads, by dotted name.
    pub sysctls: BTreeMap<String, Sysctl>,
    /// The cgroup hierarchy and its controllers.
    pub cgroups: Cgroups,
    /// Capability sets of the script's process (root's, after sudo).
    pub capabilities: Capabilities,
    /// CPUs the process may run on (`nproc`).
    pub cpus: Option<u32>,
    /// MemTotal from /proc/meminfo, KiB.
    pub memory_kib: Option<u64>,
    /// Programs looked up in PATH: name -> path, `None` when missing.
    pub programs: BTreeMap<String, Option<String>>,
    /// TCP listeners (every one, not only the ports of interest).
    pub listeners: Vec<Listener>,
    /// What an earlier installation left.
    pub state: ExistingState,
}

/// A reading of the host's clock bracketed by two of the workstation's.
///
/// The script reads the host clock at its start and at its end; the
/// workstation reads its own before sending the command and after the
/// answer. With skew `s = host - workstation`: `host_start - s >= local_before`
/// and `host_end - s <= local_after`, so `s` lies in
/// `[host_end - local_after, host_start - local_before]`, whose width is the
/// round trip minus the script's own run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClockSample {
    /// Workstation time before the command was sent, ns since the epoch.
    pub local_before_ns: i64,
    /// Workstation time after the answer arrived, ns since the epoch.
    pub local_after_ns: i64,
    /// Host time when the script started, ns since the epoch.
    pub host_start_ns: Option<i64>,
    /// Host time when the script ended, ns since the epoch.
    pub host_end_ns: Option<i64>,
    /// Resolution of the host's readings in ns (1 with GNU `date +%N`,
    /// 1e9 when the host's `date` prints whole seconds only).
    pub host_resolution_ns: i64,
}

impl ClockSample {
    /// The interval, in seconds, that holds `host clock - workstation
    /// clock`; `None` when the host gave no readable time.
    pub fn skew_bounds(&self) -> Option<(f64, f64)> {
        let start = self.host_start_ns?;
        let end = self.host_end_ns?;
        // A truncated reading is at most one resolution step early.
        let lo = end - self.local_after_ns;
        let hi = start + self.host_resolution_ns.max(1) - 1 - self.local_before_ns;
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        Some((lo as f64 / 1e9, hi as f64 / 1e9))
    }

    /// The smallest skew consistent with the readings (0 when they allow
    /// none), in seconds, signed: positive when the host is ahead.
    pub fn min_skew(&self) -> Option<f64> {
        let (lo, hi) = self.skew_bounds()?;
        Some(if lo > 0.0 {
            lo
        } else if hi < 0.0 {
            hi
        } else {
            0.0
        })
    }
}

/// `uname`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Kernel {
    /// `uname -s` (Linux).
    pub name: String,
    /// `uname -r`.
    pub release: String,
    /// `uname -m` (x86_64, aarch64...).
    pub machine: String,
}

impl Kernel {
    /// The machine as Go and Kubernetes name it (amd64, arm64...).
    pub fn go_arch(&self) -> &str {
        match self.machine.as_str() {
            "x86_64" | "amd64" => "amd64",
            "aarch64" | "arm64" => "arm64",
            "armv7l" | "armv6l" | "armv8l" => "arm",
            "ppc64le" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        }
    }
}

/// The fields of os-release preflight uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OsRelease {
    /// `ID` (debian, ubuntu, rhel...).
    pub id: Option<String>,
    /// `ID_LIKE`, split.
    pub id_like: Vec<String>,
    /// `VERSION_ID`.
    pub version_id: Option<String>,
    /// `PRETTY_NAME`.
    pub pretty_name: Option<String>,
}

/// The package manager family, for fix commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsFamily {
    /// Debian, Ubuntu...: apt-get.
    Debian,
    /// RHEL, Fedora, Rocky...: dnf.
    RedHat,
    /// openSUSE, SLES: zypper.
    Suse,
    /// Anything else.
    Other,
}

impl OsRelease {
    /// Which package manager the host has.
    pub fn family(&self) -> OsFamily {
        let ids = self.id.iter().chain(self.id_like.iter());
        for id in ids {
            match id.as_str() {
                "debian" | "ubuntu" => return OsFamily::Debian,
                "rhel" | "fedora" | "centos" | "rocky" | "almalinux" | "amzn" | "ol" => {
                    return OsFamily::RedHat;
                }
                "suse" | "opensuse" | "sles" | "opensuse-leap" | "opensuse-tumbleweed" => {
                    return OsFamily::Suse;
                }
                _ => {}
            }
        }
        OsFamily::Other
    }
}

/// A network link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// Its name (eth0).
    pub name: String,
    /// Its hardware address, lower case; `None` for links without one.
    pub mac: Option<String>,
}

/// An active swap area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Swap {
    /// Device or file.
    pub name: String,
    /// partition, file...
    pub kind: String,
    /// Size in KiB.
    pub size_kib: u64,
}

/// The init system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Init {
    /// /run/systemd/system exists: systemd booted the host.
    pub systemd: bool,
    /// PID 1's name (/proc/1/comm).
    pub pid1: Option<String>,
}

/// A kernel module.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Module {
    /// Present in the running kernel: /sys/module/NAME, /proc/modules, or
    /// (br_netfilter) its sysctls exist, or (overlay) /proc/filesystems lists it.
    pub loaded: bool,
    /// Listed in modules.builtin of the running kernel.
    pub builtin: bool,
    /// A module file for the running kernel is installed (modules.dep).
    pub available: bool,
}

/// One sysctl.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sysctl {
    /// Its current value; `None` when /proc/sys has no such entry.
    pub value: Option<String>,
    /// Whether root may write it: `test -w` and a read-write mount.
    pub writable: bool,
}

/// The cgroup hierarchy type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupHierarchy {
    /// cgroup v1 controllers mounted separately (a cgroup2 "unified"
    /// mount beside them, the hybrid layout, counts as v1: the kubelet does).
    V1,
    /// cgroup2 mounted at /sys/fs/cgroup.
    V2,
}

impl CgroupHierarchy {
    /// As the cluster description names it.
    pub fn version(self) -> CgroupVersion {
        match self {
            CgroupHierarchy::V1 => CgroupVersion::V1,
            CgroupHierarchy::V2 => CgroupVersion::V2,
        }
    }
}

/// cgroups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Cgroups {
    /// The hierarchy; `None` when no cgroup file system is mounted.
    pub hierarchy: Option<CgroupHierarchy>,
    /// Controllers available: v1, enabled and mounted (/proc/cgroups); v2,
    /// the root's cgroup.controllers.
    pub controllers: Vec<String>,
}

/// Capability sets (bit masks, bit N = capability N).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// CapEff.
    pub effective: u64,
    /// CapBnd: what any process started there may ever have.
    pub bounding: u64,
}

impl Capabilities {
    /// Whether `cap` is in the bounding set.
    pub fn bounding_has(&self, cap: u32) -> bool {
        cap < 64 && self.bounding & (1u64 << cap) != 0
    }

    /// Whether `cap` is effective.
    pub fn effective_has(&self, cap: u32) -> bool {
        cap < 64 && self.effective & (1u64 << cap) != 0
    }
}

/// A listening TCP socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    /// The local address as `ss` prints it (`0.0.0.0`, `[::]`, `127.0.0.1`...).
    pub address: String,
    /// The port.
    pub port: u16,
    /// The processes holding the socket (empty when they could not be seen).
    pub processes: Vec<Process>,
}

/// A process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    /// Its name (/proc/PID/comm: at most 15 characters).
    pub name: String,
    /// Its PID.
    pub pid: u32,
}

/// What an earlier installation left on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ExistingState {
    /// Regular files under /etc/kubernetes (4 levels deep); `None` when
    /// the directory does not exist.
    pub etc_kubernetes: Option<Vec<String>>,
    /// Entries of /var/lib/etcd; `None` when the directory does not exist.
    pub var_lib_etcd: Option<Vec<String>>,
    /// Regular files under /var/lib/kubeseed (2 levels); `None` when the
    /// directory does not exist.
    pub var_lib_kubeseed: Option<Vec<String>>,
    /// /var/lib/kubeseed/cluster-id, trimmed.
    pub cluster_id: Option<String>,
    /// [`super::certificate_fingerprint`] of /etc/kubernetes/pki/ca.crt.
    pub ca_fingerprint: Option<String>,
    /// The same of /etc/kubernetes/pki/etcd/ca.crt.
    pub etcd_ca_fingerprint: Option<String>,
}

impl ExistingState {
    /// Whether /var/lib/etcd holds anything.
    pub fn etcd_data(&self) -> bool {
        self.var_lib_etcd.as_ref().is_some_and(|e| !e.is_empty())
    }

    /// Whether /var/lib/etcd has a `member` directory (a member's data).
    pub fn etcd_member(&self) -> bool {
        self.var_lib_etcd
            .as_ref()
            .is_some_and(|e| e.iter().any(|n| n == "member"))
    }

    /// Whether nothing of an earlier installation is there.
    pub fn is_empty(&self) -> bool {
        self.etc_kubernetes.as_ref().is_none_or(Vec::is_empty)
            && !self.etcd_data()
            && self.var_lib_kubeseed.as_ref().is_none_or(Vec::is_empty)
            && self.cluster_id.is_none()
    }
}

/// The kernel tunables the kubelet sets when it may
/// (`protectKernelDefaults: false`) and insists on otherwise, with the
/// values it wants: all six of its `setupKernelTunables`
/// (pkg/kubelet/cm/container_manager_linux.go), not only the three usually
/// quoted. The last three are the kernel's defaults, but with
/// `protectKernelDefaults: true` any of the six that differs stops it.
pub const KUBELET_TUNABLES: [(&str, &str); 6] = [
    ("vm.overcommit_memory", "1"),
    ("vm.panic_on_oom", "0"),
    ("kernel.panic", "10"),
    ("kernel.panic_on_oops", "1"),
    ("kernel.keys.root_maxkeys", "1000000"),
    ("kernel.keys.root_maxbytes", "25000000"),
];

impl SystemFacts {
    /// A sysctl by dotted name.
    pub fn sysctl(&self, name: &str) -> Option<&Sysctl> {
        self.sysctls.get(name)
    }

    /// Whether every tunable in [`KUBELET_TUNABLES`] is writable.
    pub fn kernel_tunables_writable(&self) -> bool {
        KUBELET_TUNABLES
            .iter()
            .all(|(name, _)| self.sysctl(name).is_some_and(|s| s.writable))
    }

    /// Whether containers started here may lower OOM scores
    /// (CAP_SYS_RESOURCE is in the bounding set).
    pub fn oom_score_adj_allowed(&self) -> bool {
        self.capabilities.bounding_has(CAP_SYS_RESOURCE)
    }

    /// Whether `program` is in PATH.
    pub fn has_program(&self, program: &str) -> bool {
        self.programs.get(program).is_some_and(Option::is_some)
    }

    /// The cgroup driver kubeseed configures for the kubelet and containerd.
    ///
    /// `systemd` only where systemd is init **and** the hierarchy is cgroup
    /// v2: that is kubeadm's default and the combination kind's nodes run
    /// (systemd inside a container on v2 manages its own delegated subtree).
    /// Everywhere else `cgroupfs`:
    /// - without systemd as init there is no systemd to ask;
    /// - on cgroup v1 the only hosts measured here (the nspawn lab, whose
    ///   controllers nspawn mounts read-only and the lab remounts) ran the
    ///   kubelet and containerd with `cgroupfs`; the systemd driver was not
    ///   tried there, and v1 is deprecated anyway, so the driver that was
    ///   seen to work wins over the one the docs prefer.
    pub fn cgroup_driver(&self) -> CgroupDriver {
        if self.init.systemd && self.cgroups.hierarchy == Some(CgroupHierarchy::V2) {
            CgroupDriver::Systemd
        } else {
            CgroupDriver::Cgroupfs
        }
    }

    /// What the renderers need to know about this host.
    pub fn host_profile(&self) -> HostProfile {
        HostProfile {
            cgroup_version: self
                .cgroups
                .hierarchy
                .map_or(CgroupVersion::V2, CgroupHierarchy::version),
            cgroup_driver: self.cgroup_driver(),
            kernel_tunables_writable: self.kernel_tunables_writable(),
            oom_score_adj_allowed: self.oom_score_adj_allowed(),
        }
    }
}

impl Facts {
    /// What the renderers need to know about this host; `None` when the
    /// facts could not be gathered (no root: the report fails then).
    pub fn host_profile(&self) -> Option<HostProfile> {
        self.system.as_ref().map(SystemFacts::host_profile)
    }
}
