//! [`evaluate`]: facts and expectations in, a [`Report`] out. Pure.

use super::expect::{Expectations, PeerIdentity};
use super::facts::{
    Access, CAP_SYS_MODULE, CgroupHierarchy, Facts, KUBELET_TUNABLES, Module, OsFamily, SystemFacts,
};
use super::ownership::{ownership, port_checks, state_checks};
use super::packages::{OPTIONAL_PROGRAMS, REQUIRED_PROGRAMS, install_command};
use super::report::{Check, Report};
use crate::ssh::shell::quote;

/// Judges `facts` against `expect`: one [`Check`] per concern, in a fixed
/// order. When commands could not run as root, the report holds only the
/// failed `privileges` check (nothing else was gathered).
pub fn evaluate(facts: &Facts, expect: &Expectations) -> Report {
    let mut checks = vec![privileges(&facts.access)];
    let sys = match (&facts.access, &facts.system) {
        (Access::Root { .. }, Some(sys)) => sys,
        (Access::Root { .. }, None) => {
            checks.push(Check::fail(
                "facts",
                "nothing was gathered",
                "run the preflight again; if it keeps failing, run kubeseed's preflight script by hand",
            ));
            return Report::new(&facts.host, checks);
        }
        _ => return Report::new(&facts.host, checks),
    };
    let owner = ownership(&sys.state, expect.cluster.as_ref());
    let ctx = Ctx { sys, expect };
    checks.extend([
        ctx.init(),
        ctx.os(),
        ctx.arch(),
        ctx.cpus(),
        ctx.memory(),
        ctx.swap(),
        ctx.clock(),
        ctx.hostname(),
        ctx.machine_id(),
        ctx.product_uuid(),
        ctx.macs(),
    ]);
    checks.extend(ctx.advertise_address());
    checks.extend(port_checks(sys, expect, &owner));
    checks.extend([
        ctx.module("overlay", &sys.overlay),
        ctx.module("br_netfilter", &sys.br_netfilter),
        ctx.bridge_nf_call_iptables(),
        ctx.forwarding_sysctl("ip_forward", "net.ipv4.ip_forward"),
        ctx.cgroup_version(),
        ctx.cgroup_controllers(),
        ctx.kernel_tunables(),
        ctx.oom_score_adj(),
        ctx.required_programs(),
        ctx.optional_programs(),
    ]);
    checks.extend(state_checks(&sys.state, &owner));
    Report::new(&facts.host, checks)
}

fn privileges(access: &Access) -> Check {
    let name = "privileges";
    match access {
        Access::Root { sudo_user: None } => Check::pass(name, "commands run as root (root login)"),
        Access::Root {
            sudo_user: Some(user),
        } => Check::pass(name, format!("user {user}, root through passwordless sudo")),
        Access::SudoNeedsPassword { user } => Check::fail(
            name,
            format!(
                "user {user} is not root and `sudo -n` wants a password; \
                 the other checks need root and did not run"
            ),
            format!(
                "as root on the host: echo {} > /etc/sudoers.d/kubeseed && chmod 0440 /etc/sudoers.d/kubeseed \
                 (or connect as root)",
                quote(&format!("{user} ALL=(ALL) NOPASSWD: ALL"))
            ),
        ),
        Access::SudoMissing { message } => Check::fail(
            name,
            format!("{message}; the other checks need root and did not run"),
            "connect as root, or install sudo (apt-get install -y sudo / dnf install -y sudo) \
             and give the user a NOPASSWD rule in /etc/sudoers.d/",
        ),
        Access::NotRoot { uid } => Check::fail(
            name,
            format!(
                "commands ran as uid {uid}, not root, even through sudo; \
                 the other checks need root and did not run"
            ),
            "the user's sudoers rule must let it run any command as root: \
             USER ALL=(ALL) NOPASSWD: ALL in /etc/sudoers.d/kubeseed",
        ),
    }
}

struct Ctx<'a> {
    sys: &'a SystemFacts,
    expect: &'a Expectations,
}

