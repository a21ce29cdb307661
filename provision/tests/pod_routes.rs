//! The pod routes' script and plan against a real kernel: each test makes
//! its own network namespace (a veth pair with 10.77.0.1/24 and
//! fd00:77::1/64, and routes that are not kubeseed's), deleted when the
//! test ends, panics included. Nothing outside the namespaces is routed.
//!
//! Needs root (`ip netns`); skipped with a message otherwise.
//!
//! The script runs from a temporary directory with the routes file given
//! as its argument. The plan runs through [`NamespaceHost`]: a [`Host`]
//! whose commands run inside the namespace with kubeseed's directories
//! moved into a temporary root, and with a stand-in `systemctl` (the test
//! machine need not run systemd) that records enabled/active and runs the
//! unit's `ExecStart=` on start and restart, as systemd does for a oneshot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod render_support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use kubeseed_provision::cluster::Cidr;
use kubeseed_provision::host::{BoxReader, Host};
use kubeseed_provision::plans;
use kubeseed_provision::render::{
    POD_ROUTES_FILE, POD_ROUTES_SCRIPT, POD_ROUTES_UNIT, PodRoute, PodRoutesInput,
};
use kubeseed_provision::ssh::{
    ExecOptions, ExecOutput, ExitStatus, FileSpec, SshError, Step, UploadOutcome,
};
use kubeseed_provision::tasks::{Outcome, Report, Runner, Task};
use render_support::is_root;
use sha2::{Digest, Sha256};

