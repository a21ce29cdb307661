//! The API load balancer in the lab: its object, a client polling the API
//! through the VIP every 100 ms, and the VIP's moves as keepalived logged
//! them on each host.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kubeseed_e2e::Lab;

/// Where keepalived's notify script logs each transition on a host.
pub const TRANSITIONS_LOG: &str = "/var/lib/kubeseed/lb/vrrp-transitions.log";

/// An `ApiLoadBalancer` on `hosts` (the first has the highest priority).
pub fn balancer_yaml(name: &str, hosts: &[String], vip: &str, implementation: &str) -> String {
    let mut yaml = format!(
        "apiVersion: kubeseed.io/v1alpha1\nkind: ApiLoadBalancer\nmetadata:\n  name: {name}\nspec:\n  vip: {vip}\n  implementation: {implementation}\n  hosts:\n"
    );
    for h in hosts {
        yaml.push_str(&format!(
            "    - host:\n        address: {h}\n        sshKeySecretRef:\n          name: kubeseed-ssh\n"
        ));
    }
    yaml
}

/// Seconds since the epoch, as the hosts' notify script writes them (the
/// lab's hosts share the runner's clock).
pub fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One `/readyz` through the VIP.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was sent (epoch seconds).
    pub at: f64,
    /// Whether it answered `ok`.
    pub ok: bool,
}

/// A client asking `/readyz` through the VIP every 100 ms (curl, the
/// cluster CA, the name every apiserver certificate carries), until stopped.
pub struct Poller {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Poller {
    /// Starts polling `https://vip:port/readyz`, trusting `ca`.
    pub fn start(vip: &str, port: u16, ca: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out, ca): (_, _, PathBuf) = (stop.clone(), samples.clone(), ca.to_path_buf());
        let resolve = format!("kubernetes:{port}:{vip}");
        let url = format!("https://kubernetes:{port}/readyz");
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let started = Instant::now();
                let at = now_epoch();
                let ok = Command::new("curl")
                    .args(["-s", "--max-time", "1", "--cacert"])
                    .arg(&ca)
                    .args(["--resolve", &resolve, &url])
                    .output()
                    .is_ok_and(|o| o.status.success() && o.stdout == b"ok");
                out.lock().unwrap().push(Sample { at, ok });
                let spent = started.elapsed();
                if spent < Duration::from_millis(100) {
                    std::thread::sleep(Duration::from_millis(100) - spent);
                }
            }
        });
        Poller {
            stop,
            samples,
            handle: Some(handle),
        }
    }

    /// The samples so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }

    /// Stops and returns every sample.
    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        self.samples()
    }
}

/// What a client saw from `from` (epoch seconds) on: failed requests, and
/// the outage (first failure to the next success) in milliseconds.
pub fn outage_after(samples: &[Sample], from: f64) -> (usize, f64) {
    let after: Vec<&Sample> = samples.iter().filter(|s| s.at >= from).collect();
    let failed = after.iter().filter(|s| !s.ok).count();
    let first_fail = after.iter().find(|s| !s.ok).map(|s| s.at);
    let outage = first_fail
        .and_then(|f| {
            after
                .iter()
                .find(|s| s.at > f && s.ok)
                .map(|s| (s.at - f) * 1000.0)
        })
        .unwrap_or(0.0);
    (failed, outage)
}

/// The transitions keepalived logged on `host`: (epoch seconds, state).
pub fn transitions(lab: &Lab, host: &str) -> Vec<(f64, String)> {
    let text = lab
        .exec_ok(host, &format!("cat {TRANSITIONS_LOG} 2>/dev/null; true"))
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let at = words.next()?.parse().ok()?;
            let state = words.last()?.to_owned();
            Some((at, state))
        })
        .collect()
}

/// When `host` last became MASTER after `since` (epoch seconds).
pub fn became_master(lab: &Lab, host: &str, since: f64) -> Option<f64> {
    transitions(lab, host)
        .into_iter()
        .filter(|(at, state)| *at >= since && state == "MASTER")
        .map(|(at, _)| at)
        .next()
}

/// MASTER transitions on `hosts` inside any of `windows` (epoch seconds):
/// moves nobody caused.
pub fn spurious_moves(lab: &Lab, hosts: &[&str], windows: &[(f64, f64)]) -> Vec<String> {
    let mut out = Vec::new();
    for host in hosts {
        for (at, state) in transitions(lab, host) {
            if state == "MASTER" && windows.iter().any(|(a, b)| at > *a && at < *b) {
                out.push(format!("{host} became MASTER at {at:.3}"));
            }
        }
    }
    out
}
