//! The lab's own end-to-end test (kind: whole-system, real hosts).
//!
//! Needs root, systemd-nspawn and debootstrap (the base root file system is
//! built on first use and cached). One lab of three hosts serves every
//! scenario, in sequence, to save boot time; the `Lab` is brought down at the
//! end, and by its `Drop` if a scenario fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step must stop it

use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kubeseed_e2e::{Lab, LabConfig, ProcessId, forward_rule, rootfs, ssh_banner};

/// Distinct from the `lab` command's default so a lab someone is trying
/// kubeseed in does not block the test (override: KUBESEED_LAB_TEST_SUBNET).
const TEST_SUBNET: &str = "10.213.9.0/24";
const TEST_NAME: &str = "labtest";

#[derive(Debug, Default, serde::Serialize)]
struct Figures {
    base_build_seconds: Option<f64>,
    base_bytes: Option<u64>,
    up_3_seconds: f64,
    vip_failover_poweroff_seconds: f64,
    vip_failover_crash_seconds: f64,
    host_restart_seconds: f64,
    down_seconds: f64,
}

#[test]
fn lab_of_three_real_hosts() {
    if let Err(error) = kubeseed_e2e::prereq::check(!rootfs::is_cached()) {
        panic!("{error}");
    }
    let subnet = std::env::var("KUBESEED_LAB_TEST_SUBNET").unwrap_or_else(|_| TEST_SUBNET.into());
    let config = LabConfig {
        name: TEST_NAME.into(),
        hosts: 3,
        subnet: subnet.parse().unwrap(),
    };
    remove_stale_test_lab();
    restore_a_forward_policy_a_killed_run_left();
    let started = Instant::now();
    let mut lab = Lab::up(config).unwrap_or_else(|error| {
        panic!("{error}\n(the test's subnet comes from KUBESEED_LAB_TEST_SUBNET, default {TEST_SUBNET})")
    });
    let report = lab.up_report().unwrap();
    let mut figures = Figures {
        base_build_seconds: report.base_build.map(|b| b.seconds),
        base_bytes: report.base_build.map(|b| b.bytes),
        up_3_seconds: report.seconds,
        ..Figures::default()
    };
    eprintln!(
        "up(3) took {:.1} s ({:.1} s with the base)",
        report.seconds,
        started.elapsed().as_secs_f64()
    );

    hosts_are_distinct(&lab);
    ssh_works_to_each_host(&lab);
    containerd_runs_a_container(&lab);
    links_can_be_cut_and_restored(&lab);
    // The VIP scenario runs under a FORWARD policy of DROP, as on a runner
    // with Docker: VRRP between hosts crosses the runner's FORWARD chain.
    let (poweroff, crash, restart) = {
        let _drop = bridged_traffic_passes_a_forward_drop_policy(&lab);
        keepalived_moves_the_vip(&mut lab)
    };
    figures.vip_failover_poweroff_seconds = poweroff;
    figures.vip_failover_crash_seconds = crash;
    figures.host_restart_seconds = restart;

    let footprint = lab.footprint();
    assert!(!footprint.processes.is_empty());
    let down = lab.down().unwrap();
    assert!(down.left.is_empty(), "down left: {:?}", down.left);
    let left = footprint.leftovers();
    assert!(left.is_empty(), "down left behind: {left:?}");
    // This process is the hosts' parent, so not even a zombie may remain.
    for process in &footprint.processes {
        assert!(
            !process.exists(),
            "process {} still in the process table",
            process.pid
        );
    }
    figures.down_seconds = down.seconds;

    eprintln!("\nlab figures");
    eprintln!("{:<34} {:>8}", "measure", "seconds");
    if let Some(seconds) = figures.base_build_seconds {
        eprintln!("{:<34} {seconds:>8.1}", "base rootfs build (cold)");
    }
    eprintln!("{:<34} {:>8.1}", "up(3)", figures.up_3_seconds);
    eprintln!(
        "{:<34} {:>8.1}",
        "VIP failover, clean power-off", figures.vip_failover_poweroff_seconds
    );
    eprintln!(
        "{:<34} {:>8.1}",
        "VIP failover, crash", figures.vip_failover_crash_seconds
    );
    eprintln!(
        "{:<34} {:>8.1}",
        "host start after power-off", figures.host_restart_seconds
    );
    eprintln!("{:<34} {:>8.1}", "down", figures.down_seconds);
    eprintln!("LAB_FIGURES {}", serde_json::to_string(&figures).unwrap());
}

