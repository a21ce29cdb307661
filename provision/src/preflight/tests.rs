//! Unit tests of the parsers on recorded outputs and of `evaluate`.
//!
//! Kind of test: pure unit tests. The recorded outputs in testdata/ are
//! what the script printed on real machines:
//! - `runner.txt`: this project's CI runner (a Firecracker VM with a
//!   `/.dockerenv`, PID 1 not systemd, cgroup v1, no CAP_SYS_RESOURCE);
//! - `lab-host.txt`: a lab host (systemd-nspawn machine, Debian bookworm,
//!   systemd, sshd, containerd; see e2e/lab/README.md), run through
//!   `lab ssh host1 -- sh -s < gather.sh`.

use std::path::Path;
use std::time::Duration;

use futures::future::BoxFuture;

use super::facts::*;
use super::parse::{self, Sections, normalize_fingerprint, parse_date};
use super::*;
use crate::cluster::{CgroupDriver, CgroupVersion};
use crate::host::fake::{FakeHost, output};
use crate::host::{BoxReader, Host};
use crate::ssh::{ExecOutput, ExitStatus, FileSpec, UploadOutcome};

const RUNNER: &str = include_str!("testdata/runner.txt");
const LAB_HOST: &str = include_str!("testdata/lab-host.txt");

/// Host time at the start and end of a recorded output, as ns.
fn host_times(text: &str) -> (i64, i64) {
    let s = Sections::split(text);
    let start = s.first("clock-start").and_then(parse_date).unwrap().0;
    let end = s.first("clock-end").and_then(parse_date).unwrap().0;
    (start, end)
}

/// Parses a recorded output as if the workstation's clock agreed with the
/// host's and the round trip added 50 ms on each side.
fn parse_recorded(text: &str) -> SystemFacts {
    let (start, end) = host_times(text);
    parse::parse(text, start - 50_000_000, end + 50_000_000).unwrap()
}

fn facts(sys: SystemFacts) -> Facts {
    Facts {
        host: "10.0.0.1:22".into(),
        access: Access::Root { sudo_user: None },
        system: Some(sys),
    }
}

/// A host that passes everything for a fresh master: the runner's facts
/// with systemd, swapless, all capabilities, cgroup v2.
fn healthy() -> SystemFacts {
    let mut s = parse_recorded(RUNNER);
    s.init = Init {
        systemd: true,
        pid1: Some("systemd".into()),
    };
    s.container = None;
    s.capabilities.bounding = u64::MAX >> 23;
    s.capabilities.effective = u64::MAX >> 23;
    s.cgroups = Cgroups {
        hierarchy: Some(CgroupHierarchy::V2),
        controllers: ["cpuset", "cpu", "io", "memory", "hugetlb", "pids"]
            .map(String::from)
            .to_vec(),
    };
    for (k, v) in KUBELET_TUNABLES {
        s.sysctls.insert(
            k.into(),
            Sysctl {
                value: Some(v.into()),
                writable: true,
            },
        );
    }
    for p in ["modprobe", "conntrack", "socat"] {
        s.programs.insert(p.into(), Some(format!("/usr/sbin/{p}")));
    }
    s
}

fn eval(sys: SystemFacts, e: &Expectations) -> Report {
    evaluate(&facts(sys), e)
}

fn check<'a>(r: &'a Report, name: &str) -> &'a Check {
    r.check(name)
        .unwrap_or_else(|| panic!("no check {name} in\n{}", r.table()))
}

// ---------------------------------------------------------------- parsing

#[test]
fn runner_output_parses() {
    let s = parse_recorded(RUNNER);
    assert_eq!(s.hostname, "vm");
    assert_eq!(
        s.machine_id.as_deref(),
        Some("3d1219c7c4c5404aaa1f6d2a48adfda4")
    );
    assert_eq!(s.product_uuid, None);
    assert_eq!(s.container.as_deref(), Some("docker"));
    assert_eq!(s.kernel.name, "Linux");
    assert_eq!(s.kernel.machine, "x86_64");
    assert_eq!(s.kernel.go_arch(), "amd64");
    assert_eq!(s.os.id.as_deref(), Some("debian"));
    assert_eq!(
        s.os.pretty_name.as_deref(),
        Some("Debian GNU/Linux 12 (bookworm)")
    );
    assert_eq!(s.os.family(), OsFamily::Debian);
    let names: Vec<&str> = s.links.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["eth0", "ifb0", "ifb1"], "loopback left out");
    assert_eq!(s.links[0].mac.as_deref(), Some("02:fc:00:00:00:01"));
    assert_eq!(s.addresses.len(), 5);
    assert!(s.addresses.contains(&"192.0.2.2".parse().unwrap()));
    assert!(s.swaps.is_empty());
    assert!(!s.init.systemd);
    assert_eq!(s.init.pid1.as_deref(), Some("process_api"));
    assert!(s.overlay.loaded);
    // br_netfilter is built in without parameters: no /sys/module entry,
    // but its sysctl exists.
    assert!(s.br_netfilter.loaded);
    assert_eq!(
        s.sysctl("net.ipv4.ip_forward"),
        Some(&Sysctl {
            value: Some("0".into()),
            writable: true
        })
    );
    assert_eq!(
        s.sysctl("kernel.panic").unwrap().value.as_deref(),
        Some("1")
    );
    assert_eq!(s.cgroups.hierarchy, Some(CgroupHierarchy::V1));
    for c in [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "pids",
    ] {
        assert!(s.cgroups.controllers.iter().any(|h| h == c), "{c}");
    }
    assert!(
        !s.cgroups.controllers.iter().any(|h| h == "net_cls"),
        "not mounted"
    );
    assert!(!s.capabilities.bounding_has(CAP_SYS_RESOURCE));
    assert!(s.capabilities.bounding_has(CAP_SYS_MODULE));
    assert_eq!(s.cpus, Some(2));
    assert_eq!(s.memory_kib, Some(24_683_584));
    assert!(s.has_program("iptables"));
    assert!(!s.has_program("modprobe"));
    assert_eq!(s.listeners.len(), 1);
    assert_eq!(s.listeners[0].port, 2024);
    assert!(s.listeners[0].processes.is_empty());
    assert_eq!(s.state, ExistingState::default());
    let (lo, hi) = s.clock.skew_bounds().unwrap();
    assert!(lo <= 0.0 && hi >= 0.0, "{lo} {hi}");
    assert_eq!(s.clock.host_resolution_ns, 1);
}

