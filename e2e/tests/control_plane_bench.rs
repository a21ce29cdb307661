//! The control-plane benchmark (printed, never asserted on time): a join
//! through the in-cluster operator next to etcd's and the apiserver's part
//! done by hand on the same host in the same run, and the operator's
//! resident memory.
//!
//! 1. host1 seeded; the operator's memory once it is idle;
//! 2. host2 and host3 applied as `ControlPlaneMember`s: apply to Ready per
//!    member (and when each condition first showed), the operator's memory
//!    sampled throughout;
//! 3. host3 again by hand, with everything its join staged (binaries,
//!    certificates, units): its etcd member removed and its data wiped, then
//!    `etcdctl member add` + `systemctl start etcd` to a healthy endpoint,
//!    and `systemctl restart kube-apiserver` to `/readyz` ok. Apply-to-Ready /
//!    by hand is the ratio (target <= 1.5); the join's own etcd and
//!    apiserver steps (from the host's journal) / by hand is the same work;
//! 4. 100 `ControlPlaneMember`s naming host2's address: each must get
//!    `Conflict` without a host being touched; the operator's memory with
//!    them (targets: <= 20 MiB idle, <= 40 MiB with 100 members).
//!
//! The by-hand part runs on host3, not host2: etcd starts a member with an
//! empty data directory and `--initial-cluster-state=existing` only when
//! `--initial-cluster` lists exactly the current members ("member count is
//! unequal" otherwise), and only the last member to join had its unit
//! rendered with all of them.
//!
//! A table goes to stderr and JSON to `target/bench/control_plane.json`.
//! Correctness is asserted (members, health, nothing touched by a conflict);
//! times and memory never are: a target not reached is reported.
//!
//! Needs what `control_plane.rs` needs (`e2e/test.sh` provides it).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step must stop it

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::cluster::{
    EtcdRow, apply, dump, etcd_rows, etcdctl, eventually_or_dump, jsonpath, member_yaml,
};
use common::{eventually, kubectl_ok, seeded_lab};
use kubeseed_e2e::{HostExec, Lab};
use serde::Serialize;

const NAME: &str = "cpbench";
const SUBNET: &str = "10.213.13.0/24";
const NAMESPACE: &str = "kubeseed-system";
/// `/proc/PID/comm` of the operator: the binary's name cut to 15 bytes.
const OPERATOR_COMM: &str = "kubeseed-operat";
const CONFLICTS: usize = 100;
/// How long the operator is left alone before "idle" memory is read: its
/// start-up reconciles and the first watch lists are over by then.
const SETTLE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(250);
/// How many of a join's slowest steps are reported by name.
const TOP_STEPS: usize = 8;
const RATIO_TARGET: f64 = 1.5;
const RSS_IDLE_TARGET_MIB: f64 = 20.0;
const RSS_100_TARGET_MIB: f64 = 40.0;

#[derive(Debug, Serialize)]
struct Figures {
    /// host3's: the member the by-hand reference repeats.
    apply_to_ready_seconds: f64,
    apply_to_ready_seconds_per_member: BTreeMap<String, f64>,
    /// Seconds from apply to the first sight of each `type=status/reason`.
    join_conditions_seen: BTreeMap<String, Vec<(String, f64)>>,
    /// The slowest steps of each join, from the task the joining host's
    /// journal named as running at each poll (so steps shorter than a poll
    /// fold into the next); "(before the plan)" is reaching the host,
    /// preflight and certificates, "(after the plan)" recording the member.
    join_slowest_steps: BTreeMap<String, Vec<(String, f64)>>,
    /// How many steps were seen, and the seconds of those not among the
    /// slowest.
    join_other_steps: BTreeMap<String, (usize, f64)>,
    /// The join's own etcd and kube-apiserver steps (`etcd/*`,
    /// `apiserver/*`): what the by-hand part repeats.
    join_etcd_and_apiserver_seconds: BTreeMap<String, f64>,
    by_hand_member_add_and_start_seconds: f64,
    by_hand_apiserver_start_seconds: f64,
    by_hand_total_seconds: f64,
    ratio: f64,
    ratio_target: f64,
    ratio_met: bool,
    /// host3's `etcd/*` + `apiserver/*` steps / by hand: the same work.
    ratio_etcd_and_apiserver_steps_to_by_hand: f64,
    /// The errors of each failed announcement of a starting etcd member
    /// (7 s each), per join and for the by-hand start.
    etcd_publish_failures: BTreeMap<String, Vec<String>>,
    operator_rss_idle_mib: f64,
    operator_hwm_idle_mib: f64,
    /// Anonymous memory (heap, stacks): what the operator allocated; the
    /// rest of VmRSS is its mapped binary.
    operator_rss_anon_idle_mib: f64,
    operator_rss_peak_during_join_mib: f64,
    operator_rss_anon_peak_during_join_mib: f64,
    operator_rss_samples_during_join: usize,
    operator_hwm_after_joins_mib: f64,
    operator_cpu_seconds_during_joins: f64,
    /// Settled again after the joins (and the by-hand part, which the
    /// operator has no part in): what a join leaves behind.
    operator_rss_after_joins_mib: f64,
    operator_rss_with_100_members_mib: f64,
    operator_rss_anon_with_100_members_mib: f64,
    /// The process's peak so far, the joins' included.
    operator_hwm_with_100_members_mib: f64,
    operator_rss_after_delete_mib: f64,
    /// The kubelet's figure for the same container, as a cross-check of the
    /// anonymous part (cgroup v1 `rss` counts anonymous memory only); the
    /// operator exports no process metrics of its own.
    operator_rss_kubelet_idle_mib: Option<f64>,
    operator_rss_kubelet_with_100_members_mib: Option<f64>,
    rss_idle_target_mib: f64,
    rss_100_target_mib: f64,
    rss_idle_met: bool,
    rss_100_met: bool,
    /// From `kubectl apply` of the 100 to every one marked Conflict.
    conflicts_marked_seconds: f64,
    /// kubectl creates them one request at a time.
    conflicts_apply_seconds: f64,
    operator_cpu_seconds_marking_conflicts: f64,
    /// From the first delete sent to the last object gone.
    conflicts_deleted_seconds: f64,
    conflicts_delete_requests_seconds: f64,
    operator_cpu_seconds_deleting_conflicts: f64,
    /// The same operator process (PID) measured throughout.
    operator_restarted: bool,
    /// `status.memberId` of host3's `EtcdMember` still names the member the
    /// by-hand part removed.
    etcd_member_status_stale_after_by_hand: bool,
}

