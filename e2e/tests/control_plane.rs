//! The control plane grown and shrunk by the operator running in the
//! cluster (kind: whole-system, real hosts): `kubectl apply` of
//! `ControlPlaneMember`s after `bootstrap seed`.
//!
//! 1. host1 seeded; host2 and host3 applied with first-seen host keys, the
//!    operator's leader SIGKILLed mid-join each time (host2: while the bundle
//!    is staged; host3: once its etcd learner exists) → three voting etcd
//!    members and no other, three Ready control-plane Nodes, each member's
//!    host key recorded in its status;
//! 2. a second object naming host2 gets `Conflict` and changes nothing;
//! 3. an `ApiLoadBalancer` (HAProxy + keepalived on host4 and host5, a VIP)
//!    → Ready with the three masters as backends and host4 holding the VIP;
//!    it publishes the VIP, so every master's serving certificate names it,
//!    the apiservers restart one at a time (their start times, read from
//!    systemd, apart; readiness polled every 200 ms as a figure);
//!    `bootstrap use-endpoint` points the workstation's kubeconfig at the
//!    VIP; two `WorkerNode`s (host6, host7) join with their kubelets on the
//!    VIP, and a Deployment of the locally built netcheck image spreads
//!    across them (a pod on one reaches a pod on the other and the Service
//!    by name, checked again after master1's power-off and the cable cut);
//!    with a client polling `/readyz` through the VIP every 100 ms: the
//!    VIP's holder powered off, then crashed → host5 takes over (timed
//!    against keepalived's master-down interval, failed requests counted),
//!    host4 back each time; master1 powered off → still served; the
//!    implementation switched to nginx, and a crash failover again; the
//!    operator's leader SIGKILLed (a leader reconciles again) and host3's
//!    cable cut for 45 s and plugged back in (host3 a Ready master and a
//!    backend again), failed requests counted for each;
//! 4. the leader's node crashes → the other replica takes the Lease and
//!    reconciles; the node comes back;
//! 5. with host3's etcd stopped, deleting host2 is refused (`QuorumAtRisk`)
//!    and the object stays; once etcd is back the deletion proceeds: two
//!    members, its Node gone, its host clean (no units, etcd data kept as a
//!    backup), dropped from the balancer's backends before its apiserver
//!    stopped; applied again → three again, and a backend again (Ready to
//!    serving timed);
//! 6. an etcd member added by hand is reported on the `EtcdMember`s
//!    (`UnaccountedEtcdMember`) and left alone;
//! 7. deleting the member whose node runs the operator's leader: the leader
//!    hands over (evicts itself) and a replica elsewhere completes the leave;
//! 8. host7's `WorkerNode` deleted: drained, its pods on host6, its Node
//!    gone and the host clean;
//! 9. the end state is consistent: etcd's members are the `EtcdMember`s, the
//!    Nodes the members, the balancer's backends the Ready masters, and every
//!    Secret in etcd is ciphertext.
//!
//! Prints the apply-to-Ready time of each join (`CONTROL_PLANE_FIGURES`),
//! and the balancer's figures as a table with JSON beside the benchmarks'
//! (`target/bench/load_balancer.json`): failover time and its ratio to the
//! master-down interval, failed requests per failover, Ready to serving,
//! and VIP moves nobody caused during the quiet stretches of the run.
//!
//! Needs root, the toolchain, a bundle (`KUBESEED_BUNDLE`) and the
//! `bootstrap` binary (`e2e/test.sh` provides all three).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step must stop it

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::balancer::{
    Poller, balancer_yaml, became_master, now_epoch, outage_after, spurious_moves,
};
use common::cluster::{
    apply, assert_consistent, condition, etcd_member_lines, etcd_members, eventually_or_dump,
    exists, jsonpath, local_etcdctl, member_yaml, wait_ready, worker_yaml,
};
use common::workload::{deploy_netcheck, netcheck_image, serves_across, worker_left};
use common::{bootstrap_binary, eventually, kubectl_ok, seeded_lab};
use kubeseed_e2e::Lab;

const NAME: &str = "cptest";
const SUBNET: &str = "10.213.12.0/24";
/// The load balancer's VIP (step 3).
const VIP: &str = "10.213.12.100";
const OPERATOR_NS: &str = "kubeseed-system";