/// A previous run killed before its `Drop` ran leaves its lab up; the name
/// is reserved to this test, so remove that lab, unless its owner still runs.
fn remove_stale_test_lab() {
    let Ok(stale) = Lab::attach(TEST_NAME) else {
        return;
    };
    if let Some(owner) = stale.owner().filter(ProcessId::is_running) {
        panic!(
            "lab {TEST_NAME} is in use by process {}; wait for it to finish",
            owner.pid
        );
    }
    let report = stale.down().unwrap();
    assert!(report.left.is_empty(), "stale lab left: {:?}", report.left);
}

/// Where the runner's FORWARD policy is kept while this test has set DROP,
/// so that a run killed before it could put the policy back has it put back
/// by its watchdog, or else by the next run.
const SAVED_POLICY: &str = "/run/kubeseed-lab-test/forward-policy";

fn forward_policy() -> String {
    let out = Command::new("iptables")
        .args(["-w", "-S", "FORWARD"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("-P FORWARD "))
        .unwrap_or_else(|| panic!("no FORWARD policy in: {text}"))
        .trim()
        .to_owned()
}

fn set_forward_policy(policy: &str) {
    assert!(
        matches!(policy, "ACCEPT" | "DROP"),
        "refusing to set the FORWARD policy to {policy:?}"
    );
    let status = Command::new("iptables")
        .args(["-w", "-P", "FORWARD", policy])
        .status()
        .unwrap();
    assert!(status.success(), "iptables -P FORWARD {policy} failed");
}

/// A policy saved by a run that was killed with DROP in place (and whose
/// watchdog did not get to it either) is put back first.
fn restore_a_forward_policy_a_killed_run_left() {
    if let Ok(saved) = std::fs::read_to_string(SAVED_POLICY) {
        eprintln!(
            "putting back the FORWARD policy {} a killed run left",
            saved.trim()
        );
        set_forward_policy(saved.trim());
        std::fs::remove_file(SAVED_POLICY).unwrap();
    }
}

/// The runner's FORWARD policy set to DROP, as Docker sets it, for as long
/// as this guard lives. The policy found before is put back on drop (also
/// when the test panics), and by a watchdog process when this test process
/// is killed: a shell in its own process group, so Ctrl-C does not reach
/// it, that waits for this process to end.
struct ForwardDrop {
    saved: String,
    watchdog: Child,
}

impl ForwardDrop {
    fn set() -> ForwardDrop {
        let saved = forward_policy();
        std::fs::create_dir_all(Path::new(SAVED_POLICY).parent().unwrap()).unwrap();
        std::fs::write(SAVED_POLICY, &saved).unwrap();
        let script = format!(
            "trap '' INT TERM HUP; while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; \
             iptables -w -P FORWARD {saved} && rm -f {SAVED_POLICY}",
            pid = std::process::id()
        );
        let watchdog = Command::new("/bin/sh")
            .args(["-c", &script])
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        set_forward_policy("DROP");
        eprintln!(
            "FORWARD policy DROP (was {saved}); watchdog {}",
            watchdog.id()
        );
        ForwardDrop { saved, watchdog }
    }
}

impl Drop for ForwardDrop {
    fn drop(&mut self) {
        set_forward_policy(&self.saved);
        let _ = std::fs::remove_file(SAVED_POLICY);
        // Ours, by PID.
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        eprintln!("FORWARD policy back to {}", self.saved);
    }
}

/// Whether host `from` can open a TCP connection to `to`'s sshd across the bridge.
fn tcp_across_the_bridge(lab: &Lab, from: &str, to: &str) -> bool {
    let address = lab.host(to).unwrap().address;
    lab.exec(
        from,
        &format!("socat -u OPEN:/dev/null TCP:{address}:22,connect-timeout=2"),
    )
    .unwrap()
    .status
    .success()
}

fn iptables_rule(op: &str, bridge: &str) {
    let mut cmd = Command::new("iptables");
    cmd.args(["-w", op, "FORWARD"]);
    if op == "-I" {
        cmd.arg("1");
    }
    let status = cmd.args(forward_rule(bridge)).status().unwrap();
    assert!(
        status.success(),
        "iptables {op} FORWARD (the lab's rule) failed"
    );
}

/// With the runner's FORWARD policy at DROP and bridged frames passing
/// iptables, traffic between two lab hosts still flows, because of the
/// lab's rule for its own bridge; without that rule it does not (which
/// proves the DROP policy really applies here). Returns the guard: the
/// policy stays DROP while the caller runs its scenario.
fn bridged_traffic_passes_a_forward_drop_policy(lab: &Lab) -> ForwardDrop {
    let nf =
        std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables").unwrap_or_default();
    assert_eq!(
        nf.trim(),
        "1",
        "bridged traffic must pass iptables on this runner (br_netfilter, \
         net.bridge.bridge-nf-call-iptables=1) for the FORWARD policy to matter"
    );
    let bridge = lab.bridge().unwrap().to_owned();
    let drop = ForwardDrop::set();
    assert!(
        tcp_across_the_bridge(lab, "host2", "host1"),
        "host2 cannot reach host1 across the bridge with the FORWARD policy at DROP"
    );
    iptables_rule("-D", &bridge);
    let blocked = !tcp_across_the_bridge(lab, "host2", "host1");
    iptables_rule("-I", &bridge);
    assert!(
        blocked,
        "without the lab's rule the DROP policy should have stopped host2 -> host1"
    );
    assert!(tcp_across_the_bridge(lab, "host3", "host1"));
    drop
}

/// `lab down` deletes what a state file lists: a file listing anything the
/// lab would not have made under its name is refused, and nothing is
/// touched. The bait is a bridge and a network namespace that no lab
/// derives, named in a state file of a made-up lab.
#[test]
fn down_refuses_what_the_lab_did_not_make() {
    const NAME: &str = "labbait";
    const LINK: &str = "ksbait0";
    const NETNS: &str = "kubeseed-bait";
    let run = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let _ = Command::new("ip").args(["link", "del", LINK]).output();
    let _ = Command::new("ip").args(["netns", "del", NETNS]).output();
    run(&["link", "add", LINK, "type", "bridge"]);
    run(&["netns", "add", NETNS]);
    let state = kubeseed_e2e::state_path(NAME);
    let lab_dir = kubeseed_e2e::data_root().join(NAME);
    let victim_dir = tempfile::tempdir().unwrap();
    std::fs::write(victim_dir.path().join(".kubeseed-lab"), "").unwrap();
    let host = |netns: &str, veth: &str| {
        serde_json::json!({"name": "host1", "index": 1, "address": "10.213.7.11",
            "mac": "02:6b:73:d5:07:0b", "machine_id": "0", "host_key": "",
            "netns": netns, "veth": veth, "mount": null, "cgroups": false, "nspawn": null})
    };
    let cases = [
        ("bridge", serde_json::json!({"bridge": LINK, "hosts": []})),
        (
            "veth",
            serde_json::json!({"hosts": [host(&kubeseed_e2e_netns(NAME), LINK)]}),
        ),
        (
            "netns",
            serde_json::json!({"hosts": [host(NETNS, "ks-labbait-1")]}),
        ),
        (
            "directory",
            serde_json::json!({"dir": victim_dir.path(), "hosts": []}),
        ),
    ];
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    for (what, fields) in cases {
        let mut doc = serde_json::json!({"name": NAME, "subnet": "10.213.7.0/24", "dir": lab_dir,
            "base": "/nonexistent", "bridge": null, "hosts": [], "handed_out": [], "owner": null});
        for (k, v) in fields.as_object().unwrap() {
            doc[k] = v.clone();
        }
        std::fs::write(&state, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_lab"))
            .args(["down", "--name", NAME])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "{what}: lab down accepted the state file"
        );
        assert!(said.contains("never makes"), "{what}: {said}");
        assert!(
            Path::new("/sys/class/net").join(LINK).exists(),
            "{what}: lab down deleted a link it did not make"
        );
        assert!(
            Path::new("/run/netns").join(NETNS).exists(),
            "{what}: lab down deleted a namespace it did not make"
        );
        assert!(
            victim_dir.path().exists(),
            "{what}: lab down deleted a directory"
        );
        assert!(state.exists(), "{what}: the refused state file must stay");
    }
    std::fs::remove_file(&state).unwrap();
    let _ = std::fs::remove_dir(state.parent().unwrap());
    run(&["link", "del", LINK]);
    run(&["netns", "del", NETNS]);
}

/// The namespace name the lab derives for host1 of lab `name`.
fn kubeseed_e2e_netns(name: &str) -> String {
    format!("kubeseed-{name}-host1")
}

fn hosts_are_distinct(lab: &Lab) {
    let hosts = lab.hosts();
    assert_eq!(hosts.len(), 3);
    let mut seen = Vec::new();
    for host in &hosts {
        let hostname = lab.exec_ok(&host.name, "hostname").unwrap();
        let machine_id = lab.exec_ok(&host.name, "cat /etc/machine-id").unwrap();
        let mac = lab
            .exec_ok(&host.name, "cat /sys/class/net/eth0/address")
            .unwrap();
        assert_eq!(hostname.trim(), host.name);
        assert_eq!(machine_id.trim(), host.machine_id);
        assert_eq!(mac.trim(), host.mac);
        seen.push((hostname, machine_id, mac, host.host_key.clone()));
    }
    for (i, a) in seen.iter().enumerate() {
        for b in &seen[i + 1..] {
            assert_ne!(a.0, b.0, "hostnames must differ");
            assert_ne!(a.1, b.1, "machine-ids must differ");
            assert_ne!(a.2, b.2, "MACs must differ");
            assert_ne!(a.3, b.3, "SSH host keys must differ");
        }
    }
}

fn ssh_works_to_each_host(lab: &Lab) {
    for host in lab.hosts() {
        // StrictHostKeyChecking=yes against the lab's known_hosts: this also
        // proves the host key the lab reports is the one sshd serves.
        let output = lab
            .ssh_command(&host.name)
            .unwrap()
            .arg("hostname; systemctl is-active ssh containerd")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "ssh to {}: {}",
            host.name,
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            [host.name.as_str(), "active", "active"]
        );
    }
}