#[test]
fn control_plane_benchmark() {
    let (lab, _work, state) = seeded_lab(NAME, SUBNET, 3);

    // ---- idle ---------------------------------------------------------------------
    let operator = Operator::leader(&lab, &state);
    assert_eq!(operator.host, "host1", "the seed's operator leads");
    std::thread::sleep(SETTLE);
    let idle = operator.settled_memory(&lab);
    let idle_kubelet = operator.kubelet_rss_mib(&state);

    // ---- joins, memory sampled throughout ------------------------------------------
    let cpu_before = operator.cpu_seconds(&lab);
    let exec = lab.executor(&operator.host).unwrap();
    let mut join_peak = Peak::default();
    let joins = while_sampling(
        Duration::from_millis(200),
        || {
            if let Some(m) = read_memory(&exec, operator.pid) {
                join_peak.add(m);
            }
        },
        || ["host2", "host3"].map(|host| (host, join(&lab, &state, host))),
    );
    let cpu_joins = operator.cpu_seconds(&lab) - cpu_before;
    let after_joins = operator.memory(&lab).unwrap();
    let rows = etcd_rows(&lab, "host1");
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows.iter().all(|r| r.started && !r.learner), "{rows:?}");

    // ---- host3 by hand, everything staged --------------------------------------------
    let old_member_id = jsonpath(&state, "etcdmember/host3", "{.status.memberId}");
    let by_hand = by_hand(&lab, "host3");
    control_plane_healthy(&lab, &state);
    let settled_after_joins = operator.settled_memory(&lab);
    let new_id = etcd_rows(&lab, "host1")
        .into_iter()
        .find(|r| r.name == "host3")
        .unwrap()
        .id;
    let member_id_status = jsonpath(&state, "etcdmember/host3", "{.status.memberId}");
    let stale = !member_id_status.is_empty() && !same_member_id(&member_id_status, &new_id);
    eprintln!(
        "EtcdMember host3 status.memberId: {member_id_status} (before by hand: {old_member_id}); etcd now: {new_id}"
    );

    // ---- 100 members that must touch no host ------------------------------------------
    let address2 = lab.host("host2").unwrap().address.to_string();
    let untouched = host_touch_marks(&lab, "host2");
    // host2's join logged in: a count that stays the same then says
    // something.
    assert!(!untouched.contains("logins=0"), "{untouched}");
    eprintln!(
        "host2 before the conflicts: {}",
        untouched.replace('\n', " ")
    );
    let names: Vec<String> = (0..CONFLICTS).map(|i| format!("conflict-{i:03}")).collect();
    let yaml: String = names
        .iter()
        .map(|n| format!("---\n{}", member_yaml(n, &address2)))
        .collect();
    let cpu_before = operator.cpu_seconds(&lab);
    let started = Instant::now();
    apply(&state, &yaml);
    let created = started.elapsed().as_secs_f64();
    eventually_or_dump(
        &lab,
        &state,
        "Conflict on every extra member",
        Duration::from_secs(300),
        || conflicted(&state) == CONFLICTS,
    );
    let conflicts_marked = started.elapsed().as_secs_f64();
    let cpu_marking = operator.cpu_seconds(&lab) - cpu_before;
    for name in ["conflict-000", "conflict-050", "conflict-099"] {
        let kind_name = format!("controlplanemember/{name}");
        let message = jsonpath(
            &state,
            &kind_name,
            "{.status.conditions[?(@.type==\"Ready\")].message}",
        );
        assert!(
            message.contains(&format!("already provisions host {address2}"))
                && message.contains("nothing was done to the host"),
            "{name}: {message}"
        );
        let reached = jsonpath(
            &state,
            &kind_name,
            "{.status.conditions[?(@.type==\"HostReachable\")].status}",
        );
        assert!(reached.is_empty(), "{name} reached its host: {reached}");
    }
    std::thread::sleep(SETTLE);
    let with_conflicts = operator.settled_memory(&lab);
    let with_conflicts_kubelet = operator.kubelet_rss_mib(&state);

    // kubectl does not wait: the time is the operator's, releasing each
    // object's finalizer.
    let cpu_before = operator.cpu_seconds(&lab);
    let started = Instant::now();
    let mut delete = vec!["delete", "controlplanemember", "--wait=false"];
    delete.extend(names.iter().map(String::as_str));
    kubectl_ok(&state, &delete);
    let deletes_sent = started.elapsed().as_secs_f64();
    eventually_or_dump(
        &lab,
        &state,
        "every extra member gone",
        Duration::from_secs(300),
        || {
            !kubectl_ok(&state, &["get", "controlplanemembers", "-o", "name"])
                .contains("/conflict-")
        },
    );
    let conflicts_deleted = started.elapsed().as_secs_f64();
    let cpu_deleting = operator.cpu_seconds(&lab) - cpu_before;
    assert_eq!(
        host_touch_marks(&lab, "host2"),
        untouched,
        "a conflicting member touched host2"
    );
    control_plane_healthy(&lab, &state);
    let after_delete = operator.settled_memory(&lab);
    let restarted = Operator::leader(&lab, &state).pid != operator.pid;

    // ---- figures -----------------------------------------------------------------------
    let host3_seconds = joins[1].1.seconds;
    let by_hand_total = by_hand.etcd_seconds + by_hand.apiserver_seconds;
    let ratio = host3_seconds / by_hand_total;
    let rss_idle = mib(idle.rss_kib);
    let rss_100 = mib(with_conflicts.rss_kib);
    let f = Figures {
        apply_to_ready_seconds: host3_seconds,
        apply_to_ready_seconds_per_member: joins
            .iter()
            .map(|(h, j)| ((*h).to_owned(), j.seconds))
            .collect(),
        join_conditions_seen: joins
            .iter()
            .map(|(h, j)| ((*h).to_owned(), j.conditions_seen.clone()))
            .collect(),
        join_slowest_steps: joins
            .iter()
            .map(|(h, j)| ((*h).to_owned(), slowest(&j.steps, TOP_STEPS)))
            .collect(),
        join_other_steps: joins
            .iter()
            .map(|(h, j)| {
                let top: f64 = slowest(&j.steps, TOP_STEPS).iter().map(|(_, s)| s).sum();
                ((*h).to_owned(), (j.steps.len(), j.seconds - top))
            })
            .collect(),
        join_etcd_and_apiserver_seconds: joins
            .iter()
            .map(|(h, j)| ((*h).to_owned(), etcd_and_apiserver_seconds(&j.steps)))
            .collect(),
        by_hand_member_add_and_start_seconds: by_hand.etcd_seconds,
        by_hand_apiserver_start_seconds: by_hand.apiserver_seconds,
        by_hand_total_seconds: by_hand_total,
        ratio,
        ratio_target: RATIO_TARGET,
        ratio_met: ratio <= RATIO_TARGET,
        ratio_etcd_and_apiserver_steps_to_by_hand: etcd_and_apiserver_seconds(&joins[1].1.steps)
            / by_hand_total,
        etcd_publish_failures: joins
            .iter()
            .map(|(h, j)| ((*h).to_owned(), j.etcd_publish_failures.clone()))
            .chain([("host3 by hand".to_owned(), by_hand.etcd_publish_failures)])
            .collect(),
        operator_rss_idle_mib: rss_idle,
        operator_hwm_idle_mib: mib(idle.hwm_kib),
        operator_rss_anon_idle_mib: mib(idle.anon_kib),
        operator_rss_peak_during_join_mib: mib(join_peak.rss_kib),
        operator_rss_anon_peak_during_join_mib: mib(join_peak.anon_kib),
        operator_rss_samples_during_join: join_peak.samples,
        operator_hwm_after_joins_mib: mib(after_joins.hwm_kib),
        operator_cpu_seconds_during_joins: cpu_joins,
        operator_rss_after_joins_mib: mib(settled_after_joins.rss_kib),
        operator_rss_with_100_members_mib: rss_100,
        operator_rss_anon_with_100_members_mib: mib(with_conflicts.anon_kib),
        operator_hwm_with_100_members_mib: mib(with_conflicts.hwm_kib),
        operator_rss_after_delete_mib: mib(after_delete.rss_kib),
        operator_rss_kubelet_idle_mib: idle_kubelet,
        operator_rss_kubelet_with_100_members_mib: with_conflicts_kubelet,
        rss_idle_target_mib: RSS_IDLE_TARGET_MIB,
        rss_100_target_mib: RSS_100_TARGET_MIB,
        rss_idle_met: rss_idle <= RSS_IDLE_TARGET_MIB,
        rss_100_met: rss_100 <= RSS_100_TARGET_MIB,
        conflicts_marked_seconds: conflicts_marked,
        conflicts_apply_seconds: created,
        operator_cpu_seconds_marking_conflicts: cpu_marking,
        conflicts_deleted_seconds: conflicts_deleted,
        conflicts_delete_requests_seconds: deletes_sent,
        operator_cpu_seconds_deleting_conflicts: cpu_deleting,
        operator_restarted: restarted,
        etcd_member_status_stale_after_by_hand: stale,
    };
    print_figures(&f);
    let down = lab.down().unwrap();
    assert!(down.left.is_empty(), "down left: {:?}", down.left);
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// etcdctl prints member IDs in hex, the status may carry them in decimal.
fn same_member_id(a: &str, hex: &str) -> bool {
    let hex = u64::from_str_radix(hex, 16).ok();
    a.eq_ignore_ascii_case(&format!("{:x}", hex.unwrap_or_default()))
        || a.parse::<u64>().ok() == hex
}