/// The leader's Pod and the Node it runs on.
fn leader(state: &Path) -> (String, String) {
    let read = |args: &[&str]| {
        let out = common::kubectl(state)
            .args(["-n", OPERATOR_NS, "get"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let pod = read(&[
        "lease",
        "kubeseed-operator",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    let node = if pod.is_empty() {
        String::new()
    } else {
        read(&["pod", &pod, "-o", "jsonpath={.spec.nodeName}"])
    };
    (pod, node)
}

/// SIGKILLs the leader's process on its host (found by its name in /proc
/// on that host, killed by PID): no graceful step-down, no Lease release.
fn kill_leader(lab: &Lab, state: &Path) -> String {
    let (pod, node) = leader(state);
    assert!(!node.is_empty(), "no leader to kill ({pod:?})");
    let pid = lab.kill_process(&node, "kubeseed-operat").unwrap();
    eprintln!("killed the operator leader {pod} (pid {pid} on {node})");
    node
}

/// Moves leadership off `host` by deleting the leader's Pod (it releases
/// the Lease on its way out).
fn lead_elsewhere_than(state: &Path, host: &str) {
    let (pod, node) = leader(state);
    if node != host {
        return;
    }
    kubectl_ok(
        state,
        &["-n", OPERATOR_NS, "delete", "pod", &pod, "--wait=true"],
    );
    eventually("a leader elsewhere", Duration::from_secs(120), || {
        let (p, n) = leader(state);
        p != pod && !n.is_empty() && n != host
    });
}

/// Each apiserver's readiness, polled every 200 ms from the runner until
/// stopped: the most that were not ready at the same moment, and each
/// host's count of not-ready polls.
struct ReadinessWatch {
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<Vec<(Instant, bool)>>>,
}

impl ReadinessWatch {
    fn start(state: &Path, addresses: &[String]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let handles = addresses
            .iter()
            .map(|address| {
                let stop = stop.clone();
                let state = state.to_path_buf();
                let server = format!("https://{address}:6443");
                std::thread::spawn(move || {
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let out = common::kubectl(&state)
                            .args(["--server", &server, "--request-timeout=5s"])
                            .args(["get", "--raw", "/readyz"])
                            .output()
                            .unwrap();
                        // Down is what the apiserver says (refused, or
                        // /readyz failing); a poll that only timed out on a
                        // loaded runner says nothing either way.
                        let err = String::from_utf8_lossy(&out.stderr);
                        let unknown = !out.status.success()
                            && (err.contains("Timeout") || err.contains("deadline exceeded"));
                        if !unknown {
                            samples.push((Instant::now(), out.status.success()));
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    samples
                })
            })
            .collect();
        ReadinessWatch { stop, handles }
    }

    /// (most not ready at once, not-ready polls per host)
    fn finish(self) -> (usize, Vec<usize>) {
        self.stop.store(true, Ordering::Relaxed);
        let all: Vec<Vec<(Instant, bool)>> = self
            .handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let down_counts = all
            .iter()
            .map(|s| s.iter().filter(|(_, ok)| !ok).count())
            .collect();
        // A host is down from a failed poll until its next good one.
        let intervals: Vec<Vec<(Instant, Instant)>> = all
            .iter()
            .map(|samples| {
                let mut out = Vec::new();
                let mut from = None;
                for (t, ok) in samples {
                    match (ok, from) {
                        (false, None) => from = Some(*t),
                        (true, Some(f)) => {
                            out.push((f, *t));
                            from = None;
                        }
                        _ => {}
                    }
                }
                if let (Some(f), Some((last, _))) = (from, samples.last()) {
                    out.push((f, *last));
                }
                out
            })
            .collect();
        let mut most = 0;
        for (i, host) in intervals.iter().enumerate() {
            for (from, to) in host {
                let overlapping = intervals
                    .iter()
                    .enumerate()
                    .filter(|(j, other)| *j != i && other.iter().any(|(f, t)| f < to && from < t))
                    .count();
                most = most.max(1 + overlapping);
            }
        }
        (most, down_counts)
    }
}

/// Some replica leads and reconciles: a second object on host1's address
/// (`host1_address`) gets `Conflict`, and is deleted again.
fn a_leader_reconciles(lab: &Lab, state: &Path, host1_address: &str) {
    apply(state, &member_yaml("host1-again", host1_address));
    eventually_or_dump(
        lab,
        state,
        "a leader reconciles",
        Duration::from_secs(180),
        || condition(state, "controlplanemember/host1-again", "Ready").1 == "Conflict",
    );
    kubectl_ok(
        state,
        &["delete", "controlplanemember", "host1-again", "--wait=true"],
    );
}

fn join(lab: &Lab, state: &Path, host: &str) -> f64 {
    join_killing(lab, state, host, None)
}

/// Applies the member; with `kill_when`, SIGKILLs the operator's leader
/// the first time that check holds (a step of the join on the host) and
/// asserts it held before the member was Ready.
fn join_killing(
    lab: &Lab,
    state: &Path,
    host: &str,
    mut kill_when: Option<(&str, &dyn Fn() -> bool)>,
) -> f64 {
    let address = lab.host(host).unwrap().address.to_string();
    let started = Instant::now();
    apply(state, &member_yaml(host, &address));
    let kind_name = format!("controlplanemember/{host}");
    if let Some((step, check)) = kill_when.take() {
        eventually_or_dump(
            lab,
            state,
            &format!("{host}'s join reaching: {step}"),
            Duration::from_secs(300),
            || {
                assert_ne!(
                    condition(state, &kind_name, "Ready").0,
                    "True",
                    "{host} was Ready before the step to kill at ({step})"
                );
                check()
            },
        );
        kill_leader(lab, state);
        eprintln!("{host}: leader killed at: {step}");
    }
    wait_ready(lab, state, &kind_name, Duration::from_secs(600));
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("{host}: apply to Ready in {seconds:.1} s");
    seconds
}

#[test]
fn the_operator_grows_and_shrinks_the_control_plane() {
    let netcheck = netcheck_image();
    let (mut lab, work, state) = seeded_lab(NAME, SUBNET, 7);
    let address = |host: &str| lab.host(host).unwrap().address.to_string();
    let addresses: Vec<String> = ["host1", "host2", "host3"].map(address).to_vec();

    // ---- grow: two joins, the leader killed in the middle of each -----------------
    let staging = || {
        lab.exec(
            "host2",
            "ls /var/lib/kubeseed/bundle/*/bin 2>/dev/null | grep -q .",
        )
        .is_ok_and(|o| o.status.success())
    };
    let host2_seconds = join_killing(
        &lab,
        &state,
        "host2",
        Some(("the bundle is being staged", &staging)),
    );
    let peer3 = format!("https://{}:2380", addresses[2]);
    let learner = || etcd_member_lines(&lab, "host1").contains(&peer3);
    let host3_seconds = join_killing(
        &lab,
        &state,
        "host3",
        Some(("its etcd member was added", &learner)),
    );
    let members = etcd_members(&lab, "host1");
    assert_eq!(members.len(), 3, "no duplicate member: {members:?}");
    assert!(members.iter().all(|(_, learner)| !learner), "{members:?}");
    for host in ["host1", "host2", "host3"] {
        let ready = condition(&state, &format!("node/{host}"), "Ready").0;
        assert_eq!(ready, "True", "Node {host}");
        let recorded = jsonpath(
            &state,
            &format!("controlplanemember/{host}"),
            "{.status.observedHostKey}",
        );
        let actual = lab
            .exec_ok(host, "cut -d' ' -f1,2 /etc/ssh/ssh_host_ed25519_key.pub")
            .unwrap();
        assert_eq!(recorded, actual.trim(), "{host}'s first-seen host key");
    }
    assert_eq!(
        jsonpath(&state, "etcdmember/host2", "{.status.isLearner}"),
        "false"
    );

    // ---- a second object on host2's address: Conflict, nothing touched ----------
    apply(&state, &member_yaml("host2-again", &addresses[1]));
    eventually("Conflict on host2-again", Duration::from_secs(60), || {
        condition(&state, "controlplanemember/host2-again", "Ready").1 == "Conflict"
    });
    kubectl_ok(
        &state,
        &["delete", "controlplanemember", "host2-again", "--wait=true"],
    );
    assert_eq!(etcd_members(&lab, "host1").len(), 3);

    // ---- a VIP for the endpoint: new certificates, one apiserver at a time -------
    let inputs_before: Vec<String> = ["host1", "host2", "host3"]
        .iter()
        .map(|h| jsonpath(&state, &format!("cpm/{h}"), "{.status.clusterInputs}"))
        .collect();
    assert!(
        inputs_before.iter().all(|d| d.starts_with("sha256:")),
        "{inputs_before:?}"
    );
    // When each apiserver last started, on the kernel's monotonic clock
    // (the lab's hosts share the runner's kernel, so the hosts' figures
    // compare).
    let started_at = |host: &str| -> u64 {
        lab.exec_ok(
            host,
            "systemctl show -p ActiveEnterTimestampMonotonic --value kube-apiserver",
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap()
    };
    let starts_before: Vec<u64> = ["host1", "host2", "host3"].map(started_at).to_vec();
    let lb_hosts = vec![address("host4"), address("host5")];
    let vip_cidr = format!("{VIP}/24");
    // Bad input first: each refused with its reason, nothing on the hosts.
    let bad = [
        (
            balancer_yaml("bad", &lb_hosts, "10.99.0.100/24", "HAProxy"),
            "PreflightFailed",
            "outside every subnet",
        ),
        (
            balancer_yaml("bad", &lb_hosts, &vip_cidr, "HAProxy")
                .replace("  vip:", "  interface: nosuch0\n  vip:"),
            "PreflightFailed",
            "nosuch0 does not exist",
        ),
        (
            balancer_yaml("bad", &lb_hosts, &format!("{}/24", addresses[0]), "HAProxy"),
            "VipInUse",
            "ControlPlaneMember host1",
        ),
        (
            balancer_yaml("bad", &[addresses[0].clone()], &vip_cidr, "HAProxy"),
            "Conflict",
            "another port",
        ),
    ];
    for (yaml, reason, says) in &bad {
        apply(&state, yaml);
        eventually_or_dump(
            &lab,
            &state,
            &format!("refused: {reason}"),
            Duration::from_secs(120),
            || condition(&state, "apilb/bad", "Ready").1 == *reason,
        );
        let message = jsonpath(
            &state,
            "apilb/bad",
            "{.status.conditions[?(@.type==\"Ready\")].message}",
        );
        let preflight = jsonpath(
            &state,
            "apilb/bad",
            "{.status.conditions[?(@.type==\"PreflightPassed\")].message}",
        );
        assert!(
            message.contains(says) || preflight.contains(says),
            "{reason}: {message} / {preflight}"
        );
        kubectl_ok(&state, &["delete", "apilb", "bad", "--wait=true"]);
        for lb in ["host4", "host5"] {
            let left = lab
                .exec_ok(
                    lb,
                    "ls -d /etc/kubeseed/lb /etc/systemd/system/kubeseed-haproxy.service \
                     /etc/systemd/system/kubeseed-nginx.service \
                     /etc/systemd/system/kubeseed-keepalived.service \
                     /var/lib/kubeseed/cluster-id 2>/dev/null; true",
                )
                .unwrap();
            assert!(left.trim().is_empty(), "{reason}: {lb} was changed: {left}");
        }
    }
    let watch = ReadinessWatch::start(&state, &addresses);
    std::thread::sleep(Duration::from_secs(2));
    let lb_applied = Instant::now();
    apply(
        &state,
        &balancer_yaml("api", &lb_hosts, &vip_cidr, "HAProxy"),
    );
    eventually_or_dump(
        &lab,
        &state,
        "the balancer Ready",
        Duration::from_secs(300),
        || condition(&state, "apilb/api", "Ready").0 == "True",
    );
    let lb_ready_seconds = lb_applied.elapsed().as_secs_f64();
    eprintln!("ApiLoadBalancer: apply to Ready in {lb_ready_seconds:.1} s");
    let lb_ready_epoch = now_epoch();
    // The roll has begun: an apiserver this kubeconfig names may be
    // restarting, so each read is retried until it answers.
    let want: Vec<String> = addresses.iter().map(|a| format!("{a}:6443")).collect();
    eventually(
        "the three masters as backends, host4 holding the VIP",
        Duration::from_secs(240),
        || {
            let backends = jsonpath(&state, "apilb/api", "{.status.backends}");
            want.iter().all(|b| backends.contains(b))
                && jsonpath(&state, "apilb/api", "{.status.vipHolder}") == lb_hosts[0]
        },
    );
    assert!(
        lab.exec_ok(
            "host4",
            "systemctl is-active kubeseed-haproxy kubeseed-keepalived"
        )
        .is_ok()
    );
    let roll_started = Instant::now();
    eventually_or_dump(
        &lab,
        &state,
        "every master reconfigured",
        Duration::from_secs(600),
        || {
            ["host1", "host2", "host3"]
                .iter()
                .zip(&inputs_before)
                .all(|(h, before)| {
                    let now = jsonpath(&state, &format!("cpm/{h}"), "{.status.clusterInputs}");
                    now != *before
                        && condition(&state, &format!("cpm/{h}"), "Provisioned").0 == "True"
                })
        },
    );
    let roll_seconds = roll_started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let (most_down, down_polls) = watch.finish();
    eprintln!(
        "VIP roll: {roll_seconds:.1} s; most apiservers not ready at once: {most_down}; not-ready polls per host: {down_polls:?}"
    );
    // The readiness polls are a figure, not the proof: on a loaded 2-core
    // runner an apiserver's /readyz also fails while it is up (etcd slow to
    // answer). The proof is the restarts: each apiserver started again, and
    // no two within a second of each other (the operator waits for one to
    // be ready before it touches the next).
    let mut starts: Vec<u64> = ["host1", "host2", "host3"].map(started_at).to_vec();
    for (i, (before, after)) in starts_before.iter().zip(&starts).enumerate() {
        assert!(after > before, "host{}'s apiserver restarted", i + 1);
    }
    starts.sort_unstable();
    let gaps: Vec<u64> = starts.windows(2).map(|w| (w[1] - w[0]) / 1000).collect();
    eprintln!("apiserver restarts apart (ms): {gaps:?}");
    assert!(
        gaps.iter().all(|g| *g >= 1000),
        "two apiservers restarted together: {gaps:?} ms apart"
    );
    for host in ["host1", "host2", "host3"] {
        let cert = lab
            .exec_ok(host, "cat /etc/kubernetes/pki/apiserver.crt")
            .unwrap();
        let file = work.path().join(format!("{host}-apiserver.crt"));
        std::fs::write(&file, cert).unwrap();
        let sans = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(&file)
            .output()
            .unwrap();
        let sans = String::from_utf8_lossy(&sans.stdout);
        assert!(
            sans.contains(&format!("IP Address:{VIP}")),
            "{host}: {sans}"
        );
        let admin = lab
            .exec_ok(host, "grep server: /etc/kubernetes/admin.conf")
            .unwrap();
        assert!(
            admin.contains(VIP),
            "{host}'s admin.conf names the VIP: {admin}"
        );
    }
    assert!(
        lab.exec("host1", "test -f /etc/kubernetes/super-admin.conf")
            .unwrap()
            .status
            .success(),
        "the seed keeps super-admin.conf"
    );
    for host in ["host2", "host3"] {
        assert!(
            !lab.exec(host, "test -e /etc/kubernetes/super-admin.conf")
                .unwrap()
                .status
                .success(),
            "{host} has no super-admin.conf"
        );
    }

    // ---- the workstation's kubeconfig follows the VIP --------------------------------
    let out = std::process::Command::new(bootstrap_binary())
        .args(["use-endpoint", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bootstrap use-endpoint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let server = kubectl_ok(
        &state,
        &[
            "config",
            "view",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ],
    );
    assert_eq!(server.trim(), format!("https://{VIP}:6443"));
    kubectl_ok(&state, &["get", "nodes"]);

    // ---- two workers, and a workload across them ------------------------------------
    let started = Instant::now();
    let workers = ["host6", "host7"];
    let yaml: Vec<String> = workers
        .iter()
        .map(|h| worker_yaml(h, &address(h), ""))
        .collect();
    apply(&state, &yaml.join("---\n"));
    for host in workers {
        wait_ready(
            &lab,
            &state,
            &format!("workernode/{host}"),
            Duration::from_secs(600),
        );
        // Joined after the VIP was published: the kubelet talks to the VIP,
        // so losing any one master does not cut the worker off.
        let kubelet = lab
            .exec_ok(host, "grep server: /etc/kubernetes/kubelet.conf")
            .unwrap();
        assert!(kubelet.contains(VIP), "{host}'s kubelet.conf: {kubelet}");
    }
    let workers_seconds = started.elapsed().as_secs_f64();
    eprintln!("two workers: apply to Ready in {workers_seconds:.1} s");
    deploy_netcheck(
        &lab,
        &state,
        &netcheck,
        &["host1", "host6", "host7"],
        &workers,
    );
    serves_across(&state, "host6", "host7");

    // ---- the VIP moves; the API stays served ------------------------------------------
    let ca = state.join("pki").join("ca.crt");
    let poller = Poller::start(VIP, 6443, &ca);
    let mut quiet = vec![(lb_ready_epoch, now_epoch())];
    let mut failovers = vec![
        fail_over(
            &mut lab,
            &state,
            &poller,
            "HAProxy",
            ("host4", "host5"),
            Event::PowerOff,
        ),
        come_back(&mut lab, &state, &poller, "HAProxy", ("host4", "host5")),
        fail_over(
            &mut lab,
            &state,
            &poller,
            "HAProxy",
            ("host4", "host5"),
            Event::Crash,
        ),
        come_back(&mut lab, &state, &poller, "HAProxy", ("host4", "host5")),
    ];

    // ---- master1 powered off: the API is still served through the VIP -------------
    let host1_health = || {
        jsonpath(
            &state,
            "apilb/api",
            &format!(
                "{{.status.hosts[0].backends[?(@.address==\"{}:6443\")].healthy}}",
                addresses[0]
            ),
        )
    };
    let at = now_epoch();
    lab.power_off("host1").unwrap();
    eventually("haproxy sees host1 down", Duration::from_secs(60), || {
        host1_health() == "false"
    });
    kubectl_ok(&state, &["get", "--raw", "/readyz"]);
    let (failed, outage) = outage_after(&poller.samples(), at);
    eprintln!("host1 powered off: {failed} failed requests, outage {outage:.0} ms");
    failovers.push(serde_json::json!({
        "implementation": "HAProxy", "event": "master1 powered off",
        "failed_requests": failed, "outage_ms": outage,
    }));
    lab.start("host1").unwrap();
    wait_master_back(&lab, &state, "host1");
    eventually("haproxy sees host1 up", Duration::from_secs(120), || {
        host1_health() == "true"
    });
    serves_across(&state, "host7", "host6");

    // ---- nginx instead of HAProxy, the same VIP -------------------------------------
    kubectl_ok(
        &state,
        &[
            "patch",
            "apilb",
            "api",
            "--type=merge",
            "-p",
            r#"{"spec":{"implementation":"Nginx"}}"#,
        ],
    );
    eventually_or_dump(
        &lab,
        &state,
        "nginx on both hosts",
        Duration::from_secs(300),
        || {
            ["host4", "host5"].iter().all(|h| {
            lab.exec_ok(h, "systemctl is-active kubeseed-nginx; systemctl is-active kubeseed-haproxy || true")
                .is_ok_and(|o| o.starts_with("active\n") && !o.contains("\nactive"))
        }) && condition(&state, "apilb/api", "Ready").0 == "True"
        },
    );
    kubectl_ok(&state, &["get", "nodes"]);
    failovers.push(fail_over(
        &mut lab,
        &state,
        &poller,
        "Nginx",
        ("host4", "host5"),
        Event::Crash,
    ));
    failovers.push(come_back(
        &mut lab,
        &state,
        &poller,
        "Nginx",
        ("host4", "host5"),
    ));

    // ---- the operator's leader killed: the API does not notice ---------------------
    let at = now_epoch();
    kill_leader(&lab, &state);
    a_leader_reconciles(&lab, &state, &addresses[0]);
    let (failed, outage_ms) = outage_after(&poller.samples(), at);
    eprintln!("operator leader killed: {failed} failed requests, outage {outage_ms:.0} ms");
    failovers.push(serde_json::json!({
        "implementation": "Nginx", "event": "operator leader killed",
        "failed_requests": failed, "outage_ms": outage_ms,
    }));

    // ---- a master's cable cut, then plugged back in --------------------------------
    let at = now_epoch();
    lab.cut_link("host3").unwrap();
    // Long enough for the Node to go NotReady (40 s grace) and the balancer's
    // probe to drop it; the API through the VIP answers meanwhile.
    std::thread::sleep(Duration::from_secs(45));
    eventually("the API through the VIP", Duration::from_secs(60), || {
        common::kubectl(&state)
            .args(["get", "nodes"])
            .output()
            .unwrap()
            .status
            .success()
    });
    lab.restore_link("host3").unwrap();
    wait_master_back(&lab, &state, "host3");
    eventually_or_dump(
        &lab,
        &state,
        "host3 a backend again",
        Duration::from_secs(180),
        || {
            jsonpath(&state, "apilb/api", "{.status.backends}")
                .contains(&format!("{}:6443", addresses[2]))
        },
    );
    let (failed, outage_ms) = outage_after(&poller.samples(), at);
    eprintln!(
        "host3's link cut for 45 s and restored: {failed} failed requests, outage {outage_ms:.0} ms"
    );
    serves_across(&state, "host6", "host7");
    failovers.push(serde_json::json!({
        "implementation": "Nginx", "event": "master link cut and restored",
        "failed_requests": failed, "outage_ms": outage_ms,
    }));
    let quiet_from = now_epoch();

    // ---- the leader's node crashes: the other replica takes over ------------------
    // (host1 stays up: this test's kubeconfig talks to it.)
    lead_elsewhere_than(&state, "host1");
    let (old_leader, lost) = leader(&state);
    let at = now_epoch();
    lab.crash(&lost).unwrap();
    let crashed = Instant::now();
    eventually_or_dump(
        &lab,
        &state,
        "a new leader",
        Duration::from_secs(120),
        || {
            let (pod, node) = leader(&state);
            pod != old_leader && !node.is_empty() && node != lost
        },
    );
    let takeover_seconds = crashed.elapsed().as_secs_f64();
    eprintln!("{lost} crashed; a replica elsewhere led after {takeover_seconds:.1} s");
    a_leader_reconciles(&lab, &state, &addresses[0]);
    let (failed, outage_ms) = outage_after(&poller.samples(), at);
    eprintln!("{lost} (a master) crashed: {failed} failed requests, outage {outage_ms:.0} ms");
    failovers.push(serde_json::json!({
        "implementation": "Nginx", "event": "master crashed (the leader's node)",
        "failed_requests": failed, "outage_ms": outage_ms,
    }));
    lab.start(&lost).unwrap();
    wait_master_back(&lab, &state, &lost);

    // ---- a leave that would lose quorum is refused --------------------------------
    lab.stop_services("host3", &["etcd"]).unwrap();
    // Through the VIP: host3's apiserver, whose own etcd member is stopped,
    // cannot write until the balancer drops it (nginx: the operator's next
    // probe), so the request is retried.
    eventually("the delete accepted", Duration::from_secs(120), || {
        common::kubectl(&state)
            .args(["delete", "controlplanemember", "host2", "--wait=false"])
            .output()
            .unwrap()
            .status
            .success()
    });
    eventually_or_dump(
        &lab,
        &state,
        "QuorumAtRisk on host2",
        Duration::from_secs(120),
        || condition(&state, "controlplanemember/host2", "Ready").1 == "QuorumAtRisk",
    );
    assert_eq!(etcd_members(&lab, "host1").len(), 3, "nothing removed");
    lab.exec_ok("host3", "systemctl start etcd").unwrap();

    // ---- the leave proceeds once etcd is whole again -----------------------------
    let mut teardown_seen = false;
    eventually_or_dump(&lab, &state, "host2 gone", Duration::from_secs(600), || {
        // The moment host2's apiserver stops, no balancer may still name it.
        if !teardown_seen
            && !lab
                .exec("host2", "systemctl is-active --quiet kube-apiserver")
                .is_ok_and(|o| o.status.success())
        {
            teardown_seen = true;
            for lb in ["host4", "host5"] {
                let config = lab.exec_ok(lb, "cat /etc/kubeseed/lb/nginx.conf").unwrap();
                assert!(
                    !config.contains(&format!("{}:6443", addresses[1])),
                    "{lb} still forwards to host2 when its teardown starts:\n{config}"
                );
            }
        }
        !exists(&state, "controlplanemember/host2")
    });
    assert!(teardown_seen, "host2's apiserver was stopped by its leave");
    assert!(
        !jsonpath(&state, "apilb/api", "{.status.backends}")
            .contains(&format!("{}:6443", addresses[1])),
        "host2 left the backends"
    );
    let members = etcd_members(&lab, "host1");
    assert_eq!(members.len(), 2, "{members:?}");
    assert!(!members.iter().any(|(n, _)| n == "host2"), "{members:?}");
    assert_node_gone_and_host_clean(&lab, &state, "host2");

    // ---- and joins again ------------------------------------------------------------
    let rejoin_seconds = join(&lab, &state, "host2");
    assert_eq!(etcd_members(&lab, "host1").len(), 3);
    // From Ready to serving behind the balancer (in both hosts' nginx).
    let ready_at = Instant::now();
    eventually("host2 a backend again", Duration::from_secs(120), || {
        jsonpath(&state, "apilb/api", "{.status.backends}")
            .contains(&format!("{}:6443", addresses[1]))
            && ["host4", "host5"].iter().all(|lb| {
                lab.exec_ok(lb, "cat /etc/kubeseed/lb/nginx.conf")
                    .is_ok_and(|c| c.contains(&format!("{}:6443", addresses[1])))
            })
    });
    let ready_to_serving = ready_at.elapsed().as_secs_f64();
    eprintln!("host2: Ready to serving behind the balancer in {ready_to_serving:.1} s");

    // ---- an etcd member nobody accounts for: reported, left alone ------------------
    let ghost_peer = format!("https://{}:2380", lab.free_address().unwrap());
    let added = lab
        .exec_ok(
            "host1",
            &local_etcdctl(&format!(
                "member add ghost --learner --peer-urls={ghost_peer}"
            )),
        )
        .unwrap();
    // "Member <id> added to cluster <cluster id>"
    let ghost_id = added
        .split_whitespace()
        .skip_while(|w| *w != "Member")
        .nth(1)
        .unwrap()
        .to_owned();
    eventually_or_dump(
        &lab,
        &state,
        "the ghost reported",
        Duration::from_secs(120),
        || {
            condition(&state, "etcdmember/host1", "EtcdMembersAccounted").1
                == "UnaccountedEtcdMember"
        },
    );
    let message = jsonpath(
        &state,
        "etcdmember/host3",
        "{.status.conditions[?(@.type==\"EtcdMembersAccounted\")].message}",
    );
    assert!(message.contains(&ghost_peer), "{message}");
    assert!(
        etcd_member_lines(&lab, "host1").contains(&ghost_peer),
        "the ghost is left alone"
    );
    lab.exec_ok(
        "host1",
        &local_etcdctl(&format!("member remove {ghost_id}")),
    )
    .unwrap();
    eventually("accounted again", Duration::from_secs(120), || {
        condition(&state, "etcdmember/host1", "EtcdMembersAccounted").0 == "True"
    });

    // ---- the member whose node runs the leader: the leader hands over -------------
    lead_elsewhere_than(&state, "host1");
    let (leader_pod, doomed) = leader(&state);
    eprintln!("deleting {doomed}, where the leader {leader_pod} runs");
    kubectl_ok(
        &state,
        &["delete", "controlplanemember", &doomed, "--wait=false"],
    );
    eventually_or_dump(
        &lab,
        &state,
        &format!("{doomed} gone"),
        Duration::from_secs(600),
        || !exists(&state, &format!("controlplanemember/{}", &doomed)),
    );
    let (new_pod, new_node) = leader(&state);
    assert!(
        new_pod != leader_pod && new_node != doomed,
        "led by {new_pod} on {new_node}"
    );
    let handed = kubectl_ok(
        &state,
        &[
            "get",
            "events",
            "-A",
            "--field-selector",
            &format!("involvedObject.name={doomed},reason=HandingOver"),
            "-o",
            "name",
        ],
    );
    assert!(!handed.trim().is_empty(), "the leader said it handed over");
    assert_eq!(etcd_members(&lab, "host1").len(), 2);
    assert_node_gone_and_host_clean(&lab, &state, &doomed);

    // ---- a worker leaves: drained, its pods on the other ----------------------------
    kubectl_ok(&state, &["delete", "workernode/host7", "--wait=false"]);
    worker_left(&lab, &state, "host7", "host6");
    serves_across(&state, "host6", "host6");
    assert_consistent(&lab, &state, "host1", Some("api"));

    quiet.push((quiet_from, now_epoch()));
    let samples = poller.finish();
    let spurious = spurious_moves(&lab, &["host4", "host5"], &quiet);
    let quiet_seconds: f64 = quiet.iter().map(|(a, b)| b - a).sum();
    eprintln!(
        "VIP moves nobody caused in {quiet_seconds:.0} s of quiet: {} {spurious:?}",
        spurious.len()
    );
    let failed_total = samples.iter().filter(|s| !s.ok).count();
    let balancer = serde_json::json!({
        "advert_interval_ms": ADVERT_MS,
        "master_down_interval_ms": master_down_ms(BACKUP_PRIORITY),
        "failovers": failovers,
        "ready_to_serving_seconds": ready_to_serving,
        "apply_to_ready_seconds": lb_ready_seconds,
        "spurious_vip_moves": spurious.len(),
        "quiet_seconds": quiet_seconds,
        "polls": samples.len(),
        "failed_polls": failed_total,
    });
    write_balancer_report(&balancer);
    let figures = serde_json::json!({
        "join_seconds": {"host2": host2_seconds, "host3": host3_seconds, "host2_again": rejoin_seconds},
        "two_workers_apply_to_ready_seconds": workers_seconds,
        "vip_roll_seconds": roll_seconds,
        "most_apiservers_not_ready_at_once": most_down,
        "apiserver_restarts_apart_ms": gaps,
        "leader_takeover_after_crash_seconds": takeover_seconds,
    });
    println!("CONTROL_PLANE_FIGURES {figures}");
    let report = lab.down().unwrap();
    assert!(report.left.is_empty(), "lab left: {:?}", report.left);
}

/// keepalived's advert interval (the renderer's default) and the backup's
/// priority (the second host's default).
const ADVERT_MS: f64 = 200.0;
const BACKUP_PRIORITY: f64 = 90.0;

/// VRRPv3's master-down interval for a backup of `priority`.
fn master_down_ms(priority: f64) -> f64 {
    3.0 * ADVERT_MS + (256.0 - priority) * ADVERT_MS / 256.0
}

/// How the VIP's holder goes away.
#[derive(Clone, Copy, Debug)]
enum Event {
    /// `systemctl poweroff`: keepalived gives the VIP up on its way down.
    PowerOff,
    /// SIGKILL to its init: its peers notice only by the missing adverts.
    Crash,
}

/// Takes the VIP's holder away; the backup must take over and the API stay
/// served through the VIP. Returns the figures.
fn fail_over(
    lab: &mut Lab,
    state: &Path,
    poller: &Poller,
    implementation: &str,
    (holder, backup): (&str, &str),
    event: Event,
) -> serde_json::Value {
    // The VIP must be on `holder` first (after a switch it may still be on
    // its way back there).
    eventually(
        &format!("{holder} holds the VIP"),
        Duration::from_secs(120),
        || {
            lab.exec(holder, &format!("ip -o addr show | grep -qF 'inet {VIP}/'"))
                .is_ok_and(|o| o.status.success())
        },
    );
    let at = now_epoch();
    match event {
        Event::PowerOff => lab.power_off(holder).unwrap(),
        Event::Crash => lab.crash(holder).unwrap(),
    }
    eventually(
        &format!("{backup} takes the VIP"),
        Duration::from_secs(30),
        || became_master(lab, backup, at).is_some(),
    );
    let took_ms = (became_master(lab, backup, at).unwrap() - at) * 1000.0;
    eventually("the API through the VIP", Duration::from_secs(30), || {
        poller.samples().iter().any(|s| s.at > at && s.ok)
    });
    std::thread::sleep(Duration::from_secs(2));
    let backup_address = lab.host(backup).unwrap().address.to_string();
    eventually(
        "the status names the new holder",
        Duration::from_secs(60),
        || jsonpath(state, "apilb/api", "{.status.vipHolder}") == backup_address,
    );
    kubectl_ok(state, &["get", "nodes"]);
    let (failed, outage_ms) = outage_after(&poller.samples(), at);
    let master_down = master_down_ms(BACKUP_PRIORITY);
    eprintln!(
        "{implementation}, {holder} {event:?}: {backup} MASTER after {took_ms:.0} ms (master-down interval {master_down:.0} ms, ratio {:.2}); {failed} failed requests, outage {outage_ms:.0} ms",
        took_ms / master_down
    );
    serde_json::json!({
        "implementation": implementation,
        "event": format!("{event:?}"),
        "takeover_ms": took_ms,
        "ratio_to_master_down": took_ms / master_down,
        "failed_requests": failed,
        "outage_ms": outage_ms,
    })
}

/// Boots the first holder again: it takes the VIP back (higher priority).
fn come_back(
    lab: &mut Lab,
    state: &Path,
    poller: &Poller,
    implementation: &str,
    (holder, _backup): (&str, &str),
) -> serde_json::Value {
    let at = now_epoch();
    lab.start(holder).unwrap();
    eventually(
        &format!("{holder} takes the VIP back"),
        Duration::from_secs(120),
        || became_master(lab, holder, at).is_some(),
    );
    let holder_address = lab.host(holder).unwrap().address.to_string();
    eventually("the status names it", Duration::from_secs(60), || {
        jsonpath(state, "apilb/api", "{.status.vipHolder}") == holder_address
    });
    std::thread::sleep(Duration::from_secs(2));
    let (failed, outage_ms) = outage_after(&poller.samples(), at);
    eprintln!(
        "{implementation}, {holder} back: {failed} failed requests, outage {outage_ms:.0} ms"
    );
    serde_json::json!({
        "implementation": implementation,
        "event": "holder back (preempts)",
        "failed_requests": failed,
        "outage_ms": outage_ms,
    })
}

/// A master that was down is a Ready Node with a healthy etcd member again.
fn wait_master_back(lab: &Lab, state: &Path, host: &str) {
    eventually_or_dump(
        lab,
        state,
        &format!("{host} back"),
        Duration::from_secs(300),
        || {
            jsonpath(
                state,
                &format!("node/{host}"),
                "{.status.conditions[?(@.type==\"Ready\")].status}",
            ) == "True"
                && lab
                    .exec(host, &local_etcdctl("endpoint health"))
                    .is_ok_and(|o| o.status.success())
        },
    );
}

/// The balancer's figures: a table on stdout, JSON beside the other
/// benchmarks' (`target/bench/load_balancer.json`).
fn write_balancer_report(figures: &serde_json::Value) {
    println!(
        "\n| implementation | event | takeover ms | / master-down | failed requests | outage ms |"
    );
    println!("|---|---|---|---|---|---|");
    for f in figures["failovers"].as_array().unwrap() {
        let num = |k: &str| {
            f[k].as_f64()
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "-".into())
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            f["implementation"].as_str().unwrap_or_default(),
            f["event"].as_str().unwrap_or_default(),
            num("takeover_ms"),
            f["ratio_to_master_down"]
                .as_f64()
                .map(|v| format!("{v:.2}"))
                .unwrap_or_else(|| "-".into()),
            num("failed_requests"),
            num("outage_ms"),
        );
    }
    println!(
        "master-down interval {:.0} ms (advert {:.0} ms); member Ready to serving {:.1} s; spurious VIP moves {} in {:.0} s",
        figures["master_down_interval_ms"]
            .as_f64()
            .unwrap_or_default(),
        figures["advert_interval_ms"].as_f64().unwrap_or_default(),
        figures["ready_to_serving_seconds"]
            .as_f64()
            .unwrap_or_default(),
        figures["spurious_vip_moves"],
        figures["quiet_seconds"].as_f64().unwrap_or_default(),
    );
    let path = common::bench_dir().join("load_balancer.json");
    std::fs::write(&path, serde_json::to_string_pretty(figures).unwrap()).unwrap();
    println!("LOAD_BALANCER_FIGURES {}", path.display());
}

fn assert_node_gone_and_host_clean(lab: &Lab, state: &Path, host: &str) {
    assert!(
        !exists(state, &format!("node/{}", host)),
        "Node {host} deleted"
    );
    let leftovers = lab
        .exec_ok(
            host,
            "systemctl is-active etcd kube-apiserver kubelet 2>/dev/null; ls -d /etc/kubernetes /var/lib/etcd 2>/dev/null; ls -d /var/lib/etcd.kubeseed-removed-* ; true",
        )
        .unwrap();
    assert!(!leftovers.contains("\nactive"), "{leftovers}");
    assert!(!leftovers.contains("/etc/kubernetes"), "{leftovers}");
    assert!(
        leftovers.contains("/var/lib/etcd.kubeseed-removed-"),
        "backup kept: {leftovers}"
    );
}