fn containerd_runs_a_container(lab: &Lab) {
    let fs_type = lab
        .exec_ok("host1", "stat -f -c %T /var/lib/containerd")
        .unwrap();
    assert_ne!(
        fs_type.trim(),
        "overlayfs",
        "containerd state must not be on overlayfs"
    );
    let script = format!(
        "ctr images import {archive} >/dev/null && \
         ctr run --rm {image} lab-test /bin/sh -c 'echo hello from a container on $(hostname)'",
        archive = rootfs::BUSYBOX_IMAGE_ARCHIVE,
        image = rootfs::BUSYBOX_IMAGE,
    );
    let output = lab.exec_ok("host1", &script).unwrap();
    assert_eq!(output.trim(), "hello from a container on host1");
}

fn links_can_be_cut_and_restored(lab: &Lab) {
    let host = lab.host("host3").unwrap();
    assert!(ssh_banner(host.address, 22));
    lab.cut_link("host3").unwrap();
    assert!(!lab.link_is_up("host3").unwrap());
    assert!(
        !ssh_banner(host.address, 22),
        "host3 still answers with its link cut"
    );
    lab.restore_link("host3").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ssh_banner(host.address, 22) {
        assert!(
            Instant::now() < deadline,
            "host3 unreachable after its link was restored"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Returns the failover times (clean power-off, crash) and the restart time.
fn keepalived_moves_the_vip(lab: &mut Lab) -> (f64, f64, f64) {
    let vip = lab.free_address().unwrap();
    assert!(lab.subnet().contains(vip));
    assert!(lab.hosts().iter().all(|h| h.address != vip));
    for (host, priority) in [("host1", 150), ("host2", 100)] {
        configure_keepalived(lab, host, priority, vip);
    }
    wait_for_vip(lab, "host1", vip, Duration::from_secs(30));
    assert!(!holds(lab, "host2", vip));

    // Clean power-off of the VRRP master: watch host2 from another thread.
    let watcher = lab.executor("host2").unwrap();
    let started = Instant::now();
    let watch = std::thread::spawn(move || {
        let needle = format!(" {vip}/");
        loop {
            let out = watcher.exec("ip -4 -o addr show dev eth0").unwrap();
            if out.stdout_text().contains(&needle) {
                return started.elapsed().as_secs_f64();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "VIP never reached host2"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    lab.power_off("host1").unwrap();
    let poweroff = watch.join().unwrap();
    assert!(!lab.is_running("host1"));
    eprintln!("VIP {vip} moved to host2 {poweroff:.2} s after host1 was told to power off");

    // host1 comes back (disk kept), takes the VIP back by priority; then crashes.
    let restart_started = Instant::now();
    lab.start("host1").unwrap();
    let restart = restart_started.elapsed().as_secs_f64();
    assert_eq!(lab.exec_ok("host1", "hostname").unwrap().trim(), "host1");
    wait_for_vip(lab, "host1", vip, Duration::from_secs(60));
    wait_until_released(lab, "host2", vip);
    let started = Instant::now();
    lab.crash("host1").unwrap();
    wait_for_vip(lab, "host2", vip, Duration::from_secs(30));
    let crash = started.elapsed().as_secs_f64();
    eprintln!("VIP {vip} moved to host2 {crash:.2} s after host1 crashed");
    assert!(!lab.is_running("host1"));
    lab.start("host1").unwrap();
    (poweroff, crash, restart)
}

fn configure_keepalived(lab: &Lab, host: &str, priority: u32, vip: Ipv4Addr) {
    let config = format!(
        "global_defs {{\n  router_id {host}\n}}\n\
         vrrp_instance lab {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  \
         priority {priority}\n  advert_int 1\n  virtual_ipaddress {{\n    {vip}/24 dev eth0\n  }}\n}}\n"
    );
    lab.exec_ok(
        host,
        &format!("cat > /etc/keepalived/keepalived.conf <<'EOF'\n{config}EOF\nsystemctl restart keepalived"),
    )
    .unwrap();
}

fn holds(lab: &Lab, host: &str, vip: Ipv4Addr) -> bool {
    lab.exec(host, "ip -4 -o addr show dev eth0")
        .map(|out| out.stdout_text().contains(&format!(" {vip}/")))
        .unwrap_or(false)
}

fn wait_for_vip(lab: &Lab, host: &str, vip: Ipv4Addr, limit: Duration) {
    let deadline = Instant::now() + limit;
    while !holds(lab, host, vip) {
        assert!(Instant::now() < deadline, "{host} never took VIP {vip}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_until_released(lab: &Lab, host: &str, vip: Ipv4Addr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while holds(lab, host, vip) {
        assert!(Instant::now() < deadline, "{host} kept VIP {vip}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