// ---- the operator process -------------------------------------------------------------

/// The operator replica holding the leader Lease, as a process on its host.
#[derive(Debug)]
struct Operator {
    pod: String,
    host: String,
    pid: u32,
}

#[derive(Debug, Clone, Copy)]
struct Memory {
    rss_kib: u64,
    /// The anonymous part of `rss_kib` (`RssAnon`).
    anon_kib: u64,
    /// Peak resident set since the process started.
    hwm_kib: u64,
}

impl Operator {
    /// Waits for a Ready replica holding the Lease, then finds its process.
    fn leader(lab: &Lab, state: &Path) -> Self {
        let mut found = None;
        eventually_or_dump(
            lab,
            state,
            "a Ready operator holding the Lease",
            Duration::from_secs(300),
            || {
                let pod = in_namespace(
                    state,
                    &[
                        "get",
                        "lease",
                        "kubeseed-operator",
                        "-o",
                        "jsonpath={.spec.holderIdentity}",
                    ],
                );
                if pod.is_empty() {
                    return false;
                }
                let seen = in_namespace(
                    state,
                    &[
                        "get",
                        "pod",
                        &pod,
                        "-o",
                        "jsonpath={.spec.nodeName} {.status.conditions[?(@.type==\"Ready\")].status}",
                    ],
                );
                match seen.split_once(' ') {
                    Some((host, "True")) => {
                        found = Some((pod, host.to_owned()));
                        true
                    }
                    _ => false,
                }
            },
        );
        let (pod, host) = found.unwrap();
        let pids = lab
            .exec_ok(
                &host,
                &format!(
                    "for d in /proc/[0-9]*; do [ \"$(cat $d/comm 2>/dev/null)\" = {OPERATOR_COMM} ] && echo ${{d#/proc/}}; done; true"
                ),
            )
            .unwrap();
        let pids: Vec<u32> = pids.lines().map(|l| l.trim().parse().unwrap()).collect();
        // One replica per host: they share the host's network and port.
        assert_eq!(pids.len(), 1, "operator processes on {host}: {pids:?}");
        Operator {
            pod,
            host,
            pid: pids[0],
        }
    }

