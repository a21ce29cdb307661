//! Preflight against THIS machine, through a real OpenSSH `sshd` started
//! by the test: the facts `gather` reports must agree with what the test
//! reads locally. The script is read-only, so this changes nothing here.
//!
//! Kind of test: real processes started by the test (sshd), on 127.0.0.1
//! only. Needs root (sshd switches users; test accounts are created with
//! useradd) and Debian's `openssh-server` and `sudo` packages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use kubeseed_provision::cluster::CgroupVersion;
use kubeseed_provision::preflight::{
    self, Access, CgroupHierarchy, Expectations, Facts, SCRIPT, Status, SystemFacts,
};
use kubeseed_provision::ssh::*;
use kubeseed_testenv::sshd::{Sshd, SudoRule, ensure_user};

const SUDO_USER: &str = "kubeseed-test-sudo";
const PASSWORD_USER: &str = "kubeseed-test-pw";

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

fn target(sshd: &Sshd, user: &str) -> SshTarget {
    SshTarget::new(
        "127.0.0.1",
        user,
        Auth::key_file(sshd.client_key()),
        HostKeyPolicy::Pinned(HostKey::parse(&sshd.host_public_key().unwrap()).unwrap()),
    )
    .with_port(sshd.port())
}

async fn connect(sshd: &Sshd, user: &str) -> Session {
    let mut limits = Limits::default();
    limits.connect_attempts = 2;
    limits.backoff_initial = Duration::from_millis(50);
    Session::connect(&target(sshd, user), &limits)
        .await
        .unwrap()
        .0
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// What this machine looks like, read directly by the test.
fn local_cgroup_hierarchy() -> Option<CgroupHierarchy> {
    let mounts = read("/proc/self/mounts");
    let mut v1 = false;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match (f.get(1), f.get(2)) {
            (Some(&"/sys/fs/cgroup"), Some(&"cgroup2")) => return Some(CgroupHierarchy::V2),
            (_, Some(&"cgroup")) => v1 = true,
            _ => {}
        }
    }
    v1.then_some(CgroupHierarchy::V1)
}

fn local_status_hex(key: &str) -> u64 {
    read("/proc/self/status")
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
        .unwrap()
}

fn assert_matches_this_machine(sys: &SystemFacts) {
    assert_eq!(sys.hostname, read("/proc/sys/kernel/hostname").trim());
    let swaps = read("/proc/swaps").lines().skip(1).count();
    assert_eq!(sys.swaps.len(), swaps);
    let machine_id = read("/etc/machine-id");
    let machine_id = machine_id.trim();
    assert_eq!(
        sys.machine_id.as_deref(),
        (!machine_id.is_empty()).then_some(machine_id)
    );
    assert_eq!(sys.init.systemd, Path::new("/run/systemd/system").is_dir());
    assert_eq!(sys.init.pid1.as_deref(), Some(read("/proc/1/comm").trim()));
    assert_eq!(sys.cgroups.hierarchy, local_cgroup_hierarchy());
    assert_eq!(sys.capabilities.bounding, local_status_hex("CapBnd:"));
    assert_eq!(
        sys.cpus,
        Some(std::thread::available_parallelism().unwrap().get() as u32)
    );
    let mem = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok());
    assert_eq!(sys.memory_kib, mem);
    assert_eq!(
        sys.sysctl("net.ipv4.ip_forward").unwrap().value.as_deref(),
        Some(read("/proc/sys/net/ipv4/ip_forward").trim())
    );
    // Multi-digit sysctls arrive whole.
    for (key, path) in [
        (
            "kernel.keys.root_maxbytes",
            "/proc/sys/kernel/keys/root_maxbytes",
        ),
        ("kernel.pid_max_unused", "/nonexistent"),
    ] {
        let local = read(path);
        let local = local.trim();
        let remote = sys.sysctl(key).and_then(|s| s.value.as_deref());
        assert_eq!(remote, (!local.is_empty()).then_some(local), "{key}");
    }
    let os_id = read("/etc/os-release").lines().find_map(|l| {
        l.strip_prefix("ID=")
            .map(|v| v.trim_matches('"').to_owned())
    });
    assert_eq!(sys.os.id, os_id);
    assert_eq!(
        sys.state.etc_kubernetes.is_some(),
        Path::new("/etc/kubernetes").is_dir()
    );
    assert_eq!(
        sys.state.var_lib_etcd.is_some(),
        Path::new("/var/lib/etcd").is_dir()
    );
    // Same machine, same clock: the skew interval holds 0 exactly.
    let (lo, hi) = sys.clock.skew_bounds().unwrap();
    assert!(lo <= 0.0 && hi >= 0.0, "{lo} .. {hi}");
    assert!(hi - lo < 10.0, "{lo} .. {hi}");
}

fn listener_pids(sys: &SystemFacts, port: u16) -> BTreeSet<(u32, String)> {
    sys.listeners
        .iter()
        .filter(|l| l.port == port)
        .flat_map(|l| l.processes.iter().map(|p| (p.pid, p.name.clone())))
        .collect()
}

