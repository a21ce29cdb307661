//! The API load balancer's files are accepted by the real programs, and do
//! what they are for: Debian's `haproxy` (2.6), `nginx` with
//! `libnginx-mod-stream` (1.22) and `keepalived` (2.2.7), installed by
//! `bash e2e/install-packages.sh` (the tests fail with that instruction when
//! one is missing, rather than skip).
//!
//! Files are rendered with a [`Layout`] in a temporary directory, so nothing
//! under `/etc`, `/run` or `/var/lib` is touched. keepalived checks that the
//! configured interface exists, so it runs in a private network namespace
//! (`unshare -n`, so root) with a veth of that name; the scenario that runs
//! keepalived and HAProxy for real does too, and every process it starts
//! dies with the test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod render_support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kubeseed_provision::files::HostFiles;
use kubeseed_provision::pki::ClusterPki;
use kubeseed_provision::render::load_balancer::Layout;
use kubeseed_provision::render::{
    Backend, CheckedFile, LoadBalancerInput, Proxy, RenderedLoadBalancer, paths,
};
use render_support::*;

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The program at its Debian path, or a failure that says how to get it.
fn program(path: &str) -> &str {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: run `bash e2e/install-packages.sh` (as root) to install \
         haproxy, keepalived, nginx-light and libnginx-mod-stream"
    );
    path
}

fn require_root(what: &str) {
    assert!(
        is_root(),
        "{what} needs root: keepalived runs in a private network namespace (unshare -n)"
    );
}

/// A rendered load balancer whose files are in a temporary directory.
struct Staged {
    dir: tempfile::TempDir,
    layout: Layout,
    rendered: RenderedLoadBalancer,
}