/// `true` when the test can run; prints why not otherwise.
fn can_run(test: &str) -> bool {
    if is_root() {
        return true;
    }
    eprintln!("{test}: skipped: it needs root to create network namespaces (ip netns add)");
    false
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A network namespace of this test, deleted on drop (with its interfaces
/// and routes).
struct Netns {
    name: String,
}

impl Netns {
    /// A namespace with `v0` (10.77.0.1/24, fd00:77::1/64) up, its veth peer
    /// `v1`, and two routes that are not kubeseed's: 10.99.0.0/24 and
    /// fd00:99::/64 through a neighbour, and 10.98.0.0/24 with protocol
    /// `static`. A veth pair rather than a dummy: it needs no kernel module.
    fn new() -> Netns {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "ks-podroutes-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(out.status.success(), "ip netns add {name}: {}", text(&out));
        let ns = Netns { name };
        for cmd in [
            "ip link set lo up",
            "ip link add v0 type veth peer name v1",
            "ip link set v0 up",
            "ip link set v1 up",
            "ip addr add 10.77.0.1/24 dev v0",
            // No duplicate address detection: the address is usable at once.
            "ip -6 addr add fd00:77::1/64 dev v0 nodad",
            "ip route add 10.99.0.0/24 via 10.77.0.9",
            "ip route add 10.98.0.0/24 via 10.77.0.9 proto static",
            "ip -6 route add fd00:99::/64 via fd00:77::9",
        ] {
            ns.ok(cmd);
        }
        ns
    }

    /// Runs `cmd` with `sh -c` inside the namespace.
    fn sh(&self, cmd: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, "sh", "-c", cmd])
            .output()
            .unwrap()
    }

    /// Runs `cmd`; it must succeed.
    fn ok(&self, cmd: &str) -> String {
        let out = self.sh(cmd);
        assert!(out.status.success(), "{cmd}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// kubeseed's routes: `ip route show` lines of protocol 152, both families.
    fn ours(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for family in ["-4", "-6"] {
            let out = self.ok(&format!("ip {family} route show table main proto 152"));
            lines.extend(out.lines().map(|l| l.trim().to_owned()));
        }
        lines
    }

    /// Every other route of the main table, both families.
    fn others(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for family in ["-4", "-6"] {
            let out = self.ok(&format!("ip {family} route show table main"));
            lines.extend(
                out.lines()
                    .filter(|l| !l.contains(" proto 152"))
                    .map(|l| l.trim().to_owned()),
            );
        }
        lines
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let out = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output();
        if !matches!(&out, Ok(o) if o.status.success()) {
            eprintln!("cannot delete network namespace {}: {out:?}", self.name);
        }
    }
}

fn route(node: &str, cidr: &str, via: &str) -> PodRoute {
    PodRoute {
        node: node.into(),
        cidr: Cidr::parse(cidr).unwrap(),
        via: via.parse().unwrap(),
    }
}

/// Three nodes' ranges on the namespace's link, one of them IPv6.
fn three_routes() -> PodRoutesInput {
    PodRoutesInput {
        routes: vec![
            route("w1", "10.244.1.0/24", "10.77.0.2"),
            route("w2", "10.244.2.0/24", "10.77.0.3"),
            route("w3", "fd00:10:244:3::/64", "fd00:77::4"),
        ],
    }
}

const THREE_ROUTES: [&str; 3] = [
    "10.244.1.0/24 via 10.77.0.2 dev v0",
    "10.244.2.0/24 via 10.77.0.3 dev v0",
    "fd00:10:244:3::/64 via fd00:77::4 dev v0 metric 1024 pref medium",
];

/// The rendered script and routes file in a temporary directory.
struct Staged {
    dir: tempfile::TempDir,
}

impl Staged {
    fn new(input: &PodRoutesInput) -> Staged {
        let staged = Staged {
            dir: tempfile::tempdir().unwrap(),
        };
        let files = input.render().unwrap();
        std::fs::write(staged.script(), files.get(POD_ROUTES_SCRIPT).unwrap()).unwrap();
        staged.write(input);
        staged
    }

    fn script(&self) -> PathBuf {
        self.dir.path().join("pod-routes.sh")
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("pod-routes")
    }

    fn write(&self, input: &PodRoutesInput) {
        let files = input.render().unwrap();
        std::fs::write(self.file(), files.get(POD_ROUTES_FILE).unwrap()).unwrap();
    }

    /// `sh pod-routes.sh [--check] FILE` inside `ns`.
    fn run(&self, ns: &Netns, check: bool) -> Output {
        ns.sh(&format!(
            "sh {} {}{}",
            self.script().display(),
            if check { "--check " } else { "" },
            self.file().display()
        ))
    }

    fn sync(&self, ns: &Netns) -> String {
        let out = self.run(ns, false);
        assert!(out.status.success(), "sync failed: {}", text(&out));
        text(&out)
    }

    fn matches(&self, ns: &Netns) -> bool {
        self.run(ns, true).status.success()
    }
}

/// `ip monitor route` in a namespace: what the kernel announces while it
/// runs. A marker route, seen before and after, frames the part a test
/// looks at, so a monitor that subscribed late cannot pass for a quiet one.
struct Monitor {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Monitor {
    fn start(ns: &Netns) -> Monitor {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "ip", "monitor", "route"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Monitor { child, lines }
    }

    /// Adds and removes a marker route until the monitor has seen both,
    /// then forgets everything seen and returns the main table's changes
    /// announced before the marker (the local table's are the kernel's own:
    /// IPv6 link-local addresses settling).
    fn mark(&self, ns: &Netns, marker: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        // Each try moves the marker to the other gateway: replacing a route
        // with an identical one may announce nothing, so a monitor that
        // subscribed after the first try would wait in vain (seen in CI
        // under load).
        for gateway in ["10.77.0.9", "10.77.0.8"].iter().cycle() {
            ns.ok(&format!(
                "ip route replace {marker} via {gateway} proto static"
            ));
            std::thread::sleep(Duration::from_millis(100));
            if self
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(marker))
            {
                break;
            }
            assert!(Instant::now() < deadline, "ip monitor saw nothing");
        }
        ns.ok(&format!("ip route del {marker} proto static"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self
            .lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("Deleted") && l.contains(marker))
        {
            assert!(
                Instant::now() < deadline,
                "ip monitor missed the marker's removal"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let lines = std::mem::take(&mut *self.lines.lock().unwrap());
        lines
            .into_iter()
            .take_while(|l| !l.contains(marker))
            .filter(|l| !l.contains("table local"))
            .collect()
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_script_makes_the_kernels_routes_equal_to_the_file() {
    if !can_run("the_script_makes_the_kernels_routes_equal_to_the_file") {
        return;
    }
    let ns = Netns::new();
    let unrelated = ns.others();
    let staged = Staged::new(&three_routes());

    assert!(!staged.matches(&ns), "--check passed with no routes made");
    staged.sync(&ns);
    assert_eq!(ns.ours(), THREE_ROUTES);
    assert!(staged.matches(&ns));
    assert_eq!(ns.others(), unrelated, "another route changed");

    // Again: nothing to do, and the kernel announces no route change.
    let monitor = Monitor::start(&ns);
    monitor.mark(&ns, "192.0.2.0/24");
    let said = staged.sync(&ns);
    let announced = monitor.mark(&ns, "198.51.100.0/24");
    assert_eq!(
        announced,
        Vec::<String>::new(),
        "a no-op run changed routes"
    );
    // The monitor does see what a run changes.
    ns.ok("ip route flush table main proto 152");
    monitor.mark(&ns, "192.0.2.0/24");
    staged.sync(&ns);
    let announced = monitor.mark(&ns, "198.51.100.0/24");
    assert_eq!(announced.len(), 2, "{announced:?}");
    assert!(!said.contains("removed"), "{said}");
    assert_eq!(ns.ours(), THREE_ROUTES);

    // A line removed: its route goes, and only it.
    let mut two = three_routes();
    two.routes.remove(1);
    staged.write(&two);
    assert!(!staged.matches(&ns), "--check missed the removed line");
    let said = staged.sync(&ns);
    assert!(
        said.contains("removed 10.244.2.0/24 via 10.77.0.3"),
        "{said}"
    );
    assert_eq!(ns.ours(), [THREE_ROUTES[0], THREE_ROUTES[2]]);
    assert_eq!(ns.others(), unrelated, "another route changed");

    // A next hop moved: replaced in place.
    let mut moved = two.clone();
    moved.routes[0].via = "10.77.0.5".parse().unwrap();
    staged.write(&moved);
    staged.sync(&ns);
    assert_eq!(
        ns.ours(),
        ["10.244.1.0/24 via 10.77.0.5 dev v0", THREE_ROUTES[2]]
    );

    // Flushed by hand: --check sees it, a run makes them again.
    ns.ok("ip route flush table main proto 152; ip -6 route flush table main proto 152");
    assert!(!staged.matches(&ns));
    staged.sync(&ns);
    assert!(staged.matches(&ns));
    assert_eq!(ns.others(), unrelated, "another route changed");

    // Routes of protocol 152 the file never had (made by hand, of every
    // shape) are removed: the protocol is kubeseed's.
    for stray in [
        "ip route add 10.244.7.0/24 via 10.77.0.2 proto 152",
        "ip route add 10.244.8.8/32 via 10.77.0.2 proto 152",
        "ip route add unreachable 10.244.9.0/24 proto 152",
        "ip -6 route add fd00:10:244:9::/64 via fd00:77::2 proto 152",
    ] {
        ns.ok(stray);
    }
    assert!(!staged.matches(&ns));
    staged.sync(&ns);
    assert_eq!(
        ns.ours(),
        ["10.244.1.0/24 via 10.77.0.5 dev v0", THREE_ROUTES[2]]
    );

    // No routes at all: every route of protocol 152 goes, nothing else.
    staged.write(&PodRoutesInput::default());
    staged.sync(&ns);
    assert_eq!(ns.ours(), Vec::<String>::new());
    assert!(staged.matches(&ns));
    assert_eq!(ns.others(), unrelated, "another route changed");
}

#[test]
fn a_destination_another_route_holds_is_left_to_it() {
    if !can_run("a_destination_another_route_holds_is_left_to_it") {
        return;
    }
    let ns = Netns::new();
    // As a node's own range is on its bridge.
    ns.ok("ip route add 10.244.1.0/24 dev v1 proto kernel scope link");
    let unrelated = ns.others();
    let staged = Staged::new(&three_routes());
    let out = staged.run(&ns, false);
    assert!(!out.status.success(), "a taken destination went unreported");
    let said = text(&out);
    assert!(
        said.contains("10.244.1.0/24 already has a route that is not kubeseed's"),
        "{said}"
    );
    assert_eq!(ns.others(), unrelated, "the other route was changed");
    // The other routes are made all the same.
    assert_eq!(ns.ours(), THREE_ROUTES[1..]);
    assert!(!staged.matches(&ns));
}

#[test]
fn a_malformed_file_changes_nothing() {
    if !can_run("a_malformed_file_changes_nothing") {
        return;
    }
    let ns = Netns::new();
    let staged = Staged::new(&three_routes());
    staged.sync(&ns);
    let mut text_now = std::fs::read_to_string(staged.file()).unwrap();
    text_now.push_str("10.244.5.0/24 dev v0\n");
    std::fs::write(staged.file(), text_now).unwrap();
    let out = staged.run(&ns, false);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not `DESTINATION via NEXT-HOP # NODE`"),
        "{}",
        text(&out)
    );
    assert_eq!(ns.ours(), THREE_ROUTES);
    std::fs::remove_file(staged.file()).unwrap();
    let out = staged.run(&ns, false);
    assert!(!out.status.success());
    assert!(text(&out).contains("cannot read"), "{}", text(&out));
    assert_eq!(ns.ours(), THREE_ROUTES);
}

/// A [`Host`] that is a network namespace of this test: commands run in it
/// with `sh -c`, and the paths under kubeseed's directories, in commands
/// and file operations alike, are moved under a temporary root. `systemctl`
/// is a stand-in (see the module's notes).
#[derive(Debug)]
struct NamespaceHost {
    ns: String,
    root: tempfile::TempDir,
}

/// The host directories the plans touch, moved under the root.
const MOVED: [&str; 3] = ["/etc/kubeseed", "/etc/systemd/system", "/var/lib/kubeseed"];

impl NamespaceHost {
    fn new(ns: &Netns) -> NamespaceHost {
        let host = NamespaceHost {
            ns: ns.name.clone(),
            root: tempfile::tempdir().unwrap(),
        };
        let bin = host.root.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let stub = bin.join("systemctl");
        std::fs::write(&stub, systemctl_stub(host.root.path())).unwrap();
        std::fs::set_permissions(&stub, std::fs::Permissions::from_mode(0o755)).unwrap();
        host
    }

    fn moved(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for dir in MOVED {
            out = out.replace(dir, &format!("{}{dir}", self.root.path().display()));
        }
        out
    }

    fn local(&self, path: &str) -> PathBuf {
        assert!(
            MOVED.iter().any(|d| path.starts_with(d)),
            "the plan touched {path}, outside the moved directories"
        );
        PathBuf::from(self.moved(path))
    }

    fn exists(&self, path: &str) -> bool {
        self.local(path).symlink_metadata().is_ok()
    }

    /// The stand-in's record of `unit`: (enabled, active).
    fn unit_state(&self, unit: &str) -> (bool, bool) {
        let state = self.root.path().join("systemctl");
        (
            state.join(format!("{unit}.enabled")).exists(),
            state.join(format!("{unit}.active")).exists(),
        )
    }

    fn io(&self, step: Step, what: &str, source: std::io::Error) -> SshError {
        SshError::Io {
            host: self.ns.clone(),
            step,
            what: what.to_owned(),
            source,
        }
    }
}

/// `systemctl` for a machine without systemd: enabled and active are files
/// under ROOT/systemctl; `enable` also makes the `.wants` link; `start` and
/// `restart` run the unit's `ExecStart=` (its paths moved under ROOT) and
/// leave the unit active only if it succeeded, as for a oneshot that remains.
fn systemctl_stub(root: &Path) -> String {
    let root = root.display();
    format!(
        r#"#!/bin/sh
state={root}/systemctl
units={root}/etc/systemd/system
mkdir -p "$state"
echo "systemctl $*" >>"$state/log"
quiet= now= verb= list=
for a in "$@"; do
  case $a in
    --quiet | -q) quiet=1 ;;
    --now) now=1 ;;
    -*) ;;
    *) if [ -z "$verb" ]; then verb=$a; else list="$list $a"; fi ;;
  esac
done
rc=0
for u in $list; do
  case $verb in
    enable)
      mkdir -p "$units/multi-user.target.wants"
      ln -sf "../$u" "$units/multi-user.target.wants/$u"
      touch "$state/$u.enabled" ;;
    disable)
      rm -f "$units/multi-user.target.wants/$u" "$state/$u.enabled"
      [ -z "$now" ] || rm -f "$state/$u.active" ;;
    stop) rm -f "$state/$u.active" ;;
    start | restart)
      cmd=$(sed -n 's/^ExecStart=//p' "$units/$u" | sed 's#/etc/kubeseed#{root}/etc/kubeseed#g')
      if [ -n "$cmd" ] && sh -c "$cmd"; then touch "$state/$u.active"; else rm -f "$state/$u.active"; rc=1; fi ;;
    is-enabled)
      if [ -e "$state/$u.enabled" ]; then s=enabled; else s=disabled; rc=1; fi
      [ -n "$quiet" ] || echo "$s" ;;
    is-active)
      if [ -e "$state/$u.active" ]; then s=active; else s=inactive; rc=3; fi
      [ -n "$quiet" ] || echo "$s" ;;
  esac