#[test]
fn runner_host_profile() {
    let p = parse_recorded(RUNNER).host_profile();
    assert_eq!(p.cgroup_version, CgroupVersion::V1);
    assert_eq!(p.cgroup_driver, CgroupDriver::Cgroupfs);
    assert!(p.kernel_tunables_writable);
    assert!(!p.oom_score_adj_allowed);
}

#[test]
fn lab_host_output_parses() {
    let s = parse_recorded(LAB_HOST);
    assert_eq!(s.hostname, "host1");
    assert!(s.init.systemd);
    assert_eq!(s.init.pid1.as_deref(), Some("systemd"));
    assert_eq!(s.container.as_deref(), Some("systemd-nspawn"));
    assert_eq!(s.cgroups.hierarchy, Some(CgroupHierarchy::V1));
    assert_eq!(s.links.len(), 1);
    assert!(
        s.links[0]
            .mac
            .as_deref()
            .is_some_and(|m| m.starts_with("02:6b:73:"))
    );
    assert!(
        s.listeners
            .iter()
            .any(|l| l.port == 22 && l.processes.iter().any(|p| p.name == "sshd"))
    );
    // nspawn mounts /proc/sys read-only, /proc/sys/net included: the lab
    // joins an existing network namespace (--network-namespace-path), which
    // nspawn does not treat as its own private network.
    let fwd = s.sysctl("net.ipv4.ip_forward").unwrap();
    assert!(!fwd.writable);
    assert_eq!(fwd.value.as_deref(), Some("0"));
    assert!(!s.sysctl("vm.overcommit_memory").unwrap().writable);
    // Multi-digit values arrive whole (dash's `read` would give "1").
    assert_eq!(
        s.sysctl("kernel.keys.root_maxkeys")
            .unwrap()
            .value
            .as_deref(),
        Some("1000000")
    );
    assert!(!s.kernel_tunables_writable());
    assert!(!s.oom_score_adj_allowed());
    let p = s.host_profile();
    assert_eq!(p.cgroup_version, CgroupVersion::V1);
    assert_eq!(p.cgroup_driver, CgroupDriver::Cgroupfs);
    assert!(!p.kernel_tunables_writable);
    assert!(!p.oom_score_adj_allowed);
    assert!(s.swaps.is_empty());
    assert_eq!(s.os.family(), OsFamily::Debian);
    assert!(s.has_program("systemctl") && s.has_program("iptables"));
    assert_eq!(s.state, ExistingState::default());
}

#[test]
fn lab_host_evaluates_as_a_master() {
    let s = parse_recorded(LAB_HOST);
    let e = Expectations {
        advertise_address: s
            .addresses
            .iter()
            .find(|a| a.is_ipv4() && !a.is_loopback())
            .copied(),
        ..Expectations::control_plane()
    };
    let r = eval(s, &e);
    println!("{}", r.table());
    assert_eq!(check(&r, "init").status, Status::Pass);
    assert_eq!(check(&r, "cgroups").status, Status::Warn);
    assert_eq!(check(&r, "oom-score-adj").status, Status::Warn);
    assert_eq!(check(&r, "address").status, Status::Pass);
    for port in CONTROL_PLANE_PORTS {
        assert_eq!(check(&r, &format!("port {port}")).status, Status::Pass);
    }
    assert_eq!(check(&r, "swap").status, Status::Pass);
    // The lab's kernel settings are on the runner while a lab is up.
    assert_eq!(check(&r, "kernel-tunables").status, Status::Pass);
    // Forwarding is off in the host's network namespace, and the host
    // cannot turn it on: the one failure.
    let failed: Vec<&str> = r.failures().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["ip_forward"]);
    assert!(
        check(&r, "ip_forward")
            .fix
            .as_deref()
            .unwrap()
            .contains("nsenter --target PID --net sysctl -w net.ipv4.ip_forward=1")
    );
}

#[test]
fn sections_split_and_trim() {
    let s = Sections::split("\n@@kubeseed:a\nx\ny\n\n@@kubeseed:b\n\n@@kubeseed:c\nz\n");
    assert_eq!(s.lines("a"), ["x", "y"]);
    assert!(s.lines("b").is_empty());
    assert_eq!(s.first("c"), Some("z"));
    assert_eq!(s.first("missing"), None);
}

#[test]
fn foreign_or_truncated_output_is_refused() {
    let e = parse::parse("hello\n", 0, 0).unwrap_err();
    assert!(e.0.contains("not the preflight script's"), "{e:?}");
    let e = parse::parse(
        &RUNNER.replace("@@kubeseed:version\n1", "@@kubeseed:version\n2"),
        0,
        0,
    )
    .unwrap_err();
    assert!(e.0.contains("format version 2"), "{e:?}");
    let cut = &RUNNER[..RUNNER.find("@@kubeseed:end").unwrap()];
    let e = parse::parse(cut, 0, 0).unwrap_err();
    assert!(e.0.contains("end marker"), "{e:?}");
}

#[test]
fn dates_with_and_without_nanoseconds() {
    assert_eq!(
        parse_date("1796193233.519524805"),
        Some((1_796_193_233_519_524_805, 1))
    );
    assert_eq!(
        parse_date("1796193233.N"),
        Some((1_796_193_233_000_000_000, 1_000_000_000))
    );
    assert_eq!(
        parse_date("1796193233"),
        Some((1_796_193_233_000_000_000, 1_000_000_000))
    );
    assert_eq!(parse_date("soon"), None);
}