    fn memory(&self, lab: &Lab) -> Option<Memory> {
        read_memory(&lab.executor(&self.host).ok()?, self.pid)
    }

    /// The median of five readings a second apart: a single reading may
    /// land on a reconcile's short-lived buffers.
    fn settled_memory(&self, lab: &Lab) -> Memory {
        let mut readings: Vec<Memory> = (0..5)
            .map(|i| {
                if i > 0 {
                    std::thread::sleep(Duration::from_secs(1));
                }
                self.memory(lab)
                    .unwrap_or_else(|| panic!("operator process {} is gone", self.pid))
            })
            .collect();
        readings.sort_by_key(|m| m.rss_kib);
        let hwm = readings.iter().map(|m| m.hwm_kib).max().unwrap();
        Memory {
            hwm_kib: hwm,
            ..readings[2]
        }
    }

    /// User + system CPU seconds the process used so far.
    fn cpu_seconds(&self, lab: &Lab) -> f64 {
        let out = lab
            .exec_ok(
                &self.host,
                &format!("echo $(getconf CLK_TCK) $(cat /proc/{}/stat)", self.pid),
            )
            .unwrap();
        let (tick, stat) = out.trim().split_once(' ').unwrap();
        // Fields after the command name, which is in parentheses: state is
        // field 3, utime 14 and stime 15.
        let rest: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: f64 = rest[11].parse::<f64>().unwrap() + rest[12].parse::<f64>().unwrap();
        ticks / tick.parse::<f64>().unwrap()
    }