done
exit "$rc"
"#
    )
}

impl Host for NamespaceHost {
    fn name(&self) -> &str {
        &self.ns
    }

    fn exec<'a>(
        &'a self,
        command: &'a str,
        opts: ExecOptions,
    ) -> BoxFuture<'a, Result<ExecOutput, SshError>> {
        Box::pin(async move {
            let path = format!(
                "{}/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                self.root.path().display()
            );
            let mut cmd = tokio::process::Command::new("ip");
            cmd.args(["netns", "exec", &self.ns, "sh", "-c", &self.moved(command)])
                .env("PATH", path)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = cmd
                .spawn()
                .map_err(|e| self.io(Step::Exec, "spawn ip netns exec", e))?;
            if let (Some(input), Some(mut stdin)) = (opts.stdin, child.stdin.take()) {
                use tokio::io::AsyncWriteExt as _;
                stdin
                    .write_all(&input)
                    .await
                    .map_err(|e| self.io(Step::Exec, "write stdin", e))?;
            }
            drop(child.stdin.take());
            let out = child
                .wait_with_output()
                .await
                .map_err(|e| self.io(Step::Exec, "wait", e))?;
            Ok(ExecOutput {
                status: match out.status.code() {
                    Some(code) => ExitStatus::Code(code as u32),
                    None => ExitStatus::Signal("killed".into()),
                },
                stdout: out.stdout,
                stderr: out.stderr,
                truncated: false,
            })
        })
    }

    fn write_file<'a>(
        &'a self,
        contents: &'a [u8],
        path: &'a str,
        spec: &'a FileSpec,
    ) -> BoxFuture<'a, Result<UploadOutcome, SshError>> {
        Box::pin(async move {
            let local = self.local(path);
            let write = || -> std::io::Result<()> {
                std::fs::create_dir_all(local.parent().unwrap_or(Path::new("/")))?;
                std::fs::write(&local, contents)?;
                std::fs::set_permissions(&local, std::fs::Permissions::from_mode(spec.mode))
            };
            write().map_err(|e| self.io(Step::Upload, path, e))?;
            Ok(UploadOutcome::Uploaded {
                bytes: contents.len() as u64,
                sha256: hex::encode(Sha256::digest(contents)),
            })
        })
    }

    fn upload<'a>(
        &'a self,
        _local: &'a Path,
        path: &'a str,
        _spec: &'a FileSpec,
    ) -> BoxFuture<'a, Result<UploadOutcome, SshError>> {
        Box::pin(async move {
            Err(SshError::InvalidInput(format!(
                "the pod routes' plan uploads no local file ({path})"
            )))
        })
    }

    fn upload_reader<'a>(
        &'a self,
        _reader: BoxReader<'a>,
        path: &'a str,
        _spec: &'a FileSpec,
    ) -> BoxFuture<'a, Result<UploadOutcome, SshError>> {
        Box::pin(async move {
            Err(SshError::InvalidInput(format!(
                "the pod routes' plan streams no file ({path})"
            )))
        })
    }

    fn read_file<'a>(
        &'a self,
        path: &'a str,
        _max_bytes: u64,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, SshError>> {
        Box::pin(async move {
            match std::fs::read(self.local(path)) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(self.io(Step::Download, path, e)),
            }
        })
    }

    fn remove_file<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, SshError>> {
        Box::pin(async move {
            match std::fs::remove_file(self.local(path)) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(self.io(Step::Remove, path, e)),
            }
        })
    }

    fn remove_tree<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, SshError>> {
        Box::pin(async move {
            match std::fs::remove_dir_all(self.local(path)) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(self.io(Step::Remove, path, e)),
            }
        })
    }
}