#[test]
fn clock_bounds_exclude_the_scripts_own_time() {
    let c = ClockSample {
        local_before_ns: 1_000_000_000,
        local_after_ns: 3_000_000_000,
        // The host is 10 s ahead; the script ran from +0.5 s to +1.5 s.
        host_start_ns: Some(11_500_000_000),
        host_end_ns: Some(12_500_000_000),
        host_resolution_ns: 1,
    };
    let (lo, hi) = c.skew_bounds().unwrap();
    assert!(
        (lo - 9.5).abs() < 1e-6 && (hi - 10.5).abs() < 1e-6,
        "{lo} {hi}"
    );
    assert!((c.min_skew().unwrap() - 9.5).abs() < 1e-6);
    // Behind.
    let behind = ClockSample {
        host_start_ns: Some(1_500_000_000 - 40_000_000_000),
        host_end_ns: Some(2_500_000_000 - 40_000_000_000),
        ..c
    };
    assert!((behind.min_skew().unwrap() + 39.5).abs() < 1e-6);
    // Whole seconds only: the reading may be up to 1 s late.
    let coarse = ClockSample {
        host_start_ns: Some(1_000_000_000),
        host_end_ns: Some(2_000_000_000),
        host_resolution_ns: 1_000_000_000,
        ..c
    };
    assert_eq!(coarse.min_skew(), Some(0.0));
    let none = ClockSample {
        host_start_ns: None,
        ..c
    };
    assert_eq!(none.skew_bounds(), None);
}

#[test]
fn sysctls_on_a_read_only_proc_sys() {
    // What systemd-nspawn mounts: /proc/sys read-only, /proc/sys/net
    // read-write (its own network namespace).
    let mountinfo = [
        "620 619 0:62 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw",
        "621 620 0:62 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw",
        "622 621 0:62 /sys/net /proc/sys/net rw,nosuid,nodev,noexec,relatime - proc proc rw",
    ];
    let lines = [
        "net/ipv4/ip_forward rw 1",
        // `test -w` said rw, the mount says otherwise.
        "vm/overcommit_memory rw 1",
        "kernel/panic ro 10",
        "net/bridge/bridge-nf-call-iptables absent",
        "net/ipv4/ip_local_port_range rw 32768\t60999",
    ];
    let s = parse::parse_sysctls(&lines, &mountinfo);
    assert!(s["net.ipv4.ip_forward"].writable);
    assert!(!s["vm.overcommit_memory"].writable);
    assert!(!s["kernel.panic"].writable);
    assert_eq!(s["kernel.panic"].value.as_deref(), Some("10"));
    assert_eq!(s["net.bridge.bridge-nf-call-iptables"].value, None);
    assert_eq!(
        s["net.ipv4.ip_local_port_range"].value.as_deref(),
        Some("32768\t60999")
    );
}

#[test]
fn cgroup_layouts() {
    let v2 = parse::parse_cgroups(
        Some("cgroup2fs"),
        &["cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0"],
        &[
            "#subsys_name\thierarchy\tnum_cgroups\tenabled",
            "cpu\t0\t80\t1",
        ],
        Some("cpuset cpu io memory hugetlb pids rdma misc"),
    );
    assert_eq!(v2.hierarchy, Some(CgroupHierarchy::V2));
    assert!(v2.controllers.contains(&"memory".to_owned()));
    // Without `stat`, the mounts decide.
    let v2 = parse::parse_cgroups(
        None,
        &["cgroup2 /sys/fs/cgroup cgroup2 rw 0 0"],
        &[],
        Some("cpu memory pids"),
    );
    assert_eq!(v2.hierarchy, Some(CgroupHierarchy::V2));
    // Hybrid: v1 controllers plus cgroup2 at /sys/fs/cgroup/unified.
    let hybrid = parse::parse_cgroups(
        Some("tmpfs"),
        &[
            "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0",
            "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0",
        ],
        &["memory\t4\t35\t1", "cpu\t0\t1\t1", "pids\t8\t1\t0"],
        None,
    );
    assert_eq!(hybrid.hierarchy, Some(CgroupHierarchy::V1));
    assert_eq!(
        hybrid.controllers,
        ["memory"],
        "unmounted or disabled left out"
    );
    let none = parse::parse_cgroups(Some("tmpfs"), &[], &[], None);
    assert_eq!(none.hierarchy, None);
}

#[test]
fn os_release_quoting_and_families() {
    let os = parse::parse_os_release(&[
        "NAME=\"Rocky Linux\"",
        "ID=\"rocky\"",
        "ID_LIKE=\"rhel centos fedora\"",
        "VERSION_ID='9.4'",
        "PRETTY_NAME=\"Rocky Linux 9.4 (Blue \\\"Onyx\\\")\"",
    ]);
    assert_eq!(os.id.as_deref(), Some("rocky"));
    assert_eq!(os.version_id.as_deref(), Some("9.4"));
    assert_eq!(
        os.pretty_name.as_deref(),
        Some("Rocky Linux 9.4 (Blue \"Onyx\")")
    );
    assert_eq!(os.family(), OsFamily::RedHat);
    let ubuntu = parse::parse_os_release(&["ID=ubuntu", "ID_LIKE=debian"]);
    assert_eq!(ubuntu.family(), OsFamily::Debian);
    let suse = parse::parse_os_release(&["ID=opensuse-leap", "ID_LIKE=\"suse opensuse\""]);
    assert_eq!(suse.family(), OsFamily::Suse);
    assert_eq!(
        parse::parse_os_release(&["ID=alpine"]).family(),
        OsFamily::Other
    );
}