    /// The kubelet's `rssBytes` for the operator's container, in MiB.
    fn kubelet_rss_mib(&self, state: &Path) -> Option<f64> {
        let out = common::kubectl(state)
            .args([
                "get",
                "--raw",
                &format!("/api/v1/nodes/{}/proxy/stats/summary", self.host),
            ])
            .output()
            .ok()?;
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let pod = doc["pods"]
            .as_array()?
            .iter()
            .find(|p| p["podRef"]["name"] == self.pod.as_str())?;
        let bytes = pod["containers"].as_array()?.first()?["memory"]["rssBytes"].as_f64()?;
        Some(bytes / 1024.0 / 1024.0)
    }
}

fn in_namespace(state: &Path, args: &[&str]) -> String {
    let out = common::kubectl(state)
        .args(["-n", NAMESPACE])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn read_memory(exec: &HostExec, pid: u32) -> Option<Memory> {
    let out = exec.exec(&format!("cat /proc/{pid}/status")).ok()?;
    if !out.status.success() {
        return None;
    }
    let text = out.stdout_text();
    let kib = |key: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(key))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(Memory {
        rss_kib: kib("VmRSS:")?,
        anon_kib: kib("RssAnon:")?,
        hwm_kib: kib("VmHWM:")?,
    })
}

/// Sets the flag when dropped, so the sampler stops even when `work` panics
/// (a scoped thread that never ends would hang the test).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `work` while another thread calls `sample` every `every`.
fn while_sampling<T>(
    every: Duration,
    mut sample: impl FnMut() + Send,
    work: impl FnOnce() -> T,
) -> T {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                sample();
                std::thread::sleep(every);
            }
        });
        let _stop = StopOnDrop(&stop);
        work()
    })
}

/// The largest readings of the operator's memory, and how many were taken.
#[derive(Debug, Default, Clone, Copy)]
struct Peak {
    rss_kib: u64,
    anon_kib: u64,
    samples: usize,
}

impl Peak {
    fn add(&mut self, m: Memory) {
        self.rss_kib = self.rss_kib.max(m.rss_kib);
        self.anon_kib = self.anon_kib.max(m.anon_kib);
        self.samples += 1;
    }
}

// ---- joins ------------------------------------------------------------------------------

#[derive(Debug)]
struct Join {
    seconds: f64,
    conditions_seen: Vec<(String, f64)>,
    /// (step, seconds) in the order they ran.
    steps: Vec<(String, f64)>,
    etcd_publish_failures: Vec<String>,
}

const BEFORE_PLAN: &str = "(before the plan)";
const AFTER_PLAN: &str = "(after the plan)";

/// The task the host's join journal names as running; [`AFTER_PLAN`] once
/// the plan is done, [`BEFORE_PLAN`] before it has a journal.
fn journal_step(exec: &HostExec) -> String {
    let text = exec
        .exec("cat /var/lib/kubeseed/journal/join.json 2>/dev/null")
        .map(|o| o.stdout_text())
        .unwrap_or_default();
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(doc) => doc["running"].as_str().unwrap_or(AFTER_PLAN).to_owned(),
        Err(_) => BEFORE_PLAN.to_owned(),
    }
}

/// Applies a member for `host` and polls its conditions every 250 ms until
/// Ready, the host's journal every 100 ms; the time is from just before
/// `kubectl apply`.
fn join(lab: &Lab, state: &Path, host: &str) -> Join {
    let address = lab.host(host).unwrap().address.to_string();
    let kind_name = format!("controlplanemember/{host}");
    let exec = lab.executor(host).unwrap();
    let started = Instant::now();
    // (step, when first seen running)
    let mut starts: Vec<(String, f64)> = vec![(BEFORE_PLAN.to_owned(), 0.0)];
    let mut seen: Vec<(String, f64)> = Vec::new();
    let seconds = while_sampling(
        Duration::from_millis(100),
        || {
            let step = journal_step(&exec);
            if starts.last().is_some_and(|(s, _)| *s != step) {
                starts.push((step, started.elapsed().as_secs_f64()));
            }
        },
        || {
            apply(state, &member_yaml(host, &address));
            loop {
                let conditions = jsonpath(
                    state,
                    &kind_name,
                    "{range .status.conditions[*]}{.type}={.status}/{.reason}{\"\\n\"}{end}",
                );
                let now = started.elapsed().as_secs_f64();
                for line in conditions.lines().map(str::trim) {
                    if !seen.iter().any(|(l, _)| l == line) {
                        seen.push((line.to_owned(), now));
                    }
                }
                if conditions
                    .lines()
                    .any(|l| l.trim().starts_with("Ready=True/"))
                {
                    return now;
                }
                let refused = ["Conflict", "PreflightFailed", "HostKeyMismatch"]
                    .iter()
                    .any(|r| conditions.contains(&format!("Ready=False/{r}")));
                if refused || started.elapsed() > Duration::from_secs(600) {
                    dump(lab, state, &format!("{host} Ready"));
                    panic!("{host} did not become Ready: {conditions}");
                }
                std::thread::sleep(POLL);
            }
        },
    );
    eprintln!("{host}: apply to Ready in {seconds:.1} s");
    let ends = starts.iter().skip(1).map(|(_, t)| *t).chain([seconds]);
    let steps = starts
        .iter()
        .zip(ends)
        .map(|((step, start), end)| (step.clone(), (end - start).max(0.0)))
        .collect();
    Join {
        seconds,
        conditions_seen: seen,
        steps,
        etcd_publish_failures: etcd_publish_failures(lab, host),
    }
}

