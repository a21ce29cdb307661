//! What the seed scenarios share: the lab, the `bootstrap` binary, the
//! bundle, and the checks that a seeded host works.

#![allow(dead_code)] // each test file uses its own part

pub mod balancer;
pub mod cluster;
pub mod workload;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kubeseed_e2e::{Lab, LabConfig, ProcessId};
use kubeseed_testenv::Toolchain;

/// The bundle the tests seed from: `KUBESEED_BUNDLE` (what
/// `bash e2e/toolchain/bundle.sh` prints last).
pub fn bundle_dir() -> PathBuf {
    let dir = std::env::var_os("KUBESEED_BUNDLE")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
                "KUBESEED_BUNDLE is not set: build the bundle with `bash e2e/toolchain/bundle.sh` \
                 and export the KUBESEED_BUNDLE=... line it prints (e2e/test.sh does)"
            )
        });
    assert!(
        dir.join("SHA256SUMS").is_file(),
        "{} is not a bundle (no SHA256SUMS)",
        dir.display()
    );
    dir
}

/// The `bootstrap` binary: `KUBESEED_BOOTSTRAP`, else beside this test's own
/// build (`cargo build -p kubeseed-bootstrap` puts it there).
pub fn bootstrap_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KUBESEED_BOOTSTRAP").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let path = profile_dir.join("bootstrap");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build -p kubeseed-bootstrap` first (e2e/test.sh does), or set KUBESEED_BOOTSTRAP",
        path.display()
    );
    path
}

/// A fresh lab called `name` (a stale one of that name, whose owner is
/// gone, is removed first).
pub fn lab_for(name: &str, subnet: &str, hosts: usize) -> Lab {
    if let Err(error) = kubeseed_e2e::prereq::check(!kubeseed_e2e::rootfs::is_cached()) {
        panic!("{error}");
    }
    if let Ok(stale) = Lab::attach(name) {
        if let Some(owner) = stale.owner().filter(ProcessId::is_running) {
            panic!(
                "lab {name} is in use by process {}; wait for it to finish",
                owner.pid
            );
        }
        let report = stale.down().unwrap();
        assert!(report.left.is_empty(), "stale lab left: {:?}", report.left);
    }
    let config = LabConfig {
        name: name.into(),
        hosts,
        subnet: subnet.parse().unwrap(),
    };
    Lab::up(config).unwrap()
}

/// A lab of `hosts` hosts with host1 seeded from the tests' bundle: the
/// lab, the work directory (removed when dropped: keep it while the test
/// runs) and the cluster's state directory in it.
pub fn seeded_lab(name: &str, subnet: &str, hosts: usize) -> (Lab, tempfile::TempDir, PathBuf) {
    let bundle = bundle_dir();
    let lab = lab_for(name, subnet, hosts);
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("cluster");
    let out = Seeder::new(&lab, &bundle, work.path()).seed(&lab, "host1", &state, &[]);
    assert!(out.ok, "seed of host1 failed:\n{}", out.text);
    (lab, work, state)
}

/// Where a benchmark writes its JSON: `target/bench/` of the build that
/// made this test (created if missing).
pub fn bench_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../bench");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What a `bootstrap` run printed, and whether it succeeded.
#[derive(Debug)]
pub struct Run {
    /// Exit status 0.
    pub ok: bool,
    /// stdout then stderr.
    pub text: String,
    /// Seconds it took.
    pub seconds: f64,
}

/// Runs `bootstrap seed` against lab hosts.
#[derive(Debug, Clone)]
pub struct Seeder {
    binary: PathBuf,
    /// The bundle.
    pub bundle: PathBuf,
    key: String,
    known_hosts: String,
}

impl Seeder {
    /// Seeds from `bundle` with the lab's key and known_hosts.
    pub fn new(lab: &Lab, bundle: &Path, _work: &Path) -> Self {
        Seeder {
            binary: bootstrap_binary(),
            bundle: bundle.to_path_buf(),
            key: lab.ssh_private_key_path().display().to_string(),
            known_hosts: lab.known_hosts_path().display().to_string(),
        }
    }