#[test]
fn swaps_links_addresses_modules_caps() {
    let swaps = parse::parse_swaps(&[
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority",
        "/dev/sda2                               partition\t2097148\t\t0\t\t-2",
        "/swap\\040file                           file\t\t1048572\t\t0\t\t-3",
        "/dev/zram0                              partition\t4194300\t\t0\t\t100",
    ]);
    assert_eq!(swaps.len(), 3);
    assert_eq!(swaps[0].size_kib, 2_097_148);
    assert_eq!(swaps[1].name, "/swap file");
    assert_eq!(swaps[1].kind, "file");

    let links = parse::parse_links(&[
        "eth0 1 02:6B:73:08:0B:00",
        "lo 772 00:00:00:00:00:00",
        "wg0 65534 -",
        "dummy0 1 00:00:00:00:00:00",
    ]);
    assert_eq!(links.len(), 3);
    assert_eq!(links[0].mac.as_deref(), Some("02:6b:73:08:0b:00"));
    assert_eq!(links[1].mac, None);

    let addrs = parse::parse_addresses(&[
        "2: eth0    inet 10.213.8.11/24 brd 10.213.8.255 scope global eth0\\       valid_lft forever preferred_lft forever",
        "2: eth0    inet6 fe80::6b:73ff:fe08:b00/64 scope link \\       valid_lft forever preferred_lft forever",
    ]);
    assert_eq!(
        addrs,
        vec![
            "10.213.8.11".parse::<std::net::IpAddr>().unwrap(),
            "fe80::6b:73ff:fe08:b00".parse().unwrap()
        ]
    );

    let (overlay, br, fs) = parse::parse_modules(&[
        "overlay sys=no proc=no builtin=no file=yes",
        "br_netfilter sys=no proc=yes builtin=no file=yes",
        "filesystem overlay",
    ]);
    assert!(!overlay.loaded && overlay.available);
    assert!(fs);
    assert!(br.loaded);

    let caps = parse::parse_capabilities(&[
        "CapInh:\t0000000000000000",
        "CapEff:\t000001ffffffffff",
        "CapBnd:\t000001ffffffffff",
    ]);
    assert!(caps.bounding_has(CAP_SYS_RESOURCE));
    assert!(caps.effective_has(CAP_SYS_MODULE));
    assert!(!caps.bounding_has(64));
    assert_eq!(
        parse::parse_meminfo("MemTotal:        2014512 kB"),
        Some(2_014_512)
    );
    assert_eq!(parse::parse_meminfo("MemFree: 1 kB"), None);
}

#[test]
fn existing_state_and_ca_fingerprints() {
    let ca = rcgen::CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let pem = ca.pem();
    let expected = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(ca.der()))
    );
    assert_eq!(certificate_fingerprint(pem.as_bytes()), expected);
    assert!(certificate_fingerprint(b"not a cert").starts_with("file-sha256:"));

    let text = RUNNER
        .replace(
            "@@kubeseed:etc-kubernetes\n",
            "@@kubeseed:etc-kubernetes\n#dir\n/etc/kubernetes/admin.conf\n/etc/kubernetes/pki/ca.crt\n",
        )
        .replace(
            "@@kubeseed:var-lib-etcd\n",
            "@@kubeseed:var-lib-etcd\n#dir\nmember\n",
        )
        .replace(
            "@@kubeseed:var-lib-kubeseed\n",
            "@@kubeseed:var-lib-kubeseed\n#dir\n",
        )
        .replace(
            "@@kubeseed:cluster-id\n",
            "@@kubeseed:cluster-id\nc-42\n",
        )
        .replace("@@kubeseed:ca-crt\n", &format!("@@kubeseed:ca-crt\n{pem}"));
    let s = parse_recorded(&text);
    assert_eq!(s.state.etc_kubernetes.as_ref().unwrap().len(), 2);
    assert!(s.state.etcd_member());
    assert_eq!(s.state.var_lib_kubeseed, Some(vec![]));
    assert_eq!(s.state.cluster_id.as_deref(), Some("c-42"));
    assert_eq!(s.state.ca_fingerprint.as_deref(), Some(expected.as_str()));
    assert_eq!(s.state.etcd_ca_fingerprint, None);

    let colons: String = expected.as_bytes()["sha256:".len()..]
        .chunks(2)
        .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(normalize_fingerprint(&format!("SHA256:{colons}")), expected);
    assert_eq!(normalize_fingerprint(&colons), expected);
}

// ------------------------------------------------------------- evaluation

#[test]
fn a_healthy_fresh_host_passes_everything() {
    let r = eval(healthy(), &Expectations::control_plane());
    assert!(r.is_ok(), "{}", r.table());
    assert!(r.warnings().is_empty(), "{}", r.table());
    assert_eq!(
        check(&r, "ip_forward").kubeseed.as_deref(),
        Some("sets net.ipv4.ip_forward=1 and keeps it in /etc/sysctl.d/")
    );
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "privileges",
            "init",
            "os",
            "arch",
            "cpus",
            "memory",
            "swap",
            "clock",
            "hostname",
            "machine-id",
            "product_uuid",
            "mac-addresses",
            "port 6443",
            "port 2379",
            "port 2380",
            "port 10250",
            "port 10257",
            "port 10259",
            "overlay",
            "br_netfilter",
            "bridge-nf-call-iptables",
            "ip_forward",
            "cgroups",
            "cgroup-controllers",
            "kernel-tunables",
            "oom-score-adj",
            "programs",
            "optional-programs",
            "/etc/kubernetes",
            "/var/lib/etcd",
            "/var/lib/kubeseed",
        ]
    );
    for line in r.table().lines() {
        // Fix commands are never wrapped; everything else stays narrow.
        if !line.contains("| fix: ") {
            assert!(line.chars().count() <= 100, "{line}");
        }
    }
}

#[test]
fn runner_as_a_master() {
    let r = eval(parse_recorded(RUNNER), &Expectations::control_plane());
    println!("{}", r.table());
    assert!(!r.is_ok());
    let failed: Vec<&str> = r.failures().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(failed, ["init"]);
    assert_eq!(check(&r, "cgroups").status, Status::Warn);
    assert_eq!(check(&r, "oom-score-adj").status, Status::Warn);
    let opt = check(&r, "optional-programs");
    assert_eq!(opt.status, Status::Warn);
    assert_eq!(
        opt.fix.as_deref(),
        Some("apt-get install -y kmod conntrack socat")
    );
}