impl Ctx<'_> {
    /// " on the machine that runs this nspawn container" or "".
    fn outside(&self) -> String {
        match &self.sys.container {
            Some(c) => format!(" on the machine that runs this {c} container"),
            None => String::new(),
        }
    }

    fn family(&self) -> OsFamily {
        self.sys.os.family()
    }

    fn init(&self) -> Check {
        let pid1 = self.sys.init.pid1.as_deref().unwrap_or("unknown");
        if self.sys.init.systemd {
            Check::pass("init", format!("systemd (PID 1: {pid1})"))
        } else {
            Check::fail(
                "init",
                format!(
                    "PID 1 is {pid1}, not systemd (no /run/systemd/system): kubeseed runs etcd, \
                     the control plane and the kubelet as systemd units"
                ),
                "use a host booted with systemd as init (a VM, a machine, or a container whose \
                 init is systemd, e.g. systemd-nspawn --boot)",
            )
        }
    }

    fn os(&self) -> Check {
        let k = &self.sys.kernel;
        if k.name != "Linux" {
            return Check::fail(
                "os",
                format!(
                    "kernel {} {}: Kubernetes nodes here run Linux",
                    k.name, k.release
                ),
                "pick a Linux host",
            );
        }
        match &self.sys.os.pretty_name {
            Some(name) => Check::pass("os", format!("{name}, kernel {}", k.release)),
            None => Check::warn(
                "os",
                format!("no /etc/os-release, kernel {}", k.release),
                "nothing unless something else fails: without os-release kubeseed cannot name \
                 the packages to install",
            ),
        }
    }

    fn arch(&self) -> Check {
        let k = &self.sys.kernel;
        let arch = k.go_arch();
        let detail = format!("{} ({arch})", k.machine);
        match &self.expect.arch {
            Some(want) if want == arch => Check::pass("arch", detail),
            Some(want) => Check::fail(
                "arch",
                format!("{detail}, but kubeseed's binaries are {want}"),
                format!("pick a {want} host, or use a bundle built for {arch}"),
            ),
            None if arch == "amd64" || arch == "arm64" => Check::pass("arch", detail),
            None => Check::warn(
                "arch",
                format!("{detail}: kubeseed's bundles are built for amd64 and arm64"),
                format!("use a bundle built for {arch}"),
            ),
        }
    }

    fn cpus(&self) -> Check {
        let min = self.expect.min_cpus;
        match self.sys.cpus {
            None => Check::warn(
                "cpus",
                "unknown (no nproc, no /proc/cpuinfo)",
                "check the host by hand: nproc",
            ),
            Some(n) if n < min => Check::warn(
                "cpus",
                format!("{n} CPU(s); kubeadm wants {min} for a {}", self.expect.role),
                format!("give the host at least {min} CPUs"),
            ),
            Some(n) => Check::pass("cpus", n.to_string()),
        }
    }

    fn memory(&self) -> Check {
        let min = self.expect.min_memory_mib;
        let note = if self.sys.container.is_some() {
            " (the machine's: a container sees its host's /proc/meminfo)"
        } else {
            ""
        };
        match self.sys.memory_kib {
            None => Check::warn(
                "memory",
                "unknown (no MemTotal in /proc/meminfo)",
                "check by hand: free -m",
            ),
            Some(kib) if kib / 1024 < min => Check::warn(
                "memory",
                format!(
                    "{} MiB{note}; kubeadm wants {min} MiB for a {}",
                    kib / 1024,
                    self.expect.role
                ),
                format!("give the host at least {min} MiB of memory"),
            ),
            Some(kib) => Check::pass("memory", format!("{} MiB{note}", kib / 1024)),
        }
    }

    fn swap(&self) -> Check {
        let swaps = &self.sys.swaps;
        if swaps.is_empty() {
            return Check::pass("swap", "off");
        }
        let list: Vec<String> = swaps
            .iter()
            .map(|s| format!("{} ({}, {} MiB)", s.name, s.kind, s.size_kib / 1024))
            .collect();
        let mut fix = String::from(
            "swapoff -a && sed -i '/^[^#].*[[:space:]]swap[[:space:]]/ s/^/#/' /etc/fstab",
        );
        if swaps.iter().any(|s| s.name.starts_with("/dev/zram")) {
            fix.push_str(" && apt-get remove -y systemd-zram-generator zram-tools (zram swap comes back at boot otherwise)");
        }
        if let Some(c) = &self.sys.container {
            fix = format!(
                "{fix}, on the machine that runs this {c} container (its swap is the machine's)"
            );
        }
        Check::fail(
            "swap",
            format!(
                "on: {}; the kubelet refuses to run with swap",
                list.join(", ")
            ),
            fix,
        )
    }

    fn clock(&self) -> Check {
        let c = &self.sys.clock;
        let (Some((lo, hi)), Some(min)) = (c.skew_bounds(), c.min_skew()) else {
            return Check::warn(
                "clock",
                "the host's time could not be read (date +%s.%N)",
                "check the host's clock by hand: date -u; timedatectl",
            );
        };
        let mid = (lo + hi) / 2.0;
        let err = (hi - lo) / 2.0;
        let fix = format!(
            "synchronise both clocks with NTP{}: timedatectl set-ntp true (systemd-timesyncd) \
             or install chrony; compare with date -u",
            self.outside()
        );
        let ahead = if mid >= 0.0 { "ahead of" } else { "behind" };
        let detail = if min == 0.0 {
            format!(
                "agrees with this workstation within {:.2} s",
                lo.abs().max(hi.abs())
            )
        } else {
            format!(
                "host is {:.2} s {ahead} this workstation (±{:.2} s)",
                mid.abs(),
                err
            )
        };
        if min.abs() > self.expect.clock_fail.as_secs_f64() {
            Check::fail(
                "clock",
                format!(
                    "{detail}: over {} s, certificates would not be valid yet on one side",
                    self.expect.clock_fail.as_secs()
                ),
                fix,
            )
        } else if min.abs() > self.expect.clock_warn.as_secs_f64() {
            Check::warn(
                "clock",
                format!("{detail}: over {} s", self.expect.clock_warn.as_secs()),
                fix,
            )
        } else {
            Check::pass("clock", detail)
        }
    }

    fn peers_with(&self, same: impl Fn(&PeerIdentity) -> bool) -> Vec<&str> {
        self.expect
            .peers
            .iter()
            .filter(|p| same(p))
            .map(|p| p.name.as_str())
            .collect()
    }

    fn hostname(&self) -> Check {
        let h = &self.sys.hostname;
        let set = "hostnamectl set-hostname NAME (lower-case letters, digits, '-' and '.', unique in the cluster)";
        if h.is_empty() {
            return Check::fail("hostname", "empty", set);
        }
        let lower = h.to_lowercase();
        if !is_dns_subdomain(&lower) {
            return Check::fail(
                "hostname",
                format!("{h:?} is not a valid Node name (DNS-1123 subdomain)"),
                set,
            );
        }
        if lower == "localhost" || lower.starts_with("localhost.") {
            return Check::fail(
                "hostname",
                format!("{h}: every such host would register as the same Node"),
                set,
            );
        }
        let dup = self.peers_with(|p| {
            p.hostname
                .as_deref()
                .is_some_and(|o| o.eq_ignore_ascii_case(h))
        });
        if !dup.is_empty() {
            return Check::fail(
                "hostname",
                format!(
                    "{h} is already the hostname of {}: two Nodes cannot share a name",
                    dup.join(", ")
                ),
                set,
            );
        }
        if lower != *h {
            return Check::warn(
                "hostname",
                format!("{h}: the Node will be named {lower}"),
                "hostnamectl set-hostname with a lower-case name, so host and Node names agree",
            );
        }
        Check::pass("hostname", h.clone())
    }

    fn machine_id(&self) -> Check {
        let regenerate = "rm -f /etc/machine-id && systemd-machine-id-setup (then reboot)";
        match self.sys.machine_id.as_deref() {
            None | Some("uninitialized") => Check::warn(
                "machine-id",
                "/etc/machine-id is missing or uninitialised: the kubelet reports it as the Node's machine ID",
                "systemd-machine-id-setup",
            ),
            Some(id) => {
                let dup = self.peers_with(|p| p.machine_id.as_deref() == Some(id));
                if dup.is_empty() {
                    Check::pass("machine-id", id)
                } else {
                    Check::fail(
                        "machine-id",
                        format!(
                            "{id} is also the machine-id of {} (a cloned image?)",
                            dup.join(", ")
                        ),
                        regenerate,
                    )
                }
            }
        }
    }

    fn product_uuid(&self) -> Check {
        match self.sys.product_uuid.as_deref() {
            None => Check::pass(
                "product_uuid",
                "not exposed (no DMI: a container, or a VM without it)",
            ),
            Some(id) => {
                let dup = self.peers_with(|p| {
                    p.product_uuid
                        .as_deref()
                        .is_some_and(|o| o.eq_ignore_ascii_case(id))
                });
                if dup.is_empty() {
                    Check::pass("product_uuid", id)
                } else {
                    Check::warn(
                        "product_uuid",
                        format!(
                            "{id} is also the product_uuid of {} (cloned VMs?)",
                            dup.join(", ")
                        ),
                        "give each VM its own SMBIOS UUID (e.g. virt-sysprep, or a new VM definition)",
                    )
                }
            }
        }
    }

    fn macs(&self) -> Check {
        let links: Vec<String> = self
            .sys
            .links
            .iter()
            .filter_map(|l| l.mac.as_ref().map(|m| format!("{} {m}", l.name)))
            .collect();
        if links.is_empty() {
            return Check::warn(
                "mac-addresses",
                "no network link with a MAC address besides loopback",
                "give the host a network link that reaches the other nodes",
            );
        }
        let mut dups = Vec::new();
        for l in &self.sys.links {
            let Some(mac) = &l.mac else { continue };
            for peer in self.peers_with(|p| p.macs.iter().any(|m| m.eq_ignore_ascii_case(mac))) {
                dups.push(format!("{} {mac} (also on {peer})", l.name));
            }
        }
        if dups.is_empty() {
            Check::pass("mac-addresses", links.join(", "))
        } else {
            Check::warn(
                "mac-addresses",
                format!(
                    "duplicates: {}; on one network they break ARP",
                    dups.join(", ")
                ),
                "give the link a unique MAC: ip link set dev LINK address 02:xx:xx:xx:xx:xx \
                 (and make it permanent in the network configuration), or regenerate the VM's NIC",
            )
        }
    }

    fn advertise_address(&self) -> Option<Check> {
        let want = self.expect.advertise_address?;
        let have = &self.sys.addresses;
        Some(if have.contains(&want) {
            Check::pass("address", format!("{want} is on a link"))
        } else if have.is_empty() {
            Check::warn(
                "address",
                format!("cannot tell whether {want} is on a link (no `ip`)"),
                "check by hand: ip -o addr",
            )
        } else {
            let list: Vec<String> = have.iter().map(ToString::to_string).collect();
            Check::fail(
                "address",
                format!(
                    "{want} is not on any link (the host has {})",
                    list.join(", ")
                ),
                format!(
                    "advertise one of the host's addresses, or add it: ip addr add {want}/PREFIX dev LINK"
                ),
            )
        })
    }

    fn module(&self, name: &'static str, m: &Module) -> Check {
        if m.builtin {
            return Check::pass(name, "built into the kernel");
        }
        if m.loaded {
            return Check::pass(name, "loaded");
        }
        let caps = self.sys.capabilities;
        let can_load = caps.effective_has(CAP_SYS_MODULE) && self.sys.has_program("modprobe");
        if m.available && can_load {
            return Check::pass(name, "not loaded; the module is installed").kubeseed_does(
                format!("loads it (modprobe {name}) and lists it in /etc/modules-load.d/ for boot"),
            );
        }
        let why = if !caps.effective_has(CAP_SYS_MODULE) {
            "this host may not load modules (no CAP_SYS_MODULE: a container?)".to_owned()
        } else if !m.available {
            format!("no module file for kernel {}", self.sys.kernel.release)
        } else {
            "modprobe is missing".to_owned()
        };
        let fix = if !caps.effective_has(CAP_SYS_MODULE) {
            format!(
                "modprobe {name}{} (and list it in /etc/modules-load.d/ there)",
                if self.sys.container.is_some() {
                    self.outside()
                } else {
                    " on the machine that runs this host".to_owned()
                }
            )
        } else if !m.available {
            format!(
                "install the modules of the running kernel (Debian: apt-get install -y linux-image-{}), then modprobe {name}",
                self.sys.kernel.release
            )
        } else {
            install_command(self.family(), &["modprobe"])
        };
        Check::fail(name, format!("not in the kernel, and {why}"), fix)
    }

    /// A sysctl kubeseed wants at 1 and sets itself where it may.
    fn forwarding_sysctl(&self, name: &'static str, key: &str) -> Check {
        let fix = match &self.sys.container {
            // net.* belongs to the network namespace, not to the machine.
            Some(c) if key.starts_with("net.") => format!(
                "set it in this host's network namespace, from the machine that runs this {c} \
                 container: nsenter --target PID --net sysctl -w {key}=1 (PID: the container's \
                 init as the machine sees it; or `ip netns exec NETNS ...`), or give the \
                 container a writable /proc/sys/net"
            ),
            _ => format!(
                "sysctl -w {key}=1{} and keep it in /etc/sysctl.d/ (here /proc/sys is read-only)",
                self.outside()
            ),
        };
        match self.sys.sysctl(key) {
            Some(s) if s.value.as_deref() == Some("1") => {
                let how = if s.writable { "" } else { " (read-only here)" };
                Check::pass(name, format!("1{how}"))
            }
            Some(s) if s.value.is_some() => {
                let v = s.value.as_deref().unwrap_or_default();
                if s.writable {
                    Check::pass(name, format!("{v}, writable"))
                        .kubeseed_does(format!("sets {key}=1 and keeps it in /etc/sysctl.d/"))
                } else {
                    Check::fail(name, format!("{v}, and read-only here"), fix)
                }
            }
            _ => Check::fail(name, format!("{key} does not exist"), fix),
        }
    }

    fn bridge_nf_call_iptables(&self) -> Check {
        let name = "bridge-nf-call-iptables";
        let key = "net.bridge.bridge-nf-call-iptables";
        let present = self.sys.sysctl(key).is_some_and(|s| s.value.is_some());
        if present {
            return self.forwarding_sysctl(name, key);
        }
        let module = self.module("br_netfilter", &self.sys.br_netfilter);
        if module.status == super::report::Status::Pass && module.kubeseed.is_some() {
            Check::pass(name, "absent until br_netfilter is loaded")
                .kubeseed_does(format!("loads br_netfilter, then sets {key}=1"))
        } else {
            Check::fail(
                name,
                "absent: br_netfilter is not in the kernel (bridged pod traffic would bypass iptables)",
                module.fix.unwrap_or_else(|| "modprobe br_netfilter".into()),
            )
        }
    }

    fn cgroup_version(&self) -> Check {
        let fix = format!(
            "boot{} with cgroup v2: systemd.unified_cgroup_hierarchy=1 on the kernel command line",
            if self.sys.container.is_some() {
                " the machine that runs this container"
            } else {
                " the host"
            }
        );
        match self.sys.cgroups.hierarchy {
            Some(CgroupHierarchy::V2) => Check::pass("cgroups", "v2 (unified)"),
            Some(CgroupHierarchy::V1) if self.expect.allow_cgroup_v1 => {
                Check::warn("cgroups", "v1: deprecated since Kubernetes 1.31", fix)
                    .kubeseed_does("configures the kubelet with failCgroupV1: false")
            }
            Some(CgroupHierarchy::V1) => Check::fail(
                "cgroups",
                "v1, and this cluster does not accept cgroup v1 hosts",
                fix,
            ),
            None => Check::fail(
                "cgroups",
                "no cgroup file system is mounted at /sys/fs/cgroup",
                "mount cgroups (a systemd host does at boot); a container needs them from its machine",
            ),
        }
    }

    fn cgroup_controllers(&self) -> Check {
        let required: &[&str] = match self.sys.cgroups.hierarchy {
            Some(CgroupHierarchy::V2) => &["cpu", "cpuset", "memory", "pids"],
            Some(CgroupHierarchy::V1) => &[
                "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids",
            ],
            None => {
                return Check::fail(
                    "cgroup-controllers",
                    "no cgroup hierarchy",
                    "see the cgroups check",
                );
            }
        };
        let have = &self.sys.cgroups.controllers;
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|c| !have.iter().any(|h| h == c))
            .collect();
        if missing.is_empty() {
            Check::pass("cgroup-controllers", required.join(" "))
        } else {
            Check::fail(
                "cgroup-controllers",
                format!("missing: {} (have: {})", missing.join(" "), have.join(" ")),
                format!(
                    "enable them: cgroup_enable={} on the kernel command line where the kernel \
                     disables them by default, or delegate them to this host{}",
                    missing.join(","),
                    if self.sys.container.is_some() {
                        " from its machine"
                    } else {
                        ""
                    }
                ),
            )
        }
    }

    fn kernel_tunables(&self) -> Check {
        let name = "kernel-tunables";
        let mut read_only = Vec::new();
        // (key, current, wanted) of those not at the kubelet's value.
        let mut differ = Vec::new();
        for (key, want) in KUBELET_TUNABLES {
            let s = self.sys.sysctl(key);
            let value = s.and_then(|s| s.value.as_deref()).unwrap_or("missing");
            if !s.is_some_and(|s| s.writable) {
                read_only.push(key);
            }
            if value != want {
                differ.push((key, value, want));
            }
        }
        let changes: Vec<String> = differ
            .iter()
            .map(|(k, v, w)| format!("{k} {v} -> {w}"))
            .collect();
        if read_only.is_empty() {
            let detail = if changes.is_empty() {
                "writable, already as the kubelet wants".to_owned()
            } else {
                format!("writable; the kubelet will set {}", changes.join(", "))
            };
            return Check::pass(name, detail)
                .kubeseed_does("lets the kubelet set them (protectKernelDefaults: false)");
        }
        let which = if read_only.len() == KUBELET_TUNABLES.len() {
            "all six the kubelet tunes are read-only here".to_owned()
        } else {
            format!("read-only here: {}", read_only.join(", "))
        };
        if differ.is_empty() {
            return Check::pass(name, format!("{which}, and already as the kubelet wants"))
                .kubeseed_does("runs the kubelet with protectKernelDefaults: true");
        }
        let set: Vec<String> = differ.iter().map(|(k, _, w)| format!("{k}={w}")).collect();
        Check::fail(
            name,
            format!(
                "{which}, and the kubelet (protectKernelDefaults) would refuse to start: {}",
                changes.join(", ")
            ),
            format!(
                "sysctl -w {}{} (and keep them in /etc/sysctl.d/)",
                set.join(" "),
                self.outside()
            ),
        )
    }

    fn oom_score_adj(&self) -> Check {
        if self.sys.oom_score_adj_allowed() {
            Check::pass("oom-score-adj", "CAP_SYS_RESOURCE is in the bounding set")
        } else {
            Check::warn(
                "oom-score-adj",
                "no CAP_SYS_RESOURCE in the capability bounding set (a container?): pods cannot \
                 get lower OOM scores than their parents",
                format!(
                    "for full OOM protection, run the host with CAP_SYS_RESOURCE{}",
                    self.outside()
                ),
            )
            .kubeseed_does("sets containerd's restrict_oom_score_adj = true")
        }
    }

    fn required_programs(&self) -> Check {
        let missing: Vec<&str> = REQUIRED_PROGRAMS
            .iter()
            .copied()
            .filter(|p| !self.sys.has_program(p))
            .collect();
        if missing.is_empty() {
            Check::pass("programs", "all found")
        } else {
            Check::fail(
                "programs",
                format!("missing: {}", missing.join(", ")),
                install_command(self.family(), &missing),
            )
        }
    }

    fn optional_programs(&self) -> Check {
        let missing: Vec<(&str, &str)> = OPTIONAL_PROGRAMS
            .iter()
            .copied()
            .filter(|(p, _)| !self.sys.has_program(p))
            .collect();
        if missing.is_empty() {
            return Check::pass(
                "optional-programs",
                OPTIONAL_PROGRAMS
                    .iter()
                    .map(|(p, _)| *p)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
        let names: Vec<&str> = missing.iter().map(|(p, _)| *p).collect();
        let why: Vec<String> = missing.iter().map(|(p, w)| format!("{p} ({w})")).collect();
        Check::warn(
            "optional-programs",
            format!("missing: {}", why.join(", ")),
            install_command(self.family(), &names),
        )
    }
}

/// RFC 1123 subdomain, as Kubernetes checks Node names.
pub(crate) fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