impl Staged {
    /// Renders `input` into a temporary layout and writes the support files
    /// there (not the units, not the configurations).
    fn new(input: &LoadBalancerInput) -> Staged {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name).display().to_string();
        let layout = Layout {
            lb_dir: at("lb"),
            run_dir: at("run"),
            state_dir: at("state"),
        };
        std::fs::create_dir_all(&layout.lb_dir).unwrap();
        std::fs::create_dir_all(&layout.run_dir).unwrap();
        let rendered = input.render_in(&layout).unwrap();
        for (path, file) in rendered.support.iter() {
            if path.starts_with(&layout.lb_dir) {
                write(path, &file.contents, file.mode);
            }
        }
        Staged {
            dir,
            layout,
            rendered,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `file` with `contents` where the plan stages it and runs its
    /// validator on that copy, in a network namespace holding `interface`
    /// when one is given.
    fn validate(&self, file: &CheckedFile, contents: &str, interface: Option<&str>) -> Output {
        let staging = format!("{}.kubeseed-new", file.path);
        write(Path::new(&staging), contents, file.mode);
        let command = file.validate_command(&staging);
        match interface {
            None => Command::new("timeout")
                .args(["60", "sh", "-c", &command])
                .output()
                .unwrap(),
            Some(interface) => in_netns(&format!("{}\n{command}", veth(interface))),
        }
    }

    /// Writes the configurations at their paths.
    fn write_configs(&self) {
        for f in [
            &self.rendered.proxy_config,
            &self.rendered.keepalived_config,
        ] {
            write(Path::new(&f.path), &f.contents, f.mode);
        }
    }
}

fn write(path: &Path, contents: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Shell lines that make `name` an interface (a veth, up) in the namespace.
fn veth(name: &str) -> String {
    format!(
        "ip link set lo up && ip link add {name} type veth peer name kseed-peer0 && \
         ip link set kseed-peer0 up && ip link set {name} up || exit 90"
    )
}

/// Runs `script` with bash in a new network namespace; its processes are
/// in the test's process group and die with the namespace's shell's
/// children when it exits (the scripts stop what they start).
fn in_netns(script: &str) -> Output {
    require_root("keepalived");
    Command::new("timeout")
        .args(["120", "unshare", "-n", "bash", "-c", script])
        .output()
        .unwrap()
}

fn assert_valid(case: &str, out: &Output) {
    assert!(out.status.success(), "{case}: refused:\n{}", text(out));
}

fn assert_refused(case: &str, out: &Output, message: &str) {
    assert!(
        !out.status.success(),
        "{case}: a broken configuration was accepted:\n{}",
        text(out)
    );
    assert!(
        text(out).contains(message),
        "{case}: the program's message {message:?} is not in:\n{}",
        text(out)
    );
}

fn with_backends(mut input: LoadBalancerInput, backends: &[(&str, &str)]) -> LoadBalancerInput {
    input.backends = backends
        .iter()
        .map(|(name, address)| Backend {
            name: (*name).into(),
            address: (*address).into(),
            port: 6443,
        })
        .collect();
    input
}

/// `haproxy -c` accepts every rendered configuration without a warning
/// (IPv4 and IPv6 VIPs, no backend at all, a DNS name), and refuses a
/// broken one with HAProxy's message.
#[test]
fn haproxy_accepts_the_configurations_and_refuses_a_broken_one() {
    program("/usr/sbin/haproxy");
    let mut v6 = with_backends(
        lb_nginx_ipv6(),
        &[("master-1", "fd00:213::11"), ("master-2", "localhost")],
    );
    v6.proxy = Proxy::HaProxy;
    v6.programs.proxy = "/usr/sbin/haproxy".into();
    let mut empty = lb_haproxy();
    empty.backends.clear();
    for (case, input) in [("lb-haproxy", lb_haproxy()), ("ipv6", v6), ("empty", empty)] {
        let staged = Staged::new(&input);
        let config = &staged.rendered.proxy_config;
        let out = staged.validate(config, &config.contents, None);
        assert_valid(case, &out);
        assert!(
            !text(&out).contains("[WARNING]") && !text(&out).contains("[ALERT]"),
            "{case}: {}",
            text(&out)
        );
    }

    // A name that does not resolve leaves the server down (init-addr none)
    // instead of failing the whole configuration.
    let input = with_backends(lb_haproxy(), &[("master-1", "master-1.invalid")]);
    let staged = Staged::new(&input);
    let config = &staged.rendered.proxy_config;
    let out = staged.validate(config, &config.contents, None);
    assert_valid("unresolvable", &out);
    assert!(
        text(&out).contains("could not resolve address"),
        "{}",
        text(&out)
    );

    let staged = Staged::new(&lb_haproxy());
    let config = &staged.rendered.proxy_config;
    let broken = config.contents.replace(
        "balance roundrobin",
        "balance roundrobin\n    bogus-keyword on",
    );
    assert_refused(
        "bogus keyword",
        &staged.validate(config, &broken, None),
        "unknown keyword 'bogus-keyword'",
    );
    // The CA file must be there: the validator reads it.
    std::fs::remove_file(staged.layout.ca_file()).unwrap();
    assert_refused(
        "no CA file",
        &staged.validate(config, &config.contents, None),
        "ca.crt",
    );
}

/// `nginx -t` (Debian's nginx with the stream module loaded as a dynamic
/// module) accepts every rendered configuration, the placeholder upstream
/// of a host without backends included; it refuses a broken one, a
/// backend name it cannot resolve, and a `stream` block without the module.
#[test]
fn nginx_accepts_the_configurations_and_refuses_a_broken_one() {
    program("/usr/sbin/nginx");
    let resolvable = with_backends(
        lb_nginx_ipv6(),
        &[("master-1", "fd00:213::11"), ("master-2", "localhost")],
    );
    let mut v4 = lb_haproxy();
    v4.proxy = Proxy::Nginx;
    v4.programs.proxy = "/usr/sbin/nginx".into();
    v4.nginx_stream_module = lb_nginx_ipv6().nginx_stream_module;
    for (case, input) in [
        ("ipv6", resolvable),
        ("ipv4", v4),
        ("lb-nginx-alone", lb_nginx_alone()),
    ] {
        let staged = Staged::new(&input);
        let config = &staged.rendered.proxy_config;
        let out = staged.validate(config, &config.contents, None);
        assert_valid(case, &out);
        assert!(text(&out).trim().is_empty(), "{case}: {}", text(&out));
    }

    let staged = Staged::new(&lb_nginx_ipv6());
    let config = &staged.rendered.proxy_config;
    // master-2.lab.internal does not resolve here: nginx resolves upstream
    // names when it loads the configuration, and refuses it.
    assert_refused(
        "unresolvable",
        &staged.validate(config, &config.contents, None),
        "host not found in upstream",
    );
    let staged = Staged::new(&lb_nginx_alone());
    let config = &staged.rendered.proxy_config;
    let broken = config.contents.replace(
        "proxy_timeout 1h;",
        "proxy_timeout 1h;\n        bogus_directive on;",
    );
    assert_refused(
        "bogus directive",
        &staged.validate(config, &broken, None),
        "unknown directive \"bogus_directive\"",
    );
    let mut built_in = lb_nginx_alone();
    built_in.nginx_stream_module = None;
    let staged = Staged::new(&built_in);
    let config = &staged.rendered.proxy_config;
    assert_refused(
        "no stream module",
        &staged.validate(config, &config.contents, None),
        "unknown directive \"stream\"",
    );
}

/// `keepalived -t` accepts every rendered configuration (unicast with
/// peers, multicast alone, IPv6, the longest advert interval), its
/// realtime priority included, and refuses a broken one.
#[test]
fn keepalived_accepts_the_configurations_and_refuses_a_broken_one() {
    program("/usr/sbin/keepalived");
    let mut slowest = lb_haproxy();
    slowest.vrrp.advert_interval_ms = 40_950;
    for (case, input) in [
        ("lb-haproxy", lb_haproxy()),
        ("lb-nginx-ipv6", lb_nginx_ipv6()),
        ("lb-nginx-alone", lb_nginx_alone()),
        ("40.95 s", slowest),
    ] {
        let staged = Staged::new(&input);
        let config = &staged.rendered.keepalived_config;
        assert!(config.contents.contains("vrrp_rt_priority 50"));
        let out = staged.validate(config, &config.contents, Some(&input.interface));
        assert_valid(case, &out);
        assert!(text(&out).trim().is_empty(), "{case}: {}", text(&out));
    }

    let input = lb_haproxy();
    let staged = Staged::new(&input);
    let config = &staged.rendered.keepalived_config;
    let check = |case: &str, broken: String, message: &str| {
        let out = staged.validate(config, &broken, Some(&input.interface));
        assert_refused(case, &out, message);
    };
    check(
        "bogus keyword",
        config.contents.replace("advert_int", "advert_intx"),
        "Unknown keyword 'advert_intx'",
    );
    // keepalived does check the realtime priority it is given.
    check(
        "realtime priority",
        config
            .contents
            .replace("vrrp_rt_priority 50", "vrrp_rt_priority 100"),
        "greater than maximum 99",
    );
    // The interface must exist on the host.
    let out = staged.validate(config, &config.contents, Some("eth9"));
    assert_refused("no interface", &out, "doesn't exist");
    // A check script anyone may change is refused (enable_script_security).
    let script = staged.layout.check_script();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = staged.validate(config, &config.contents, Some(&input.interface));
    assert_refused("insecure script", &out, "insecure");
}

/// A root directory with the distribution's units and stub programs, where
/// `systemd-analyze verify --root` checks units without a running systemd.
fn verify_root(units: &[(String, String)]) -> (tempfile::TempDir, Output) {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/lib/systemd")).unwrap();
    std::fs::create_dir_all(r.join("etc/systemd/system")).unwrap();
    let cp = Command::new("cp")
        .args(["-a", "/lib/systemd/system"])
        .arg(r.join("usr/lib/systemd/"))
        .status()
        .unwrap();
    assert!(cp.success());
    for stub in [
        "usr/sbin/haproxy",
        "usr/sbin/nginx",
        "usr/sbin/keepalived",
        "bin/kill",
    ] {
        write(&r.join(stub), "#!/bin/sh\n", 0o755);
    }
    let mut names = Vec::new();
    for (name, text) in units {
        std::fs::write(r.join("etc/systemd/system").join(name), text).unwrap();
        names.push(name.clone());
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", r.display()))
        .args(&names)
        .output()
        .unwrap();
    (root, out)
}

fn units(files: &HostFiles) -> Vec<(String, String)> {
    files
        .iter()
        .filter(|(p, _)| p.starts_with(paths::SYSTEMD_DIR))
        .map(|(p, f)| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                f.contents.clone(),
            )
        })
        .collect()
}

/// systemd's own parser accepts every rendered unit without a warning.
#[test]
fn systemd_verifies_the_units() {
    for case in lb_cases() {
        let units = units(&case.files);
        assert_eq!(units.len(), 2, "{}", case.name);
        let (_root, out) = verify_root(&units);
        assert!(
            out.status.success() && text(&out).trim().is_empty(),
            "{}: {}",
            case.name,
            text(&out)
        );
    }
    // And it does complain about a broken one.
    let mut units = units(&lb_cases()[0].files);
    units[0].1 = units[0].1.replace("KillMode=mixed", "KillMode=mixedx");
    let (_root, out) = verify_root(&units);
    assert!(text(&out).contains("mixedx"), "{}", text(&out));
}

/// A free TCP port on loopback (taken and released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child in its own process group, killed with the group on drop.
struct Group(Child);

impl Group {
    fn spawn(command: &mut Command) -> Group {
        Group(command.process_group(0).spawn().unwrap())
    }