#[test]
fn a_password_sudo_fails_privileges_only() {
    let f = Facts {
        host: "10.0.0.1:22".into(),
        access: Access::SudoNeedsPassword {
            user: "admin".into(),
        },
        system: None,
    };
    let r = evaluate(&f, &Expectations::control_plane());
    assert_eq!(r.checks.len(), 1);
    let c = &r.checks[0];
    assert_eq!((c.name.as_str(), c.status), ("privileges", Status::Fail));
    assert_eq!(
        c.fix.as_deref(),
        Some(
            "as root on the host: echo 'admin ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/kubeseed \
             && chmod 0440 /etc/sudoers.d/kubeseed (or connect as root)"
        )
    );
    assert!(f.host_profile().is_none());

    for access in [
        Access::NotRoot { uid: 1000 },
        Access::SudoMissing {
            message: "sudo is not installed".into(),
        },
    ] {
        let r = evaluate(
            &Facts {
                access,
                ..f.clone()
            },
            &Expectations::worker(),
        );
        assert_eq!(r.checks.len(), 1);
        assert_eq!(r.checks[0].status, Status::Fail);
        assert!(r.checks[0].fix.is_some());
    }
    let r = evaluate(
        &Facts {
            access: Access::Root {
                sudo_user: Some("admin".into()),
            },
            system: Some(healthy()),
            ..f
        },
        &Expectations::worker(),
    );
    assert_eq!(
        check(&r, "privileges").detail,
        "user admin, root through passwordless sudo"
    );
}

#[test]
fn swap_fails_with_the_fix() {
    let mut s = healthy();
    s.swaps = vec![Swap {
        name: "/dev/zram0".into(),
        kind: "partition".into(),
        size_kib: 4_194_300,
    }];
    let r = eval(s, &Expectations::worker());
    let c = check(&r, "swap");
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.detail.contains("/dev/zram0 (partition, 4095 MiB)"),
        "{}",
        c.detail
    );
    let fix = c.fix.as_deref().unwrap();
    assert!(fix.starts_with("swapoff -a && sed -i"), "{fix}");
    assert!(fix.contains("/etc/fstab"));
    assert!(fix.contains("zram"));
}

fn listener(port: u16, name: &str, pid: u32) -> Listener {
    Listener {
        address: "0.0.0.0".into(),
        port,
        processes: vec![Process {
            name: name.into(),
            pid,
        }],
    }
}

fn this_cluster() -> ClusterIdentity {
    ClusterIdentity {
        cluster_id: "c-1".into(),
        ca_fingerprint: Some("sha256:aa".into()),
        etcd_ca_fingerprint: Some("sha256:bb".into()),
    }
}

fn state_of(id: &str, ca: &str) -> ExistingState {
    ExistingState {
        etc_kubernetes: Some(vec![
            "/etc/kubernetes/admin.conf".into(),
            "/etc/kubernetes/pki/ca.crt".into(),
        ]),
        var_lib_etcd: Some(vec!["member".into()]),
        var_lib_kubeseed: Some(vec!["/var/lib/kubeseed/cluster-id".into()]),
        cluster_id: Some(id.into()),
        ca_fingerprint: Some(ca.into()),
        etcd_ca_fingerprint: None,
    }
}

#[test]
fn a_port_held_by_a_foreign_process_fails_naming_it() {
    let mut s = healthy();
    s.listeners = vec![listener(6443, "nginx", 42)];
    let r = eval(s, &Expectations::control_plane());
    let c = check(&r, "port 6443");
    assert_eq!(c.status, Status::Fail);
    assert_eq!(c.detail, "in use: held by nginx (pid 42) on 0.0.0.0");
    assert_eq!(
        c.fix.as_deref(),
        Some(
            "free port 6443: systemctl disable --now nginx if that is its unit, or `kill` it; \
             `ss -tlnp 'sport = :6443'` shows the holder"
        )
    );
    assert_eq!(check(&r, "port 2379").status, Status::Pass);
    // A worker does not care about 6443.
    let mut s = healthy();
    s.listeners = vec![listener(6443, "nginx", 42)];
    assert!(eval(s, &Expectations::worker()).is_ok());
}

#[test]
fn an_invisible_holder_still_fails() {
    let mut s = healthy();
    s.listeners = vec![Listener {
        address: "[::]".into(),
        port: 10250,
        processes: vec![],
    }];
    let r = eval(s, &Expectations::worker());
    let c = check(&r, "port 10250");
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("a process preflight cannot see, on [::]"));
}

#[test]
fn this_clusters_own_components_and_state_mean_resuming() {
    let mut s = healthy();
    s.listeners = vec![
        listener(2379, "etcd", 10),
        listener(2380, "etcd", 10),
        listener(6443, "kube-apiserver", 11),
        // /proc/PID/comm keeps 15 characters.
        listener(10257, "kube-controller", 12),
        listener(10259, "kube-scheduler", 13),
        listener(10250, "kubelet", 14),
    ];
    s.state = state_of("c-1", "sha256:AA");
    let e = Expectations::control_plane().in_cluster(this_cluster());
    let r = eval(s.clone(), &e);
    assert!(r.is_ok(), "{}", r.table());
    let c = check(&r, "port 10257");
    assert_eq!(
        c.detail,
        "held by this cluster's kube-controller (pid 12) on 0.0.0.0: resuming"
    );
    assert!(
        check(&r, "/var/lib/etcd")
            .detail
            .ends_with("of this cluster (cluster-id c-1, pki/ca.crt sha256:aa): resuming"),
        "{}",
        check(&r, "/var/lib/etcd").detail
    );
    assert!(
        check(&r, "/etc/kubernetes")
            .detail
            .starts_with("2 files of this cluster")
    );

    // The same host seen by ANOTHER cluster: every one of them fails.
    let other = ClusterIdentity {
        cluster_id: "c-2".into(),
        ..this_cluster()
    };
    let r = eval(s.clone(), &Expectations::control_plane().in_cluster(other));
    println!("{}", r.table());
    for name in [
        "port 2379",
        "port 6443",
        "/etc/kubernetes",
        "/var/lib/etcd",
        "/var/lib/kubeseed",
    ] {
        let c = check(&r, name);
        assert_eq!(c.status, Status::Fail, "{name}");
        let fix = c.fix.as_deref().unwrap();
        assert!(
            fix.starts_with(
                "this host already belongs to another cluster (cluster-id c-1): reset it ("
            ),
            "{name}: {fix}"
        );
        assert!(fix.ends_with("or pick another host"), "{fix}");
    }
    // And by the seed of a new cluster.
    let r = eval(s, &Expectations::control_plane());
    assert_eq!(check(&r, "/var/lib/kubeseed").status, Status::Fail);
}

