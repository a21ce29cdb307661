//! The programs kubeseed needs on a host, and the command that installs
//! the missing ones on the host's distribution.

use super::facts::OsFamily;

/// Programs kubeseed's tasks and the components run; missing one fails.
pub const REQUIRED_PROGRAMS: [&str; 12] = [
    "sh",
    "mount",
    "umount",
    "ip",
    "iptables",
    "sha256sum",
    "stat",
    "tar",
    "systemctl",
    "journalctl",
    "mktemp",
    "install",
];

/// Programs whose absence only warns, with why they matter.
pub const OPTIONAL_PROGRAMS: [(&str, &str); 4] = [
    ("modprobe", "loads kernel modules"),
    ("sysctl", "applies /etc/sysctl.d at once"),
    ("conntrack", "kubeadm's preflight wants it"),
    ("socat", "port forwarding"),
];

/// The package that provides `program` in `family`.
fn package(family: OsFamily, program: &str) -> Option<&'static str> {
    use OsFamily::*;
    Some(match (family, program) {
        (Debian, "sh") => "dash",
        (RedHat | Suse, "sh") => "bash",
        (Debian, "mount" | "umount") => "mount",
        (RedHat | Suse, "mount" | "umount") => "util-linux",
        (Debian | Suse, "ip" | "ss") => "iproute2",
        (RedHat, "ip" | "ss") => "iproute",
        (Debian | Suse, "iptables") => "iptables",
        (RedHat, "iptables") => "iptables-nft",
        (Debian | RedHat | Suse, "sha256sum" | "stat" | "mktemp" | "install") => "coreutils",
        (Debian | RedHat | Suse, "tar") => "tar",
        (Debian | RedHat | Suse, "systemctl" | "journalctl") => "systemd",
        (Debian | RedHat | Suse, "modprobe") => "kmod",
        (Debian | Suse, "sysctl") => "procps",
        (RedHat, "sysctl") => "procps-ng",
        (Debian, "conntrack") => "conntrack",
        (RedHat | Suse, "conntrack") => "conntrack-tools",
        (Debian | RedHat | Suse, "socat") => "socat",
        (Debian | RedHat | Suse, "sudo") => "sudo",
        (Debian | RedHat | Suse, "haproxy") => "haproxy",
        (Debian | RedHat | Suse, "keepalived") => "keepalived",
        (Debian | RedHat | Suse, "curl") => "curl",
        (Debian | RedHat | Suse, "bash") => "bash",
        (Debian | RedHat | Suse, "timeout") => "coreutils",
        (Debian, "nginx") => "nginx-light libnginx-mod-stream",
        (RedHat, "nginx") => "nginx nginx-mod-stream",
        (Suse, "nginx") => "nginx",
        _ => return None,
    })
}

/// The command that installs what provides `programs`.
pub fn install_command(family: OsFamily, programs: &[&str]) -> String {
    let mut packages: Vec<&str> = Vec::new();
    for p in programs {
        match package(family, p) {
            Some(pkg) if !packages.contains(&pkg) => packages.push(pkg),
            Some(_) => {}
            None => return format!("install the packages that provide: {}", programs.join(", ")),
        }
    }
    let list = packages.join(" ");
    match family {
        OsFamily::Debian => format!("apt-get install -y {list}"),
        OsFamily::RedHat => format!("dnf install -y {list}"),
        OsFamily::Suse => format!("zypper install -y {list}"),
        OsFamily::Other => format!("install the packages that provide: {}", programs.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_commands_per_family() {
        assert_eq!(
            install_command(OsFamily::Debian, &["ip", "ss", "iptables", "stat", "tar"]),
            "apt-get install -y iproute2 iptables coreutils tar"
        );
        assert_eq!(
            install_command(OsFamily::RedHat, &["conntrack", "sysctl"]),
            "dnf install -y conntrack-tools procps-ng"
        );
        assert_eq!(
            install_command(OsFamily::Suse, &["socat"]),
            "zypper install -y socat"
        );
        assert_eq!(
            install_command(OsFamily::Other, &["tar", "ip"]),
            "install the packages that provide: tar, ip"
        );
        assert_eq!(
            install_command(OsFamily::Debian, &["frobnicate"]),
            "install the packages that provide: frobnicate"
        );
    }
}