    /// Sends `signal` to the leader only (the master process).
    fn signal(&self, signal: &str) {
        Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .unwrap();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

/// An `openssl s_server` answering every HTTPS GET with 200, with the
/// certificate and key at `/etc/kubernetes/pki/apiserver.*` of `files`.
fn tls_server(dir: &Path, name: &str, files: &HostFiles, port: u16) -> Group {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let pki = "/etc/kubernetes/pki";
    write(
        &cert,
        files.get(format!("{pki}/apiserver.crt")).unwrap(),
        0o644,
    );
    write(
        &key,
        files.get(format!("{pki}/apiserver.key")).unwrap(),
        0o600,
    );
    Group::spawn(
        Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// HAProxy's stats as `(server, status, check status)` rows of the
/// apiservers' backend, read from the stats socket as the operator does.
fn backend_stats(socket: &str) -> Option<Vec<(String, String, String)>> {
    let mut s = std::os::unix::net::UnixStream::connect(socket).ok()?;
    s.write_all(b"GET /;csv HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    let (head, mut rest) = body.split_once("\r\n\r\n")?;
    // HAProxy answers HTTP/1.1 with chunked transfer encoding.
    let mut csv = String::new();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        loop {
            let (size, after) = rest.split_once("\r\n")?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            csv.push_str(after.get(..size)?);
            rest = after.get(size + 2..)?;
        }
    } else {
        csv.push_str(rest);
    }
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (px, sv, status, check) = (
        col("pxname")?,
        col("svname")?,
        col("status")?,
        col("check_status")?,
    );
    Some(
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > check && f[px] == "kube_apiservers" && f[sv] != "BACKEND")
            .map(|f| (f[sv].to_owned(), f[status].to_owned(), f[check].to_owned()))
            .collect(),
    )
}

/// Polls `f` every 200 ms for up to `limit`.
fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A TLS handshake to `127.0.0.1:port` for the name `kubernetes`, verified
/// with `ca`: true when it succeeds.
fn tls_through(port: u16, ca: &str) -> bool {
    Command::new("timeout")
        .args([
            "10",
            "openssl",
            "s_client",
            "-brief",
            "-verify_return_error",
        ])
        .arg("-connect")
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", "kubernetes", "-CAfile", ca])
        .stdin(Stdio::null())
        .output()
        .unwrap()
        .status
        .success()
}

/// HAProxy runs the rendered configuration as its unit does (`-Ws`):
/// the stats socket answers the operator's CSV query; `/readyz` over TLS
/// marks the apiserver with a certificate from the cluster CA up, and the
/// one whose certificate another CA signed, or whose port is closed, down;
/// clients reach the live apiserver through it; and a reload (`USR2`, the
/// unit's `ExecReload`) keeps all of that.
#[test]
fn haproxy_checks_readyz_with_tls_and_serves_its_stats() {
    let haproxy = program("/usr/sbin/haproxy");
    program("/usr/bin/openssl");
    let pki = ClusterPki::generate(cluster()).unwrap();
    let foreign = ClusterPki::generate(cluster()).unwrap();
    let (live, other_ca, closed, port) = (free_port(), free_port(), free_port(), free_port());
    let mut input = lb_haproxy();
    input.port = port;
    input.ca_pem = pki.cas.cluster.cert_pem().to_owned();
    input.backends = [("live", live), ("foreign-ca", other_ca), ("closed", closed)]
        .into_iter()
        .map(|(name, port)| Backend {
            name: name.into(),
            address: "127.0.0.1".into(),
            port,
        })
        .collect();
    let staged = Staged::new(&input);
    staged.write_configs();
    let dir = staged.path("servers");
    std::fs::create_dir_all(&dir).unwrap();
    let _live = tls_server(&dir, "live", &pki.hosts["master-1"], live);
    let _foreign = tls_server(&dir, "foreign", &foreign.hosts["master-1"], other_ca);
    let log = std::fs::File::create(staged.path("haproxy.log")).unwrap();
    std::fs::create_dir_all(staged.layout.proxy_runtime_dir(Proxy::HaProxy)).unwrap();
    let proxy = Group::spawn(
        Command::new(haproxy)
            .args(["-Ws", "-f", &staged.rendered.proxy_config.path, "-p"])
            .arg(staged.path("run/haproxy.pid"))
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    );
    let socket = staged.layout.stats_socket();
    let want = |rows: &Vec<(String, String, String)>| {
        let row = |name: &str| rows.iter().find(|r| r.0 == name).cloned();
        let live = row("live")?;
        let foreign = row("foreign-ca")?;
        let closed = row("closed")?;
        (live.1 == "UP"
            && live.2 == "L7OK"
            && foreign.1 == "DOWN"
            && foreign.2.starts_with("L6")
            && closed.1 == "DOWN"
            && closed.2 == "L4CON")
            .then_some(())
    };
    let logs = || std::fs::read_to_string(staged.path("haproxy.log")).unwrap();
    let settled = wait_for(Duration::from_secs(20), || {
        backend_stats(&socket).and_then(|rows| want(&rows))
    });
    assert!(
        settled.is_some(),
        "backends did not settle: {:?}\n{}",
        backend_stats(&socket),
        logs()
    );
    let ca = staged.layout.ca_file();
    assert!(
        tls_through(port, &ca),
        "no TLS through HAProxy:\n{}",
        logs()
    );

    proxy.signal("-USR2");
    let reloaded = wait_for(Duration::from_secs(20), || {
        logs()
            .matches("Loading success")
            .nth(1)
            .and_then(|_| backend_stats(&socket))
            .and_then(|rows| want(&rows))
    });
    assert!(reloaded.is_some(), "after a reload:\n{}", logs());
    assert!(
        tls_through(port, &ca),
        "no TLS after the reload:\n{}",
        logs()
    );
}

/// nginx runs the rendered configuration as its unit does (in the
/// foreground, `daemon off;`): clients reach the apiserver through it, and
/// a reload (`HUP`) to a configuration without that backend applies.
#[test]
fn nginx_proxies_and_reloads() {
    let nginx = program("/usr/sbin/nginx");
    let pki = ClusterPki::generate(cluster()).unwrap();
    let (live, port) = (free_port(), free_port());
    let mut input = with_backends(lb_nginx_alone(), &[("live", "127.0.0.1")]);
    input.backends[0].port = live;
    input.port = port;
    input.ca_pem = pki.cas.cluster.cert_pem().to_owned();
    let staged = Staged::new(&input);
    staged.write_configs();
    std::fs::create_dir_all(staged.layout.proxy_runtime_dir(Proxy::Nginx)).unwrap();
    let dir = staged.path("servers");
    let _live = tls_server(&dir, "live", &pki.hosts["master-1"], live);
    let log = std::fs::File::create(staged.path("nginx.log")).unwrap();
    let config = staged.rendered.proxy_config.path.clone();
    let proxy = Group::spawn(
        Command::new(nginx)
            .args(["-e", "stderr", "-c", &config, "-g", "daemon off;"])
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    );
    let logs = || std::fs::read_to_string(staged.path("nginx.log")).unwrap();
    let ca = staged.layout.ca_file();
    assert!(
        wait_for(Duration::from_secs(20), || tls_through(port, &ca)
            .then_some(()))
        .is_some(),
        "no TLS through nginx:\n{}",
        logs()
    );

    // No backend left: the placeholder is down, connections are closed.
    input.backends.clear();
    let emptied = input.render_in(&staged.layout).unwrap();
    write(Path::new(&config), &emptied.proxy_config.contents, 0o644);
    proxy.signal("-HUP");
    assert!(
        wait_for(Duration::from_secs(20), || (!tls_through(port, &ca))
            .then_some(()))
        .is_some(),
        "the reload did not apply:\n{}",
        logs()
    );
    assert!(logs().contains("reconfiguring"), "{}", logs());
}

/// A stub `systemctl` whose `is-active` answers with `$STUB_ACTIVE`.
fn stub_systemctl(dir: &Path) -> PathBuf {
    let bin = dir.join("stub-bin");
    write(
        &bin.join("systemctl"),
        "#!/bin/sh\n[ \"$1\" = is-active ] || exit 2\nexit \"${STUB_ACTIVE:-0}\"\n",
        0o755,
    );
    bin
}

fn path_with(bin: &Path) -> String {
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap())
}

/// The health check passes only when the proxy's unit is active and its
/// port accepts connections.
#[test]
fn check_script_needs_the_unit_active_and_the_port_open() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut input = lb_haproxy();
    input.port = listener.local_addr().unwrap().port();
    let staged = Staged::new(&input);
    let bin = stub_systemctl(staged.dir.path());
    let run = |active: &str| {
        Command::new(staged.layout.check_script())
            .env("PATH", path_with(&bin))
            .env("STUB_ACTIVE", active)
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(run("0"), Some(0), "active and listening");
    assert_eq!(run("3"), Some(1), "inactive");
    drop(listener);
    assert_eq!(run("0"), Some(1), "nothing listening");
}

fn transitions(staged: &Staged) -> Vec<(String, String, String)> {
    std::fs::read_to_string(staged.layout.transitions_log())
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 3, "{l:?}");
            (f[0].to_owned(), f[1].to_owned(), f[2].to_owned())
        })
        .collect()
}