    /// The lab's private key.
    pub fn key(&self) -> &str {
        &self.key
    }

    fn command(&self, address: &str, state: &Path, bundle: &Path) -> Command {
        let mut c = Command::new(&self.binary);
        c.args(["seed", address, "--state-dir"])
            .arg(state)
            .arg("--bundle")
            .arg(bundle)
            .args(["--operator-ssh-key", &self.key])
            .env_remove("KUBESEED_STATE_DIR")
            .stdin(Stdio::null());
        c
    }

    fn run(mut command: Command) -> Run {
        let started = Instant::now();
        let output = command.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Run {
            ok: output.status.success(),
            text,
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    /// `bootstrap seed <host's address>` with the lab's key and known_hosts,
    /// plus `extra` arguments (a later `--identity` wins).
    pub fn seed(&self, lab: &Lab, host: &str, state: &Path, extra: &[&str]) -> Run {
        let address = lab.host(host).unwrap().address.to_string();
        let mut c = self.command(&address, state, &self.bundle);
        c.args(["--known-hosts", &self.known_hosts]);
        if !extra.contains(&"--identity") {
            c.args(["--identity", &self.key]);
        }
        c.args(extra);
        Self::run(c)
    }

    /// A seed of an address that is not a lab host.
    pub fn seed_address(&self, address: &str, state: &Path, extra: &[&str]) -> Run {
        let mut c = self.command(address, state, &self.bundle);
        c.args(extra);
        Self::run(c)
    }

    /// A seed with `--host-key` pinned.
    pub fn seed_pinned(&self, address: &str, state: &Path, host_key: &str) -> Run {
        let mut c = self.command(address, state, &self.bundle);
        c.args(["--identity", &self.key, "--host-key", host_key]);
        Self::run(c)
    }

    /// A seed from another bundle directory.
    pub fn seed_with_bundle(&self, lab: &Lab, host: &str, state: &Path, bundle: &Path) -> Run {
        let address = lab.host(host).unwrap().address.to_string();
        let mut c = self.command(&address, state, bundle);
        c.args(["--known-hosts", &self.known_hosts, "--identity", &self.key]);
        Self::run(c)
    }

    /// Starts a seed and SIGKILLs it (by its PID) once the host's journal
    /// shows `task` running or done; returns the task it was in.
    pub fn seed_killed_after(
        &self,
        lab: &Lab,
        host: &str,
        state: &Path,
        task: &str,
        extra: &[&str],
    ) -> String {
        let address = lab.host(host).unwrap().address.to_string();
        let mut c = self.command(&address, state, &self.bundle);
        c.args(["--known-hosts", &self.known_hosts, "--identity", &self.key])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = c.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the seed ended ({status}) before reaching {task}");
            }
            let journal = lab
                .exec(host, "cat /var/lib/kubeseed/journal/seed.json 2>/dev/null")
                .map(|o| o.stdout_text())
                .unwrap_or_default();
            if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&journal) {
                let running = doc["running"].as_str().unwrap_or_default().to_owned();
                let done = doc["done"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|t| t == task));
                if running == task || done {
                    child.kill().unwrap();
                    child.wait().unwrap();
                    return running;
                }
            }
            assert!(Instant::now() < deadline, "the seed never reached {task}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// An ed25519 key pair at `path` (and `path.pub`).
pub fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// A copy of a bundle (hard links, so the copy's files can be replaced
/// without touching the original's).
pub fn copy_bundle(from: &Path, to: &Path) -> PathBuf {
    let status = Command::new("cp")
        .arg("-al")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
    to.to_path_buf()
}

/// Replaces `file` by a copy with one byte changed (the hard link to the
/// original is broken first).
pub fn flip_a_byte(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::remove_file(file).unwrap();
    std::fs::write(file, bytes).unwrap();
}

/// The ids of the tasks a `--report` file says changed something.
pub fn changed_tasks(report: &Path) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap();
    doc["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["outcome"] != "unchanged")
        .map(|t| t["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub fn kubectl(state: &Path) -> Command {
    let toolchain = Toolchain::locate().unwrap();
    let mut c = Command::new(toolchain.kubectl());
    c.arg("--kubeconfig").arg(state.join("admin.conf"));
    c
}

/// Runs kubectl with the seed's admin kubeconfig; stdout.
pub fn kubectl_ok(state: &Path, args: &[&str]) -> String {
    let out = kubectl(state).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `f` until it is true or `limit` passes.
pub fn eventually(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen in {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn http_get(address: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(3)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

/// Everything a seeded host must show.
pub fn the_seed_works(lab: &Lab, host: &str, state: &Path) {
    let admin = state.join("admin.conf");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&admin).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "admin.conf must be owner-only");
    assert_eq!(kubectl_ok(state, &["get", "--raw", "/readyz"]).trim(), "ok");

    let ready = kubectl_ok(
        state,
        &[
            "get",
            "node",
            host,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ],
    );
    assert_eq!(ready.trim(), "True", "Node {host} is not Ready");
    let roles = kubectl_ok(
        state,
        &["get", "node", host, "-o", "jsonpath={.metadata.labels}"],
    );
    assert!(
        roles.contains("node-role.kubernetes.io/control-plane"),
        "{roles}"
    );

    // The operator runs as a Pod on the host and answers on its port.
    eventually("an operator Pod Running", Duration::from_secs(60), || {
        kubectl_ok(
            state,
            &[
                "-n",
                "kubeseed-system",
                "get",
                "pods",
                "-l",
                "app.kubernetes.io/name=kubeseed",
                "-o",
                "jsonpath={.items[*].status.phase}",
            ],
        )
        .contains("Running")
    });
    let address = SocketAddr::from((lab.host(host).unwrap().address, 8481));
    let readyz = http_get(address, "/readyz").unwrap_or_default();
    assert!(
        readyz.starts_with("HTTP/1.1 200") || readyz.starts_with("HTTP/1.0 200"),
        "operator /readyz: {readyz}"
    );

    // The members are Ready, and stay so once the operator has seen them.
    std::thread::sleep(Duration::from_secs(3));
    for kind in ["controlplanemembers.kubeseed.io", "etcdmembers.kubeseed.io"] {
        let status = kubectl_ok(
            state,
            &[
                "get",
                kind,
                host,
                "-o",
                "jsonpath={.status.phase} {.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Provisioned\")].status}",
            ],
        );
        assert_eq!(status.trim(), "Ready True True", "{kind} {host}");
    }
    let owner = kubectl_ok(
        state,
        &[
            "get",
            "etcdmembers.kubeseed.io",
            host,
            "-o",
            "jsonpath={.metadata.ownerReferences[0].kind}",
        ],
    );
    assert_eq!(owner.trim(), "ControlPlaneMember");

    // Keys on the host as decided (kubeadm's placement): the cluster CA and
    // service-account keys owner-only, the etcd and front-proxy CA keys not
    // there at all.
    let keys = lab
        .exec_ok(
            host,
            "cd /etc/kubernetes/pki && stat -c '%n %a' ca.key sa.key && ls etcd/ca.key front-proxy-ca.key 2>&1 | sed 's/^/absent? /'",
        )
        .unwrap();
    assert!(
        keys.contains("ca.key 600") && keys.contains("sa.key 600"),
        "{keys}"
    );
    assert!(
        keys.contains("cannot access 'etcd/ca.key'")
            && keys.contains("cannot access 'front-proxy-ca.key'"),
        "{keys}"
    );

    // Secrets are ciphertext in etcd.
    let raw = lab
        .exec_ok(
            host,
            "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \
             --cert=/etc/kubernetes/pki/apiserver-etcd-client.crt --key=/etc/kubernetes/pki/apiserver-etcd-client.key \
             get /registry/secrets/kubeseed-system/kubeseed-cluster --print-value-only | head -c 64",
        )
        .unwrap();
    assert!(
        raw.starts_with("k8s:enc:"),
        "a Secret in etcd is not encrypted: {raw:?}"
    );
    assert!(!raw.contains("BEGIN"), "{raw}");
}