#[test]
fn etcd_data_of_unknown_origin_fails() {
    let mut s = healthy();
    s.state = ExistingState {
        var_lib_etcd: Some(vec!["member".into()]),
        ..Default::default()
    };
    s.listeners = vec![listener(2379, "etcd", 7)];
    let r = eval(s, &Expectations::control_plane().in_cluster(this_cluster()));
    let c = check(&r, "/var/lib/etcd");
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("of unknown origin"), "{}", c.detail);
    assert!(
        c.fix
            .as_deref()
            .unwrap()
            .contains("mv /var/lib/etcd /var/lib/etcd.old")
    );
    let p = check(&r, "port 2379");
    assert_eq!(p.status, Status::Fail);
    assert!(
        p.detail
            .starts_with("held by etcd (pid 7) on 0.0.0.0, of unknown origin")
    );
    assert_eq!(
        p.fix.as_deref(),
        Some("if it is a leftover, stop it (systemctl disable --now etcd) or pick another host")
    );
    // Empty directories are nothing.
    let mut s = healthy();
    s.state.var_lib_etcd = Some(vec![]);
    s.state.etc_kubernetes = Some(vec![]);
    assert!(eval(s, &Expectations::control_plane()).is_ok());
}

#[test]
fn clock_thresholds() {
    let at = |skew_s: f64| {
        let mut s = healthy();
        let skew = (skew_s * 1e9) as i64;
        s.clock = ClockSample {
            local_before_ns: 1_000_000_000_000,
            local_after_ns: 1_000_100_000_000,
            host_start_ns: Some(1_000_010_000_000 + skew),
            host_end_ns: Some(1_000_090_000_000 + skew),
            host_resolution_ns: 1,
        };
        eval(s, &Expectations::control_plane())
    };
    assert_eq!(check(&at(0.0), "clock").status, Status::Pass);
    assert_eq!(check(&at(1.9), "clock").status, Status::Pass);
    let w = at(-5.0);
    let c = check(&w, "clock");
    assert_eq!(c.status, Status::Warn);
    assert!(
        c.detail
            .starts_with("host is 5.00 s behind this workstation (±0.01 s)"),
        "{}",
        c.detail
    );
    assert!(
        c.fix
            .as_deref()
            .unwrap()
            .contains("timedatectl set-ntp true")
    );
    let f = at(31.0);
    let c = check(&f, "clock");
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.contains("certificates"), "{}", c.detail);
    // Unreadable.
    let mut s = healthy();
    s.clock.host_end_ns = None;
    assert_eq!(
        check(&eval(s, &Expectations::worker()), "clock").status,
        Status::Warn
    );
}

#[test]
fn cgroup_v1_warns_or_fails() {
    let mut s = healthy();
    s.cgroups = parse_recorded(RUNNER).cgroups;
    let r = eval(s.clone(), &Expectations::control_plane());
    let c = check(&r, "cgroups");
    assert_eq!(c.status, Status::Warn);
    assert_eq!(
        c.kubeseed.as_deref(),
        Some("configures the kubelet with failCgroupV1: false")
    );
    assert_eq!(check(&r, "cgroup-controllers").status, Status::Pass);
    let strict = Expectations {
        allow_cgroup_v1: false,
        ..Expectations::control_plane()
    };
    assert_eq!(
        check(&eval(s.clone(), &strict), "cgroups").status,
        Status::Fail
    );
    s.cgroups.controllers.retain(|c| c != "memory");
    let c = eval(s, &Expectations::control_plane());
    let c = check(&c, "cgroup-controllers");
    assert_eq!(c.status, Status::Fail);
    assert!(c.detail.starts_with("missing: memory"));
    assert!(c.fix.as_deref().unwrap().contains("cgroup_enable=memory"));
}

#[test]
fn kernel_tunables_read_only() {
    let ro = |value: &str| Sysctl {
        value: Some(value.into()),
        writable: false,
    };
    let mut s = healthy();
    s.container = Some("systemd-nspawn".into());
    s.sysctls.insert("vm.overcommit_memory".into(), ro("1"));
    s.sysctls.insert("kernel.panic".into(), ro("10"));
    s.sysctls.insert("kernel.panic_on_oops".into(), ro("1"));
    let r = eval(s.clone(), &Expectations::control_plane());
    let c = check(&r, "kernel-tunables");
    assert_eq!(c.status, Status::Pass);
    assert_eq!(
        c.kubeseed.as_deref(),
        Some("runs the kubelet with protectKernelDefaults: true")
    );
    s.sysctls.insert("kernel.panic".into(), ro("0"));
    let r = eval(s, &Expectations::control_plane());
    let c = check(&r, "kernel-tunables");
    assert_eq!(c.status, Status::Fail);
    assert_eq!(
        c.fix.as_deref(),
        Some(
            "sysctl -w kernel.panic=10 on the machine that runs this systemd-nspawn container \
             (and keep them in /etc/sysctl.d/)"
        )
    );
}