/// The errors etcd on `host` logged each time announcing itself to the
/// cluster failed: each costs etcd's request timeout (5 s + 2 election
/// timeouts, 7 s here) before the member reports ready to systemd.
fn etcd_publish_failures(lab: &Lab, host: &str) -> Vec<String> {
    lab.exec_ok(
        host,
        "journalctl -q -o cat -u etcd | grep 'failed to publish local member' || true",
    )
    .unwrap()
    .lines()
    .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
        Ok(doc) => doc["error"].as_str().unwrap_or(l).to_owned(),
        Err(_) => l.to_owned(),
    })
    .collect()
}

/// The seconds of the steps that start and join etcd and kube-apiserver:
/// what the by-hand reference does.
fn etcd_and_apiserver_seconds(steps: &[(String, f64)]) -> f64 {
    steps
        .iter()
        .filter(|(id, _)| id.starts_with("etcd/") || id.starts_with("apiserver/"))
        .map(|(_, s)| s)
        .sum()
}

/// The `n` longest steps, longest first.
fn slowest(steps: &[(String, f64)], n: usize) -> Vec<(String, f64)> {
    let mut sorted = steps.to_vec();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
    sorted.truncate(n);
    sorted
}

// ---- by hand ----------------------------------------------------------------------------

#[derive(Debug)]
struct ByHand {
    etcd_seconds: f64,
    apiserver_seconds: f64,
    etcd_publish_failures: Vec<String>,
}

/// A shell loop that polls `probe` every 250 ms, for at most 150 s.
fn wait_until(probe: &str) -> String {
    format!(
        "n=0; until {probe} >/dev/null 2>&1; do n=$((n+1)); [ $n -lt 600 ] || exit 1; sleep 0.25; done"
    )
}

/// The value of `--name=` in a rendered unit.
fn unit_flag<'a>(unit: &'a str, name: &str) -> &'a str {
    let prefix = format!("--{name}=");
    unit.split_whitespace()
        .find_map(|t| t.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in the unit:\n{unit}"))
}

fn initial_cluster_of(rows: &[EtcdRow]) -> BTreeSet<String> {
    rows.iter()
        .map(|r| format!("{}={}", r.name, r.peer_urls))
        .collect()
}

/// Stops `host`'s kube-apiserver and etcd, removes its member and data,
/// then times what a person does with the files the join left: member add
/// from another master and etcd started until healthy; kube-apiserver
/// started until ready.
fn by_hand(lab: &Lab, host: &str) -> ByHand {
    let address = lab.host(host).unwrap().address;
    let peer_url = format!("https://{address}:2380");
    let client_url = format!("https://{address}:2379");
    let local = "https://127.0.0.1:2379";

    // The staged unit must bring the member back as it is: same name and
    // peer URL, joining, and an initial cluster that is today's members.
    let unit = lab
        .exec_ok(host, "cat /etc/systemd/system/etcd.service")
        .unwrap();
    assert_eq!(unit_flag(&unit, "name"), host);
    assert_eq!(unit_flag(&unit, "initial-advertise-peer-urls"), peer_url);
    assert_eq!(unit_flag(&unit, "initial-cluster-state"), "existing");
    let initial: BTreeSet<String> = unit_flag(&unit, "initial-cluster")
        .split(',')
        .map(str::to_owned)
        .collect();
    assert_eq!(initial, initial_cluster_of(&etcd_rows(lab, "host1")));
    let data_dir = unit_flag(&unit, "data-dir").to_owned();

    lab.stop_services(host, &["kube-apiserver", "etcd"])
        .unwrap();
    let id = etcd_rows(lab, "host1")
        .into_iter()
        .find(|r| r.peer_urls == peer_url)
        .unwrap()
        .id;
    lab.exec_ok("host1", &etcdctl(local, &format!("member remove {id}")))
        .unwrap();
    // The directory stays, with the mode the join gave it.
    lab.exec_ok(host, &format!("rm -rf {data_dir}/member"))
        .unwrap();
    assert_eq!(etcd_rows(lab, "host1").len(), 2);

    let failures_before = etcd_publish_failures(lab, host).len();
    let started = Instant::now();
    let added = lab
        .exec_ok(
            "host1",
            &etcdctl(local, &format!("member add {host} --peer-urls={peer_url}")),
        )
        .unwrap();
    lab.exec_ok(
        host,
        &format!(
            "systemctl start etcd && {}",
            wait_until(&etcdctl(&client_url, "endpoint health"))
        ),
    )
    .unwrap();
    let etcd_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    lab.exec_ok(
        host,
        &format!(
            "systemctl restart kube-apiserver && {}",
            wait_until(&format!(
                "/usr/local/bin/kubectl --kubeconfig /etc/kubernetes/controller-manager.conf \
                 --server https://{address}:6443 get --raw /readyz"
            ))
        ),
    )
    .unwrap();
    let apiserver_seconds = started.elapsed().as_secs_f64();

    // What `member add` told the person to start with is what the unit has.
    let told = added
        .lines()
        .find_map(|l| l.strip_prefix("ETCD_INITIAL_CLUSTER="))
        .unwrap_or_else(|| panic!("member add printed no initial cluster:\n{added}"))
        .trim_matches('"');
    let told: BTreeSet<String> = told.split(',').map(str::to_owned).collect();
    assert_eq!(told, initial, "member add's initial cluster vs the unit's");
    eprintln!(
        "{host} by hand: member add + etcd start {etcd_seconds:.1} s, kube-apiserver start {apiserver_seconds:.1} s"
    );
    ByHand {
        etcd_seconds,
        apiserver_seconds,
        etcd_publish_failures: etcd_publish_failures(lab, host).split_off(failures_before),
    }
}