async fn run(host: &NamespaceHost, tasks: &[Box<dyn Task>]) -> Report {
    match Runner::new(host).run(tasks).await {
        Ok(report) => report,
        Err(e) => panic!("{e}"),
    }
}

/// Which tasks changed the host.
fn changed(report: &Report) -> Vec<&str> {
    report
        .tasks
        .iter()
        .filter(|t| t.outcome != Outcome::Unchanged)
        .map(|t| t.id.as_str())
        .collect()
}

#[tokio::test]
async fn the_plan_keeps_the_routes_and_the_teardown_removes_them() {
    if !can_run("the_plan_keeps_the_routes_and_the_teardown_removes_them") {
        return;
    }
    let ns = Netns::new();
    let unrelated = ns.others();
    let host = NamespaceHost::new(&ns);
    let unit_file = format!("/etc/systemd/system/{POD_ROUTES_UNIT}");

    // First run: files written, the unit enabled and started (which made
    // the routes), so the sync task finds nothing to do.
    let report = run(&host, &plans::pod_routes(&three_routes()).unwrap()).await;
    assert_eq!(changed(&report), ["pod-routes/files", "pod-routes/service"]);
    assert_eq!(ns.ours(), THREE_ROUTES);
    assert_eq!(host.unit_state(POD_ROUTES_UNIT), (true, true));
    let mode = |p: &str| {
        std::fs::metadata(host.local(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode(POD_ROUTES_SCRIPT), 0o755);
    assert_eq!(mode(POD_ROUTES_FILE), 0o644);
    assert_eq!(mode(&unit_file), 0o644);

    // Nothing changed: nothing done.
    let report = run(&host, &plans::pod_routes(&three_routes()).unwrap()).await;
    assert_eq!(changed(&report), Vec::<&str>::new());

    // Flushed by hand, files unchanged: the sync task makes them again.
    ns.ok("ip route flush table main proto 152; ip -6 route flush table main proto 152");
    let report = run(&host, &plans::pod_routes(&three_routes()).unwrap()).await;
    assert_eq!(changed(&report), ["pod-routes/sync"]);
    assert_eq!(ns.ours(), THREE_ROUTES);

    // A node gone: the unit restarts with the new file.
    let mut two = three_routes();
    two.routes.remove(1);
    let report = run(&host, &plans::pod_routes(&two).unwrap()).await;
    assert_eq!(changed(&report), ["pod-routes/files", "pod-routes/service"]);
    assert_eq!(ns.ours(), [THREE_ROUTES[0], THREE_ROUTES[2]]);
    assert_eq!(ns.others(), unrelated, "another route changed");

    // Teardown: unit stopped and disabled, routes and files gone; again,
    // nothing to do.
    let report = run(&host, &plans::teardown_pod_routes()).await;
    assert_eq!(
        changed(&report),
        ["pod-routes/stop", "pod-routes/routes", "pod-routes/files"]
    );
    assert_eq!(ns.ours(), Vec::<String>::new());
    assert_eq!(ns.others(), unrelated, "another route changed");
    assert_eq!(host.unit_state(POD_ROUTES_UNIT), (false, false));
    for path in [
        POD_ROUTES_FILE.to_owned(),
        POD_ROUTES_SCRIPT.to_owned(),
        unit_file.clone(),
        format!("/etc/systemd/system/multi-user.target.wants/{POD_ROUTES_UNIT}"),
        format!("/var/lib/kubeseed/units/{POD_ROUTES_UNIT}.sha256"),
    ] {
        assert!(!host.exists(&path), "{path} is left");
    }
    let report = run(&host, &plans::teardown_pod_routes()).await;
    assert_eq!(changed(&report), Vec::<&str>::new());
}

#[tokio::test]
async fn the_teardown_is_harmless_where_there_never_were_pod_routes() {
    if !can_run("the_teardown_is_harmless_where_there_never_were_pod_routes") {
        return;
    }
    let ns = Netns::new();
    let before = ns.others();
    let host = NamespaceHost::new(&ns);
    let report = run(&host, &plans::teardown_pod_routes()).await;
    assert_eq!(changed(&report), Vec::<&str>::new());
    assert_eq!(ns.others(), before);
}