#[test]
fn forwarding_sysctls() {
    let mut s = healthy();
    s.sysctls.insert(
        "net.ipv4.ip_forward".into(),
        Sysctl {
            value: Some("0".into()),
            writable: false,
        },
    );
    let r = eval(s.clone(), &Expectations::worker());
    let c = check(&r, "ip_forward");
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.fix
            .as_deref()
            .unwrap()
            .starts_with("sysctl -w net.ipv4.ip_forward=1")
    );

    // br_netfilter not loaded but loadable: kubeseed loads it and sets the sysctl.
    s.sysctls.insert(
        "net.bridge.bridge-nf-call-iptables".into(),
        Sysctl {
            value: None,
            writable: false,
        },
    );
    s.br_netfilter = Module {
        loaded: false,
        builtin: false,
        available: true,
    };
    let r = eval(s.clone(), &Expectations::worker());
    assert_eq!(check(&r, "br_netfilter").status, Status::Pass);
    assert!(
        check(&r, "br_netfilter")
            .kubeseed
            .as_deref()
            .unwrap()
            .starts_with("loads it (modprobe br_netfilter)")
    );
    let c = check(&r, "bridge-nf-call-iptables");
    assert_eq!(c.status, Status::Pass);
    assert!(c.kubeseed.is_some());

    // In a container that may not load modules: both fail, fix outside.
    s.container = Some("systemd-nspawn".into());
    s.capabilities.effective &= !(1 << CAP_SYS_MODULE);
    let r = eval(s, &Expectations::worker());
    let m = check(&r, "br_netfilter");
    assert_eq!(m.status, Status::Fail);
    assert_eq!(
        m.fix.as_deref(),
        Some(
            "modprobe br_netfilter on the machine that runs this systemd-nspawn container \
             (and list it in /etc/modules-load.d/ there)"
        )
    );
    assert_eq!(check(&r, "bridge-nf-call-iptables").status, Status::Fail);
}

#[test]
fn a_module_without_a_file_fails() {
    let mut s = healthy();
    s.overlay = Module::default();
    let r = eval(s, &Expectations::worker());
    let c = check(&r, "overlay");
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.detail
            .contains("no module file for kernel 6.18.44-fc-v1045")
    );
}

#[test]
fn identities_and_peers() {
    let peer = PeerIdentity {
        name: "master1".into(),
        hostname: Some("VM".into()),
        machine_id: Some("3d1219c7c4c5404aaa1f6d2a48adfda4".into()),
        product_uuid: None,
        macs: vec!["02:FC:00:00:00:01".into()],
    };
    let e = Expectations {
        peers: vec![peer],
        ..Expectations::worker()
    };
    let r = eval(healthy(), &e);
    assert_eq!(check(&r, "hostname").status, Status::Fail);
    assert!(check(&r, "hostname").detail.contains("master1"));
    assert_eq!(check(&r, "machine-id").status, Status::Fail);
    assert_eq!(
        check(&r, "machine-id").fix.as_deref(),
        Some("rm -f /etc/machine-id && systemd-machine-id-setup (then reboot)")
    );
    assert_eq!(check(&r, "mac-addresses").status, Status::Warn);

    for (name, status) in [
        ("Host-1", Status::Warn),
        ("host_1", Status::Fail),
        ("localhost", Status::Fail),
        ("", Status::Fail),
        ("node-1.example.com", Status::Pass),
    ] {
        let mut s = healthy();
        s.hostname = name.into();
        assert_eq!(
            check(&eval(s, &Expectations::worker()), "hostname").status,
            status,
            "{name}"
        );
    }
    let mut s = healthy();
    s.machine_id = None;
    assert_eq!(
        check(&eval(s, &Expectations::worker()), "machine-id").status,
        Status::Warn
    );
}

#[test]
fn resources_arch_address_programs() {
    let mut s = healthy();
    s.cpus = Some(1);
    s.memory_kib = Some(1_000_000);
    let r = eval(s.clone(), &Expectations::control_plane());
    assert_eq!(check(&r, "cpus").status, Status::Warn);
    assert_eq!(check(&r, "memory").status, Status::Warn);
    assert!(r.is_ok(), "resources only warn");
    let r = eval(s, &Expectations::worker());
    assert_eq!(check(&r, "cpus").status, Status::Pass);
    assert_eq!(check(&r, "memory").status, Status::Pass);

    let e = Expectations {
        arch: Some("arm64".into()),
        advertise_address: Some("10.9.9.9".parse().unwrap()),
        ..Expectations::worker()
    };
    let mut s = healthy();
    s.programs.insert("iptables".into(), None);
    s.programs.insert("tar".into(), None);
    let r = eval(s, &e);
    assert_eq!(check(&r, "arch").status, Status::Fail);
    let a = check(&r, "address");
    assert_eq!(a.status, Status::Fail);
    assert!(a.detail.contains("192.0.2.2"));
    let p = check(&r, "programs");
    assert_eq!(p.status, Status::Fail);
    assert_eq!(p.detail, "missing: iptables, tar");
    assert_eq!(p.fix.as_deref(), Some("apt-get install -y iptables tar"));
}

#[test]
fn host_profiles() {
    let s = healthy();
    let p = s.host_profile();
    assert_eq!(p.cgroup_version, CgroupVersion::V2);
    assert_eq!(p.cgroup_driver, CgroupDriver::Systemd);
    assert!(p.kernel_tunables_writable && p.oom_score_adj_allowed);
    // v2 without systemd as init: cgroupfs.
    let mut no_systemd = healthy();
    no_systemd.init.systemd = false;
    assert_eq!(no_systemd.cgroup_driver(), CgroupDriver::Cgroupfs);
    // v1 with systemd (the lab): cgroupfs.
    let mut v1 = healthy();
    v1.cgroups.hierarchy = Some(CgroupHierarchy::V1);
    assert_eq!(v1.cgroup_driver(), CgroupDriver::Cgroupfs);
    assert_eq!(
        facts(s).host_profile().unwrap().cgroup_version,
        CgroupVersion::V2
    );
}

#[test]
fn facts_and_report_serialize() {
    let f = facts(parse_recorded(RUNNER));
    let json = serde_json::to_string(&f).unwrap();
    let back: Facts = serde_json::from_str(&json).unwrap();
    assert_eq!(back, f);
    let r = evaluate(&f, &Expectations::control_plane());
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["checks"][1]["name"], "init");
    assert_eq!(v["checks"][1]["status"], "fail");
}

// ----------------------------------------------------------------- gather