/// Three started voting members, each endpoint healthy, every Node and
/// member Ready.
fn control_plane_healthy(lab: &Lab, state: &Path) {
    eventually_or_dump(
        lab,
        state,
        "three healthy voting members",
        Duration::from_secs(120),
        || {
            let rows = etcd_rows(lab, "host1");
            rows.len() == 3 && rows.iter().all(|r| r.started && !r.learner)
        },
    );
    let endpoints: Vec<String> = ["host1", "host2", "host3"]
        .iter()
        .map(|h| format!("https://{}:2379", lab.host(h).unwrap().address))
        .collect();
    let health = lab
        .exec_ok(
            "host1",
            &etcdctl(&endpoints.join(","), "endpoint health 2>&1"),
        )
        .unwrap();
    assert_eq!(
        health.matches("is healthy").count(),
        3,
        "etcd endpoints: {health}"
    );
    for host in ["host1", "host2", "host3"] {
        eventually(
            &format!("Node {host} Ready"),
            Duration::from_secs(120),
            || {
                jsonpath(
                    state,
                    &format!("node/{host}"),
                    "{.status.conditions[?(@.type==\"Ready\")].status}",
                ) == "True"
            },
        );
        let ready = jsonpath(
            state,
            &format!("controlplanemember/{host}"),
            "{.status.conditions[?(@.type==\"Ready\")].status}",
        );
        assert_eq!(ready, "True", "ControlPlaneMember {host}");
    }
}

// ---- conflicts --------------------------------------------------------------------------

/// How many `conflict-*` members say Ready=False, reason Conflict.
fn conflicted(state: &Path) -> usize {
    let out = jsonpath(
        state,
        "controlplanemembers",
        "{range .items[*]}{.metadata.name} {.status.conditions[?(@.type==\"Ready\")].status}/{.status.conditions[?(@.type==\"Ready\")].reason}{\"\\n\"}{end}",
    );
    out.lines()
        .filter(|l| l.starts_with("conflict-") && l.ends_with(" False/Conflict"))
        .count()
}

/// What would change on a host the operator logged in to or provisioned:
/// sshd's accepted logins and the join journal's mtime.
fn host_touch_marks(lab: &Lab, host: &str) -> String {
    lab.exec_ok(
        host,
        "echo logins=$(journalctl -q -o cat _COMM=sshd 2>/dev/null | grep -c 'Accepted publickey'); \
         stat -c 'journal=%Y' /var/lib/kubeseed/journal/join.json",
    )
    .unwrap()
}

// ---- output -----------------------------------------------------------------------------