fn state(staged: &Staged) -> String {
    std::fs::read_to_string(staged.layout.state_file()).unwrap_or_default()
}

/// The notify script records each transition with a nanosecond timestamp,
/// keeps the newest state when one is reported late, and never fails.
#[test]
fn notify_script_records_transitions() {
    let staged = Staged::new(&lb_haproxy());
    let notify = |state: &str| {
        Command::new(staged.layout.notify_script())
            .args(["INSTANCE", "kubeseed_api", state, "150"])
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(notify("BACKUP"), Some(0));
    assert_eq!(notify("MASTER"), Some(0));
    assert_eq!(state(&staged), "MASTER\n");
    let t = transitions(&staged);
    assert_eq!(t.len(), 2);
    for (at, name, _) in &t {
        let (s, ns) = at.split_once('.').unwrap();
        assert!(s.parse::<u64>().unwrap() > 1_700_000_000, "{at}");
        assert_eq!(ns.len(), 9, "{at}");
        assert_eq!(name, "kubeseed_api");
    }
    assert!(t[0].0 <= t[1].0);
    assert_eq!((t[0].2.as_str(), t[1].2.as_str()), ("BACKUP", "MASTER"));

    // A newer transition already recorded: a late one is logged but does
    // not overwrite the state.
    let log = staged.layout.transitions_log();
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("4000000000.000000000 kubeseed_api FAULT\n");
    std::fs::write(&log, text).unwrap();
    std::fs::write(staged.layout.state_file(), "FAULT\n").unwrap();
    assert_eq!(notify("BACKUP"), Some(0));
    assert_eq!(state(&staged), "FAULT\n");
    assert_eq!(transitions(&staged).last().unwrap().2, "BACKUP");

    // Nowhere to write: still exit 0.
    let mut input = lb_haproxy();
    input.vrrp.instance = "x".into();
    let blocked = Staged::new(&input);
    std::fs::write(blocked.path("state"), "a file, not a directory").unwrap();
    std::fs::write(blocked.path("run"), "").ok();
    let code = Command::new(blocked.layout.notify_script())
        .args(["INSTANCE", "x", "MASTER", "150"])
        .status()
        .unwrap()
        .code();
    assert_eq!(code, Some(0));
}

/// The whole host in a network namespace: HAProxy and keepalived from the
/// rendered files (unicast to a peer that never answers), `systemctl`
/// stubbed as active. keepalived takes the VIP and reports MASTER; HAProxy
/// stopped, the check fails twice and keepalived gives the VIP up (FAULT);
/// HAProxy back, MASTER again; keepalived stopped, STOP. Each transition is
/// in the state file and the transitions log.
#[test]
fn keepalived_holds_the_vip_only_while_the_proxy_works() {
    let haproxy = program("/usr/sbin/haproxy");
    let keepalived = program("/usr/sbin/keepalived");
    let mut input = lb_haproxy();
    input.backends.clear();
    input.port = 16443;
    let staged = Staged::new(&input);
    staged.write_configs();
    let bin = stub_systemctl(staged.dir.path());
    let run = staged.layout.keepalived_runtime_dir();
    let proxy_run = staged.layout.proxy_runtime_dir(Proxy::HaProxy);
    let state = staged.layout.state_file();
    let vip = format!("{}/{}", input.vip, input.prefix_len);
    let script = format!(
        r#"set -u
{veth}
ip addr add {source}/24 dev {interface}
export PATH={path}
mkdir -p {run} {proxy_run}
start_proxy() {{ {haproxy} -Ws -f {proxy_config} -p {proxy_run}/haproxy.pid >>{dir}/haproxy.log 2>&1 & proxy=$!; }}
await() {{ for _ in $(seq 100); do [ "$(cat {state} 2>/dev/null)" = "$1" ] && return 0; sleep 0.1; done; echo "TIMEOUT waiting for $1"; }}
has_vip() {{ ip -o addr show dev {interface} | grep -q " {vip} " && echo "VIP $1: yes" || echo "VIP $1: no"; }}
start_proxy
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && break; sleep 0.1; done
{keepalived} --dont-fork --log-console --no-syslog --vrrp --use-file {keepalived_config} \
  --pid {run}/keepalived.pid --vrrp_pid {run}/vrrp.pid >{dir}/keepalived.log 2>&1 &
ka=$!
await MASTER; has_vip master
ps -o cls=,rtprio= -C keepalived | awk '{{print "SCHED", $1, $2}}'
kill $proxy; wait $proxy
await FAULT; has_vip fault
start_proxy
await MASTER; has_vip again
kill $ka; wait $ka
await STOP; has_vip stopped
kill $proxy; wait $proxy
exit 0
"#,
        veth = veth(&input.interface),
        source = input.vrrp.unicast_source,
        interface = input.interface,
        port = input.port,
        path = path_with(&bin),
        dir = staged.dir.path().display(),
        proxy_config = staged.rendered.proxy_config.path,
        keepalived_config = staged.rendered.keepalived_config.path,
    );
    let out = in_netns(&script);
    let said = text(&out);
    let logs = format!(
        "{said}\n--- keepalived\n{}",
        std::fs::read_to_string(staged.path("keepalived.log")).unwrap_or_default()
    );
    assert!(out.status.success() && !said.contains("TIMEOUT"), "{logs}");
    for want in [
        "VIP master: yes",
        "VIP fault: no",
        "VIP again: yes",
        "VIP stopped: no",
    ] {
        assert!(said.contains(want), "{want}:\n{logs}");
    }
    // The VRRP process runs with realtime priority 50 (round-robin).
    assert!(
        said.lines().any(|l| l == "SCHED RR 50"),
        "no realtime VRRP process:\n{logs}"
    );
    let states: Vec<String> = transitions(&staged).into_iter().map(|t| t.2).collect();
    // keepalived may report FAULT before its check script's first runs.
    let key: Vec<&str> = states
        .iter()
        .map(String::as_str)
        .filter(|s| *s != "BACKUP")
        .skip_while(|s| *s == "FAULT")
        .collect();
    assert_eq!(
        key,
        ["MASTER", "FAULT", "MASTER", "STOP"],
        "{states:?}\n{logs}"
    );
}