#[tokio::test]
async fn gather_is_one_round_trip_as_root() {
    let host = FakeHost::new("10.0.0.1:22");
    host.on("@@kubeseed:", output(0, RUNNER));
    let f = gather(&host).await.unwrap();
    assert_eq!(host.commands(), [SCRIPT.to_owned()]);
    assert_eq!(f.access, Access::Root { sudo_user: None });
    let s = f.system.unwrap();
    assert_eq!(s.hostname, "vm");
    // The recorded times are not now: the skew is whatever it is, but bounded.
    assert!(s.clock.skew_bounds().is_some());

    let host = FakeHost::new("h:22");
    host.on(
        "@@kubeseed:",
        output(
            0,
            &RUNNER.replace("@@kubeseed:user\nroot", "@@kubeseed:user\nadmin"),
        ),
    );
    let f = gather(&host).await.unwrap();
    assert_eq!(
        f.access,
        Access::Root {
            sudo_user: Some("admin".into())
        }
    );
    let host = FakeHost::new("h:22");
    host.on(
        "@@kubeseed:",
        output(
            0,
            &RUNNER.replace("@@kubeseed:uid\n0", "@@kubeseed:uid\n1000"),
        ),
    );
    let f = gather(&host).await.unwrap();
    assert_eq!(f.access, Access::NotRoot { uid: 1000 });
    assert!(f.system.is_none());
}

#[tokio::test]
async fn gather_errors_say_what_to_do() {
    let host = FakeHost::new("h:22");
    host.on(
        "@@kubeseed:",
        ExecOutput {
            status: ExitStatus::Code(2),
            stdout: vec![],
            stderr: b"sh: 1: Syntax error".to_vec(),
            truncated: false,
        },
    );
    let e = gather(&host).await.unwrap_err();
    assert_eq!(e.reason(), "PreflightScriptFailed");
    assert!(e.to_string().contains("Syntax error"), "{e}");
    assert!(e.to_string().contains("sh -x"), "{e}");

    let host = FakeHost::new("h:22");
    host.on("@@kubeseed:", output(0, "Welcome to host!\n"));
    let e = gather(&host).await.unwrap_err();
    assert_eq!(e.reason(), "PreflightUnexpectedOutput");
    assert!(
        e.to_string()
            .starts_with("h:22: the preflight output cannot be read")
    );
    assert!(!e.is_transient());
}

/// A host whose every exec fails with one SSH error.
#[derive(Debug)]
struct Refusing(fn() -> SshError);

type Fut<'a, T> = BoxFuture<'a, Result<T, SshError>>;

fn refuse<'a, T: Send + 'a>(e: SshError) -> Fut<'a, T> {
    Box::pin(async move { Err(e) })
}

impl Host for Refusing {
    fn name(&self) -> &str {
        "10.0.0.9:22"
    }
    fn exec<'a>(&'a self, _: &'a str, _: crate::ssh::ExecOptions) -> Fut<'a, ExecOutput> {
        refuse((self.0)())
    }
    fn write_file<'a>(
        &'a self,
        _: &'a [u8],
        _: &'a str,
        _: &'a FileSpec,
    ) -> Fut<'a, UploadOutcome> {
        refuse((self.0)())
    }
    fn upload<'a>(&'a self, _: &'a Path, _: &'a str, _: &'a FileSpec) -> Fut<'a, UploadOutcome> {
        refuse((self.0)())
    }
    fn upload_reader<'a>(
        &'a self,
        _: BoxReader<'a>,
        _: &'a str,
        _: &'a FileSpec,
    ) -> Fut<'a, UploadOutcome> {
        refuse((self.0)())
    }
    fn read_file<'a>(&'a self, _: &'a str, _: u64) -> Fut<'a, Option<Vec<u8>>> {
        refuse((self.0)())
    }
    fn remove_file<'a>(&'a self, _: &'a str) -> Fut<'a, bool> {
        refuse((self.0)())
    }
    fn remove_tree<'a>(&'a self, _: &'a str) -> Fut<'a, bool> {
        refuse((self.0)())
    }
}

#[tokio::test]
async fn sudo_refusals_become_facts_other_errors_stay_errors() {
    let host = Refusing(|| SshError::SudoNeedsPassword {
        host: "10.0.0.9:22".into(),
        user: "admin".into(),
    });
    let f = gather(&host).await.unwrap();
    assert_eq!(
        f.access,
        Access::SudoNeedsPassword {
            user: "admin".into()
        }
    );
    assert!(f.system.is_none());

    let host = Refusing(|| SshError::Remote {
        host: "10.0.0.9:22".into(),
        step: crate::ssh::Step::Exec,
        reason:
            "sudo is not installed, and user admin is not root: install sudo or connect as root"
                .into(),
    });
    let f = gather(&host).await.unwrap();
    assert!(matches!(f.access, Access::SudoMissing { .. }));

    let host = Refusing(|| SshError::Timeout {
        host: "10.0.0.9:22".into(),
        step: crate::ssh::Step::Exec,
        after: Duration::from_secs(60),
    });
    let e = gather(&host).await.unwrap_err();
    assert!(e.is_transient());
    assert_eq!(e.reason(), "Timeout");
    assert!(e.to_string().contains("10.0.0.9:22"), "{e}");
}

#[test]
fn a_writable_bind_over_proc_sys_net_is_seen_through_its_shadowed_peer() {
    // A lab host after `mount --bind /proc/sys/net /proc/sys/net; mount -o
    // remount,bind,rw /proc/sys/net` (seen in /proc/self/mountinfo there):
    // propagation adds a read-only twin (531) under /proc (623), hidden by
    // /proc/sys (624); the visible one is 530, read-write.
    let mountinfo = [
        "623 600 0:116 / /proc rw,nosuid,nodev,noexec,relatime shared:124 - proc proc rw",
        "624 623 0:116 /sys /proc/sys ro,nosuid,nodev,noexec,relatime shared:124 - proc proc rw",
        "530 624 0:116 /sys/net /proc/sys/net rw,nosuid,nodev,noexec,relatime shared:124 - proc proc rw",
        "531 623 0:116 /sys/net /proc/sys/net ro,nosuid,nodev,noexec,relatime shared:124 - proc proc rw",
    ];
    let lines = ["net/ipv4/ip_forward rw 0", "vm/overcommit_memory rw 1"];
    let s = parse::parse_sysctls(&lines, &mountinfo);
    assert!(s["net.ipv4.ip_forward"].writable);
    assert!(!s["vm.overcommit_memory"].writable);
}
