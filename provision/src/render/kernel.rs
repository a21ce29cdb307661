//! What the kernel must provide before containerd and the kubelet start:
//! modules loaded at boot and sysctls set at boot.
//!
//! On a container host (a read-only `/proc/sys`, no module loading)
//! systemd skips or fails to apply these files; there the machine running
//! the containers must provide the same settings (the lab sets them on
//! its runner), and the kubelet only checks its six
//! (`protectKernelDefaults`).

use crate::files::HostFiles;

use super::HEADER;
use super::paths;

/// Modules: overlayfs for containerd's snapshotter, br_netfilter so bridged
/// Pod traffic passes through iptables (kube-proxy's Service rules).
const MODULES: &[&str] = &["overlay", "br_netfilter"];

/// Sysctls: bridged traffic through iptables, forwarding for Pod traffic,
/// and the values the kubelet either sets itself or, with
/// `protectKernelDefaults`, insists on.
const SYSCTLS: &[(&str, &str)] = &[
    ("net.bridge.bridge-nf-call-iptables", "1"),
    ("net.bridge.bridge-nf-call-ip6tables", "1"),
    ("net.ipv4.ip_forward", "1"),
    ("vm.overcommit_memory", "1"),
    ("vm.panic_on_oom", "0"),
    ("kernel.panic", "10"),
    ("kernel.panic_on_oops", "1"),
    ("kernel.keys.root_maxkeys", "1000000"),
    ("kernel.keys.root_maxbytes", "25000000"),
];

/// `/etc/modules-load.d/kubeseed.conf` and `/etc/sysctl.d/99-kubeseed.conf`
/// (0644). The same on every node.
pub fn render() -> HostFiles {
    let mut modules = format!("{HEADER}\n");
    for m in MODULES {
        modules.push_str(m);
        modules.push('\n');
    }
    let mut sysctl = format!("{HEADER}\n");
    for (key, value) in SYSCTLS {
        sysctl.push_str(&format!("{key} = {value}\n"));
    }
    let mut files = HostFiles::default();
    files.insert_public(paths::MODULES_LOAD, modules);
    files.insert_public(paths::SYSCTL, sysctl);
    files
}

/// The sysctls the rendered file sets, for checks on a host (`sysctl -n`).
pub fn sysctls() -> &'static [(&'static str, &'static str)] {
    SYSCTLS
}