fn print_figures(f: &Figures) {
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let target = |limit: f64, ok: bool| format!("<= {limit} {}", met(ok));
    let mut rows: Vec<(String, f64, String)> = f
        .apply_to_ready_seconds_per_member
        .iter()
        .map(|(host, s)| (format!("apply to Ready, {host} (s)"), *s, String::new()))
        .collect();
    for (name, value, goal) in [
        (
            "by hand, host3: member add + etcd start to healthy (s)",
            f.by_hand_member_add_and_start_seconds,
            String::new(),
        ),
        (
            "by hand, host3: kube-apiserver start to /readyz (s)",
            f.by_hand_apiserver_start_seconds,
            String::new(),
        ),
        (
            "by hand, host3: total (s)",
            f.by_hand_total_seconds,
            String::new(),
        ),
        (
            "ratio apply to Ready (host3) / by hand",
            f.ratio,
            target(f.ratio_target, f.ratio_met),
        ),
        (
            "ratio host3's etcd/* + apiserver/* steps / by hand",
            f.ratio_etcd_and_apiserver_steps_to_by_hand,
            String::new(),
        ),
        (
            "operator RSS idle (MiB)",
            f.operator_rss_idle_mib,
            target(f.rss_idle_target_mib, f.rss_idle_met),
        ),
        (
            "  of which anonymous (MiB)",
            f.operator_rss_anon_idle_mib,
            String::new(),
        ),
        (
            "operator RSS peak during the joins (MiB, 200 ms samples)",
            f.operator_rss_peak_during_join_mib,
            String::new(),
        ),
        (
            "  anonymous peak (MiB)",
            f.operator_rss_anon_peak_during_join_mib,
            String::new(),
        ),
        (
            "operator VmHWM after the joins (MiB)",
            f.operator_hwm_after_joins_mib,
            String::new(),
        ),
        (
            "operator CPU during the joins (s)",
            f.operator_cpu_seconds_during_joins,
            String::new(),
        ),
        (
            "operator RSS settled after the joins (MiB)",
            f.operator_rss_after_joins_mib,
            String::new(),
        ),
        (
            "operator RSS with 100 members (MiB)",
            f.operator_rss_with_100_members_mib,
            target(f.rss_100_target_mib, f.rss_100_met),
        ),
        (
            "  of which anonymous (MiB)",
            f.operator_rss_anon_with_100_members_mib,
            String::new(),
        ),
        (
            "operator RSS after deleting them (MiB)",
            f.operator_rss_after_delete_mib,
            String::new(),
        ),
        (
            "100 members: all Conflict after (s)",
            f.conflicts_marked_seconds,
            String::new(),
        ),
        (
            "  of which kubectl apply creating them (s)",
            f.conflicts_apply_seconds,
            String::new(),
        ),
        (
            "  operator CPU meanwhile (s)",
            f.operator_cpu_seconds_marking_conflicts,
            String::new(),
        ),
        (
            "100 members: all gone after (s)",
            f.conflicts_deleted_seconds,
            String::new(),
        ),
        (
            "  of which kubectl sending the deletes (s)",
            f.conflicts_delete_requests_seconds,
            String::new(),
        ),
        (
            "  operator CPU meanwhile (s)",
            f.operator_cpu_seconds_deleting_conflicts,
            String::new(),
        ),
    ] {
        rows.push((name.to_owned(), value, goal));
    }

    let mut e = std::io::stderr().lock();
    let _ = writeln!(
        e,
        "\ncontrol-plane benchmark (lab hosts, same run; never asserted)"
    );
    let _ = writeln!(
        e,
        "| {:<58} | {:>8} | {:>14} |",
        "measure", "value", "target"
    );
    let _ = writeln!(e, "|{:-<60}|{:->10}|{:->16}|", "", "", "");
    for (name, value, goal) in &rows {
        let _ = writeln!(e, "| {name:<58} | {value:>8.1} | {goal:>14} |");
    }
    let _ = writeln!(
        e,
        "kubelet's RSS (anonymous) for the container (MiB): idle {:?}, with 100 members {:?}",
        f.operator_rss_kubelet_idle_mib, f.operator_rss_kubelet_with_100_members_mib
    );
    for (host, seen) in &f.join_conditions_seen {
        let _ = writeln!(e, "{host}: conditions first seen (s after apply): {seen:?}");
    }
    for ((host, steps), (_, (count, rest))) in f.join_slowest_steps.iter().zip(&f.join_other_steps)
    {
        let _ = writeln!(
            e,
            "{host}: slowest steps (s): {steps:?}; the other {} of {count} steps: {rest:.1} s",
            count.saturating_sub(steps.len())
        );
    }
    let _ = writeln!(
        e,
        "join's etcd/* + apiserver/* steps (s): {:?}; etcd's failed announcements (7 s each): {:?}",
        f.join_etcd_and_apiserver_seconds, f.etcd_publish_failures
    );
    if f.operator_restarted {
        let _ = writeln!(e, "WARNING: the operator restarted during the run");
    }
    if f.etcd_member_status_stale_after_by_hand {
        let _ = writeln!(
            e,
            "note: EtcdMember host3's status.memberId still names the member removed by hand"
        );
    }
    let json = serde_json::to_string_pretty(f).unwrap();
    std::fs::write(common::bench_dir().join("control_plane.json"), &json).unwrap();
    let _ = writeln!(
        e,
        "CONTROL_PLANE_BENCH_FIGURES {}",
        serde_json::to_string(f).unwrap()
    );
}