#[tokio::test]
async fn gather_on_this_machine_as_root() {
    init_tracing();
    let sshd = Sshd::start().unwrap();
    let s = connect(&sshd, "root").await;
    let started = Instant::now();
    let facts = preflight::gather(&s).await.unwrap();
    let took = started.elapsed();
    assert_eq!(facts.access, Access::Root { sudo_user: None });
    assert!(facts.host.starts_with("127.0.0.1:"));
    let sys = facts.system.as_ref().unwrap();
    assert_matches_this_machine(sys);
    // The fixture's own sshd holds its port.
    let holders = listener_pids(sys, sshd.port());
    assert!(
        holders.iter().any(|(_, name)| name == "sshd"),
        "port {}: {holders:?}",
        sshd.port()
    );
    let profile = facts.host_profile().unwrap();
    assert_eq!(
        profile.cgroup_version,
        match local_cgroup_hierarchy() {
            Some(CgroupHierarchy::V1) => CgroupVersion::V1,
            _ => CgroupVersion::V2,
        }
    );

    let report = preflight::evaluate(&facts, &Expectations::control_plane());
    println!("gather took {took:?}\n{report}");
    assert_eq!(report.check("privileges").unwrap().status, Status::Pass);
    assert_eq!(
        report.check("swap").unwrap().status == Status::Pass,
        sys.swaps.is_empty()
    );
    // The JSON form carries every check.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(
        json["checks"].as_array().unwrap().len(),
        report.checks.len()
    );
    let back: Facts = serde_json::from_str(&serde_json::to_string(&facts).unwrap()).unwrap();
    assert_eq!(back, facts);
}

#[tokio::test]
async fn the_proc_fallback_finds_the_same_listeners_as_ss() {
    init_tracing();
    let sshd = Sshd::start().unwrap();
    let s = connect(&sshd, "root").await;
    let without_ss = SCRIPT.replace("ss -tlnp", "kubeseed-no-such-ss -tlnp");
    assert_ne!(without_ss, SCRIPT);
    let mut runs = Vec::new();
    for script in [SCRIPT, without_ss.as_str()] {
        let out = s.run(script, ExecOptions::sudo()).await.unwrap();
        runs.push(SystemFacts::parse(&out.stdout_text(), 0, i64::MAX).unwrap());
    }
    let (ss, proc) = (&runs[0], &runs[1]);
    let ports = |f: &SystemFacts| f.listeners.iter().map(|l| l.port).collect::<BTreeSet<_>>();
    assert!(ports(proc).contains(&sshd.port()));
    // Other tests' sshds come and go between the two runs: compare the
    // fixture's port, and the set of ports only loosely.
    assert_eq!(
        listener_pids(ss, sshd.port()),
        listener_pids(proc, sshd.port())
    );
    assert!(!ports(ss).is_empty());
}

#[tokio::test]
async fn non_root_user_with_passwordless_sudo() {
    init_tracing();
    // Removed again when the last test using it drops its guard.
    let _user = ensure_user(SUDO_USER, SudoRule::Passwordless).unwrap();
    let sshd = Sshd::start().unwrap();
    let s = connect(&sshd, SUDO_USER).await;
    let facts = preflight::gather(&s).await.unwrap();
    assert_eq!(
        facts.access,
        Access::Root {
            sudo_user: Some(SUDO_USER.into())
        }
    );
    let sys = facts.system.as_ref().unwrap();
    assert_matches_this_machine(sys);
    let report = preflight::evaluate(&facts, &Expectations::worker());
    assert_eq!(
        report.check("privileges").unwrap().detail,
        format!("user {SUDO_USER}, root through passwordless sudo")
    );
}

#[tokio::test]
async fn non_root_user_whose_sudo_needs_a_password_fails_the_check() {
    init_tracing();
    // Removed again when the last test using it drops its guard.
    let _user = ensure_user(PASSWORD_USER, SudoRule::PasswordRequired).unwrap();
    let sshd = Sshd::start().unwrap();
    let s = connect(&sshd, PASSWORD_USER).await;
    let started = Instant::now();
    let facts = preflight::gather(&s).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "sudo -n must not wait"
    );
    assert_eq!(
        facts.access,
        Access::SudoNeedsPassword {
            user: PASSWORD_USER.into()
        }
    );
    assert!(facts.system.is_none());
    assert!(facts.host_profile().is_none());
    let report = preflight::evaluate(&facts, &Expectations::control_plane());
    println!("{report}");
    assert!(!report.is_ok());
    let failed = report.failures();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].name, "privileges");
    let fix = failed[0].fix.as_deref().unwrap();
    assert!(
        fix.contains(&format!("'{PASSWORD_USER} ALL=(ALL) NOPASSWD: ALL'")),
        "{fix}"
    );
    assert!(fix.contains("/etc/sudoers.d/"), "{fix}");
}
