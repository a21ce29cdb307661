//! The real programs accept what the renderers write: tests against real
//! processes started by the test, using the toolchain's binaries
//! (`bash e2e/toolchain/build.sh`; they fail with instructions when it is
//! missing rather than skip).
//!
//! Nothing here changes this machine: programs that only parse (containerd
//! `config dump`, kube-proxy and kube-scheduler `--write-config-to`, the
//! kubelet stopped at its kubeconfig) run in a temporary directory, and the
//! ones that run for real (etcd and the control plane, the CNI plugins) run
//! in private mount, network and PID namespaces (`unshare`, so root), where
//! `/etc`, `/var/lib` and `/var/log` are overlays on temporary directories
//! and every process dies with the namespace.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod render_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use kubeseed_provision::cluster::{CgroupVersion, Cidr, ClusterSpec, Member, NodeSpec};
use kubeseed_provision::files::HostFiles;
use kubeseed_provision::pki::{ClusterCas, ClusterPki, KeyAlgorithm, Validity};
use kubeseed_provision::render::{
    ApiServerInput, CniInput, Component, ControllerManagerInput, EtcdInput, KubeletCredentials,
    KubeletInput, SchedulerInput, kubelet_may_set, paths,
};
use kubeseed_provision::ssh::shell::quote;
use kubeseed_testenv::Toolchain;
use render_support::*;

fn toolchain() -> Toolchain {
    Toolchain::locate().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `program args` under `timeout`, so a program that does not stop
/// where expected fails the test instead of hanging it.
fn run(program: &Path, args: &[String], dir: &Path) -> Output {
    Command::new("timeout")
        .arg("60")
        .arg(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn require_root(what: &str) {
    assert!(
        is_root(),
        "{what} needs root: it runs programs in private mount and network namespaces (unshare)"
    );
}

fn unit(files: &HostFiles, component: Component) -> Option<&str> {
    files.get(paths::unit_path(component.name()))
}

/// Flag name → its help text, from `program --help`. A flag in a
/// "Deprecated" section gets that word added to its text.
fn help_flags(program: &Path) -> BTreeMap<String, String> {
    let out = Command::new(program).arg("--help").output().unwrap();
    let help = text(&out);
    let mut flags = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut deprecated_section = false;
    for line in help.lines() {
        let trimmed = line.trim_start();
        if !line.starts_with(' ') && trimmed.ends_with(':') {
            deprecated_section = trimmed.to_lowercase().contains("deprecated");
            current = None;
            continue;
        }
        let flag = trimmed.strip_prefix("--").or_else(|| {
            // `-v, --v Level`
            let b = trimmed.as_bytes();
            (b.len() > 6 && b[0] == b'-' && &trimmed[2..6] == ", --").then(|| &trimmed[6..])
        });
        match flag {
            Some(rest) => {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect();
                let mut desc = rest[name.len()..].to_owned();
                if deprecated_section {
                    desc.push_str(" (in the Deprecated section)");
                }
                flags.insert(name.clone(), desc);
                current = Some(name);
            }
            None => {
                if let Some(name) = &current {
                    let desc = flags.get_mut(name).unwrap();
                    desc.push(' ');
                    desc.push_str(trimmed);
                }
            }
        }
    }
    flags
}

fn is_deprecated(help: &str) -> bool {
    help.contains("DEPRECATED")
        || help.contains("Deprecated in v")
        || help.contains("deprecated in v")
        || help.contains("Deprecated section")
}

/// Every `--flag` of every rendered unit is one the program lists in its
/// `--help`, and none is marked deprecated there.
#[test]
fn every_flag_is_listed_by_the_program_and_none_is_deprecated() {
    let tc = toolchain();
    let table = [
        Component::Etcd,
        Component::KubeApiserver,
        Component::KubeControllerManager,
        Component::KubeScheduler,
        Component::Kubelet,
        Component::KubeProxy,
    ];
    let mut problems = Vec::new();
    let mut checked = 0;
    for component in table {
        let help = help_flags(&tc.program(component.name()));
        assert!(
            help.len() > 20,
            "{component}: could not read flags from --help: {help:?}"
        );
        for case in cases() {
            let Some(unit) = unit(&case.files, component) else {
                continue;
            };
            let args = exec_start(unit);
            assert_eq!(args[0], paths::program(component.name()));
            for arg in &args[1..] {
                let name = arg
                    .strip_prefix("--")
                    .and_then(|a| a.split('=').next())
                    .unwrap_or_else(|| panic!("{component}: argument {arg:?} is not --name=value"));
                checked += 1;
                match help.get(name) {
                    None => problems.push(format!("{}: {component} has no --{name}", case.name)),
                    Some(desc) if is_deprecated(desc) => problems.push(format!(
                        "{}: {component} --{name} is deprecated:{desc}",
                        case.name
                    )),
                    Some(_) => {}
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} flags checked");
    assert!(problems.is_empty(), "{problems:#?}");
}

/// The help parser would see a deprecated flag (so the test above can fail).
#[test]
fn the_help_parser_sees_deprecated_flags() {
    let tc = toolchain();
    let kubelet = help_flags(&tc.program("kubelet"));
    assert!(
        is_deprecated(&kubelet["max-pods"]),
        "{:?}",
        kubelet["max-pods"]
    );
    assert!(!is_deprecated(&kubelet["node-labels"]));
    let scheduler = help_flags(&tc.program("kube-scheduler"));
    assert!(is_deprecated(&scheduler["kubeconfig"]));
    let etcd = help_flags(&tc.program("etcd"));
    assert!(is_deprecated(&etcd["experimental-initial-corrupt-check"]));
    assert!(!is_deprecated(&etcd["snapshot-count"]));
}

/// `containerd config dump` reads the file without a migration warning and
/// shows kubeseed's values; a broken file is refused.
#[test]
fn containerd_reads_the_configuration_and_shows_its_values() {
    let tc = toolchain();
    let dir = tempfile::tempdir().unwrap();
    for (case, files, systemd, restrict) in [
        ("master-1", master_1(), "true", "false"),
        ("worker-1", worker_1(), "false", "true"),
    ] {
        let config = dir.path().join(format!("{case}.toml"));
        std::fs::write(&config, files.get(paths::CONTAINERD_CONFIG).unwrap()).unwrap();
        let out = run(
            &tc.containerd(),
            &[
                "--config".into(),
                config.display().to_string(),
                "config".into(),
                "dump".into(),
            ],
            dir.path(),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{case}: {stderr}");
        assert!(
            !stderr.contains("level=warning") && !stderr.contains("level=error"),
            "{case}: containerd complained: {stderr}"
        );
        for want in [
            format!("SystemdCgroup = {systemd}"),
            format!("restrict_oom_score_adj = {restrict}"),
            format!("sandbox = '{PAUSE_IMAGE}'"),
            format!("BinaryName = '{}'", paths::RUNC),
            format!("bin_dirs = ['{}']", paths::CNI_BIN_DIR),
            format!("conf_dir = '{}'", paths::CNI_CONF_DIR),
            format!("address = '{}'", paths::CONTAINERD_SOCKET),
            "default_runtime_name = 'runc'".into(),
            "snapshotter = 'overlayfs'".into(),
        ] {
            assert!(
                stdout.contains(&want),
                "{case}: {want:?} not in the dump:\n{stdout}"
            );
        }
    }
    let bad = dir.path().join("bad.toml");
    let broken = master_1().get(paths::CONTAINERD_CONFIG).unwrap().replace(
        "restrict_oom_score_adj = false",
        "restrict_oom_score_adj = \"no\"",
    );
    std::fs::write(&bad, broken).unwrap();
    let out = run(
        &tc.containerd(),
        &[
            "--config".into(),
            bad.display().to_string(),
            "config".into(),
            "dump".into(),
        ],
        dir.path(),
    );
    assert!(
        !out.status.success(),
        "a wrong type was accepted: {}",
        text(&out)
    );
}

/// Runs the kubelet with the unit's own flags and a rendered configuration
/// until the step after loading and validating it: reading the kubeconfig,
/// which does not exist here. Returns the kubelet's output.
fn kubelet_until_kubeconfig(files: &HostFiles, dir: &Path, config_text: &str) -> String {
    let tc = toolchain();
    let ca = ClusterCas::generate(KeyAlgorithm::default(), &Validity::default()).unwrap();
    let ca_path = dir.join("ca.crt");
    std::fs::write(&ca_path, ca.cluster.cert_pem()).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(
        &config,
        config_text.replace("/etc/kubernetes/pki/ca.crt", &ca_path.display().to_string()),
    )
    .unwrap();
    let mut args = exec_start(unit(files, Component::Kubelet).unwrap());
    args.remove(0);
    // The last of a repeated flag wins: keep every path inside `dir`.
    for (flag, path) in [
        ("config", config.clone()),
        ("kubeconfig", dir.join("missing-kubelet.conf")),
        ("bootstrap-kubeconfig", dir.join("missing-bootstrap.conf")),
        ("cert-dir", dir.join("pki")),
        ("root-dir", dir.join("root")),
        ("volume-plugin-dir", dir.join("volume-plugins")),
    ] {
        args.push(format!("--{flag}={}", path.display()));
    }
    args.push("--v=5".into());
    let out = run(&tc.program("kubelet"), &args, dir);
    assert!(!out.status.success(), "the kubelet kept running");
    text(&out)
}

/// The cgroup hierarchy of the machine the tests run on: the kubelet
/// validates its configuration against it.
fn runner_cgroup_version() -> CgroupVersion {
    let out = Command::new("stat")
        .args(["-fc", "%T", "/sys/fs/cgroup"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&out.stdout).trim() == "cgroup2fs" {
        CgroupVersion::V2
    } else {
        CgroupVersion::V1
    }
}

fn kubelet_files(node: &NodeSpec, credentials: KubeletCredentials) -> HostFiles {
    KubeletInput {
        spec: &cluster(),
        node,
        credentials,
    }
    .render()
    .unwrap()
}

/// The kubelet loads each rendered KubeletConfiguration strictly, validates
/// it (and the unit's flags, node labels included), and gets as far as its
/// kubeconfig; an invalid configuration stops it at validation. The nodes'
/// cgroup version is this machine's, because the kubelet checks it.
#[test]
fn kubelet_loads_and_validates_the_configuration() {
    let runner = runner_cgroup_version();
    let mut master = master_node(&cluster(), "master-1");
    master.host.cgroup_version = runner;
    let mut worker = worker_node();
    worker.host.cgroup_version = runner;
    for (case, files, wants) in [
        (
            "master-1",
            kubelet_files(&master, KubeletCredentials::Issued),
            &[
                "\"CgroupDriver\": \"systemd\"",
                "\"TLSCertFile\": \"/var/lib/kubelet/pki/kubelet.crt\"",
                "\"ReadOnlyPort\": 0",
                "node-role.kubernetes.io/control-plane",
                "\"10.96.0.10\"",
            ][..],
        ),
        (
            "worker-1",
            kubelet_files(&worker, KubeletCredentials::Bootstrap),
            &[
                "\"CgroupDriver\": \"cgroupfs\"",
                "\"ServerTLSBootstrap\": true",
                "\"ProtectKernelDefaults\": true",
                "FLAG: --housekeeping-interval=\"15s\"",
                "FLAG: --node-labels=\"kubeseed.io/pool=general,topology.kubernetes.io/zone=lab-a\"",
            ][..],
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = files.get(paths::KUBELET_CONFIG).unwrap();
        let out = kubelet_until_kubeconfig(&files, dir.path(), config);
        assert!(
            out.contains("\"KubeletConfiguration\" configuration="),
            "{case}: the kubelet did not log its configuration:\n{out}"
        );
        for refusal in [
            "failed to validate kubelet",
            "failed to load kubelet config file",
            "lenient decoding",
            "failed to parse kubelet flag",
        ] {
            assert!(!out.contains(refusal), "{case}: {refusal}:\n{out}");
        }
        assert!(
            out.contains("kubeconfig") && out.contains("missing-"),
            "{case}: the kubelet stopped before its kubeconfig:\n{out}"
        );
        for want in wants {
            assert!(
                out.contains(want),
                "{case}: {want} not in the loaded configuration:\n{out}"
            );
        }
    }

    // failCgroupV1 matters: on a cgroup v1 machine, a configuration
    // rendered for a v2 host is refused.
    if runner == CgroupVersion::V1 {
        let dir = tempfile::tempdir().unwrap();
        let mut v2 = worker_node();
        v2.host.cgroup_version = CgroupVersion::V2;
        let files = kubelet_files(&v2, KubeletCredentials::Bootstrap);
        let out = kubelet_until_kubeconfig(
            &files,
            dir.path(),
            files.get(paths::KUBELET_CONFIG).unwrap(),
        );
        assert!(out.contains("cgroup v1"), "{out}");
    }

    let dir = tempfile::tempdir().unwrap();
    let files = kubelet_files(&worker, KubeletCredentials::Bootstrap);
    let bad = files
        .get(paths::KUBELET_CONFIG)
        .unwrap()
        .replace("readOnlyPort: 0", "readOnlyPort: 99999");
    let out = kubelet_until_kubeconfig(&files, dir.path(), &bad);
    assert!(
        out.contains("failed to validate kubelet configuration") && out.contains("readOnlyPort"),
        "an invalid configuration got through:\n{out}"
    );
}

/// The kubelet's own list of labels it may set matches kubeseed's, and it
/// refuses a node-role label on its command line.
#[test]
fn kubelet_agrees_on_which_labels_it_may_set() {
    let tc = toolchain();
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &tc.program("kubelet"),
        &[
            "--node-labels=node-role.kubernetes.io/worker=".into(),
            format!("--root-dir={}", dir.path().join("root").display()),
        ],
        dir.path(),
    );
    let out = text(&out);
    assert!(
        out.contains("unknown 'kubernetes.io' or 'k8s.io' labels"),
        "{out}"
    );
    assert!(!kubelet_may_set("node-role.kubernetes.io/worker"));
    // "... allowed prefix (a, b) or be in the specifically allowed set (c, d, ...)"
    let list = |after: &str| -> Vec<String> {
        let start = out.find(after).unwrap() + after.len();
        let rest = &out[start..];
        rest[..rest.find(')').unwrap()]
            .split(", ")
            .map(str::to_owned)
            .collect()
    };
    let prefixes = list("allowed prefix (");
    let labels = list("allowed set (");
    assert!(
        prefixes.len() >= 2 && labels.len() >= 10,
        "{prefixes:?} {labels:?}"
    );
    for prefix in &prefixes {
        assert!(kubelet_may_set(&format!("{prefix}/x")), "{prefix}");
        assert!(kubelet_may_set(&format!("sub.{prefix}/x")), "{prefix}");
    }
    for label in &labels {
        assert!(kubelet_may_set(label), "{label}");
    }
}

/// kube-proxy loads and validates the configuration and writes back what it
/// understood (`--write-config-to` exits before any iptables change).
#[test]
fn kube_proxy_loads_and_validates_the_configuration() {
    let tc = toolchain();
    for (case, files, conntrack_zero) in [
        ("master-1", master_1(), false),
        ("worker-1", worker_1(), true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, files.get(paths::KUBE_PROXY_CONFIG).unwrap()).unwrap();
        let written = dir.path().join("written.yaml");
        let mut args = exec_start(unit(&files, Component::KubeProxy).unwrap());
        args.remove(0);
        args.push(format!("--config={}", config.display()));
        args.push(format!("--write-config-to={}", written.display()));
        let out = run(&tc.program("kube-proxy"), &args, dir.path());
        let log = text(&out);
        assert!(out.status.success(), "{case}: {log}");
        assert!(
            !log.contains("lenient"),
            "{case}: not strictly decoded: {log}"
        );
        let back: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&written).unwrap()).unwrap();
        assert_eq!(back["mode"].as_str(), Some("iptables"), "{case}");
        assert_eq!(
            back["clusterCIDR"].as_str(),
            Some("10.244.0.0/16"),
            "{case}"
        );
        assert_eq!(
            back["clientConnection"]["kubeconfig"].as_str(),
            Some(paths::KUBE_PROXY_CONF)
        );
        assert_eq!(back["metricsBindAddress"].as_str(), Some("127.0.0.1:10249"));
        let max = back["conntrack"]["maxPerCore"].as_i64();
        assert_eq!(max == Some(0), conntrack_zero, "{case}: {max:?}");
    }
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        worker_1()
            .get(paths::KUBE_PROXY_CONFIG)
            .unwrap()
            .replace("mode: iptables", "mode: bogus"),
    )
    .unwrap();
    let out = run(
        &toolchain().program("kube-proxy"),
        &[
            format!("--config={}", bad.display()),
            format!("--write-config-to={}", dir.path().join("w.yaml").display()),
        ],
        dir.path(),
    );
    assert!(
        !out.status.success() && text(&out).contains("bogus"),
        "{}",
        text(&out)
    );
}

/// kube-scheduler loads its configuration with the unit's flags and writes
/// back what it understood (`--write-config-to` exits before it schedules).
#[test]
fn kube_scheduler_loads_the_configuration() {
    let tc = toolchain();
    let dir = tempfile::tempdir().unwrap();
    let spec = ClusterSpec::stacked(Member::new("master-1", ip("10.213.0.11")));
    let pki = ClusterPki::generate(spec).unwrap();
    let kubeconfig = dir.path().join("scheduler.conf");
    std::fs::write(
        &kubeconfig,
        pki.hosts["master-1"].get(paths::SCHEDULER_CONF).unwrap(),
    )
    .unwrap();
    let files = master_1();
    let config = dir.path().join("scheduler-config.yaml");
    std::fs::write(
        &config,
        files
            .get(paths::SCHEDULER_CONFIG)
            .unwrap()
            .replace(paths::SCHEDULER_CONF, &kubeconfig.display().to_string()),
    )
    .unwrap();
    let written = dir.path().join("written.yaml");
    let mut args = exec_start(unit(&files, Component::KubeScheduler).unwrap());
    args.remove(0);
    let kc = kubeconfig.display().to_string();
    args.extend([
        format!("--config={}", config.display()),
        format!("--authentication-kubeconfig={kc}"),
        format!("--authorization-kubeconfig={kc}"),
        // No listener: this test only reads the configuration.
        "--secure-port=0".into(),
        format!("--write-config-to={}", written.display()),
    ]);
    let out = run(&tc.program("kube-scheduler"), &args, dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let back: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&written).unwrap()).unwrap();
    assert_eq!(back["leaderElection"]["leaderElect"].as_bool(), Some(true));
    assert_eq!(
        back["clientConnection"]["kubeconfig"].as_str(),
        Some(kc.as_str())
    );
}

/// A root directory with the distribution's units and stub programs, where
/// `systemd-analyze verify --root` can check units without a running systemd
/// (PID 1 here is not systemd).
fn verify_root(units: &[(&str, &str)]) -> (tempfile::TempDir, Output) {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/lib/systemd")).unwrap();
    std::fs::create_dir_all(r.join("etc/systemd/system")).unwrap();
    std::fs::create_dir_all(r.join("usr/local/bin")).unwrap();
    let cp = Command::new("cp")
        .args(["-a", "/lib/systemd/system"])
        .arg(r.join("usr/lib/systemd/"))
        .status()
        .unwrap();
    assert!(cp.success());
    for program in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
        "containerd",
    ] {
        let path = r.join("usr/local/bin").join(program);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        Command::new("chmod")
            .arg("755")
            .arg(&path)
            .status()
            .unwrap();
    }
    let mut names = Vec::new();
    for (name, text) in units {
        std::fs::write(r.join("etc/systemd/system").join(name), text).unwrap();
        names.push((*name).to_owned());
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", r.display()))
        .args(&names)
        .output()
        .unwrap();
    (root, out)
}

/// systemd's own parser accepts every rendered unit without a warning,
/// including arguments full of characters it would otherwise interpret.
#[test]
fn systemd_verifies_every_unit() {
    for case in cases() {
        let units: Vec<(String, String)> = case
            .files
            .iter()
            .filter(|(p, _)| p.starts_with(paths::SYSTEMD_DIR))
            .map(|(p, f)| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    f.contents.clone(),
                )
            })
            .collect();
        let refs: Vec<(&str, &str)> = units
            .iter()
            .map(|(n, t)| (n.as_str(), t.as_str()))
            .collect();
        let (_root, out) = verify_root(&refs);
        assert!(
            out.status.success() && text(&out).trim().is_empty(),
            "{}: {}",
            case.name,
            text(&out)
        );
    }

    let spec = cluster();
    let mut cm = ControllerManagerInput::new(&spec);
    cm.extra_args = map(&[
        ("x", r#"50% of $HOME \ "quoted" it's"#),
        ("y", r"C:\path\"),
        ("z", "%n%i$$"),
    ]);
    let unit_text = cm.render().unwrap();
    let unit_text = unit(&unit_text, Component::KubeControllerManager).unwrap();
    let (_root, out) = verify_root(&[("kube-controller-manager.service", unit_text)]);
    assert!(
        out.status.success() && text(&out).trim().is_empty(),
        "{}\n{unit_text}",
        text(&out)
    );

    // And verify does complain about what the escaping prevents.
    let broken = unit_text.replace("--secure-port=10257", "\"--secure-port=10257");
    let (_root, out) = verify_root(&[("kube-controller-manager.service", &broken)]);
    assert!(!text(&out).trim().is_empty(), "unbalanced quote accepted");
    let broken = unit_text.replace("--secure-port=10257", r"--secure-port=\q");
    let (_root, out) = verify_root(&[("kube-controller-manager.service", &broken)]);
    assert!(text(&out).contains("escape"), "{}", text(&out));
}

/// Runs `script` as root in new mount, network and PID namespaces with
/// `/etc`, `/var/lib`, `/var/log` overlaid on directories under `dir`
/// (pre-filled from `dir/up/...`) and the toolchain mounted on
/// `/usr/local/bin`. Every process it starts dies with it.
fn in_namespaces(dir: &Path, script: &str) -> Output {
    let tc = toolchain();
    let mut prelude = String::from("set -u\nmount --make-rprivate /\n");
    for d in ["etc", "var/lib", "var/log"] {
        let up = dir.join("up").join(d);
        let work = dir.join("work").join(d);
        std::fs::create_dir_all(&up).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        prelude.push_str(&format!(
            "mount -t overlay overlay -o lowerdir=/{d},upperdir={},workdir={} /{d} || exit 90\n",
            up.display(),
            work.display()
        ));
    }
    prelude.push_str(&format!(
        "mount --bind {} /usr/local/bin || exit 91\nmount -t tmpfs tmpfs /run || exit 92\n\
         ip link set lo up\n\
         # A watchdog: nothing outlives a hung test.\n( sleep 400; kill -9 -1 ) &\n",
        quote(&tc.bin_dir().display().to_string())
    ));
    let path = dir.join("script.sh");
    std::fs::write(&path, format!("{prelude}{script}")).unwrap();
    Command::new("unshare")
        .args([
            "--mount",
            "--net",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "bash",
        ])
        .arg(&path)
        .output()
        .unwrap()
}

/// Puts `files` under `dir/up`, where [`in_namespaces`] shows them at their paths.
fn stage(dir: &Path, files: &HostFiles) {
    for (path, file) in files.iter() {
        let target = dir.join("up").join(path.strip_prefix("/").unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, &file.contents).unwrap();
        Command::new("chmod")
            .arg(format!("{:o}", file.mode))
            .arg(&target)
            .status()
            .unwrap();
    }
}

/// A shell command line that starts the unit's `ExecStart=` exactly as
/// written, in the background, logging to `logs/<name>.log`.
fn start_unit(dir: &Path, files: &HostFiles, component: Component) -> String {
    let args: Vec<String> = exec_start(unit(files, component).unwrap())
        .iter()
        .map(|a| quote(a))
        .collect();
    let log = dir.join("logs").join(format!("{component}.log"));
    format!(
        "{} > {} 2>&1 &\n",
        args.join(" "),
        quote(&log.display().to_string())
    )
}

/// etcd, kube-apiserver, kube-controller-manager and kube-scheduler run
/// from the rendered units' command lines on the PKI's files: the API
/// becomes ready, Secrets are stored encrypted, requests are audited
/// without bodies, the controller-manager and scheduler win their leases
/// and serve health on loopback only, ServiceAccount tokens are issued, and
/// the PKI's `kube-proxy.conf` may read what kube-proxy watches.
#[test]
fn control_plane_runs_from_the_rendered_units() {
    require_root("running the control plane");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("logs")).unwrap();
    let spec = ClusterSpec::stacked(Member::new("master-1", ip("10.213.0.11")));
    let pki = ClusterPki::generate(spec.clone()).unwrap();
    let mut files = pki.hosts["master-1"].clone();
    files.extend(pki.cas.csr_signer_files());
    let local = spec
        .local_server_url(spec.control_plane_member("master-1").unwrap())
        .unwrap();
    files.extend(pki.cas.kube_proxy_files(&spec, &local).unwrap());
    let mut rendered = HostFiles::default();
    rendered.extend(
        EtcdInput::founding(&spec, "master-1")
            .unwrap()
            .render()
            .unwrap(),
    );
    rendered.extend(
        ApiServerInput::new(&spec, "master-1", encryption())
            .unwrap()
            .render()
            .unwrap(),
    );
    rendered.extend(ControllerManagerInput::new(&spec).render().unwrap());
    rendered.extend(SchedulerInput::default().render().unwrap());
    files.extend(rendered.clone());
    stage(d, &files);

    let mut script = String::from("ip addr add 10.213.0.11/32 dev lo\n");
    for c in [
        Component::Etcd,
        Component::KubeApiserver,
        Component::KubeControllerManager,
        Component::KubeScheduler,
    ] {
        script.push_str(&start_unit(d, &rendered, c));
    }
    script.push_str(
        r#"
K="/usr/local/bin/kubectl --kubeconfig=/etc/kubernetes/super-admin.conf"
ETCDCTL="/usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key"
check() { if [ "$2" = ok ]; then echo "RESULT $1 ok"; else echo "RESULT $1 FAIL: $2"; fi; }
wait_for() { # name seconds command...
  local name=$1 secs=$2; shift 2
  for _ in $(seq 1 "$secs"); do if out=$("$@" 2>&1); then check "$name" ok; return 0; fi; sleep 1; done
  check "$name" "$out"; return 1
}
nonempty() { local v; v=$("$@") && [ -n "$v" ]; }
wait_for etcd-health 60 sh -c 'curl -sf http://127.0.0.1:2381/health | grep -q "\"health\":\"true\""'
wait_for apiserver-ready 120 sh -c "$K get --raw=/readyz | grep -qx ok"
$K create secret generic kubeseed-probe -n default --from-literal=k=v >/dev/null 2>&1
stored=$($ETCDCTL get /registry/secrets/default/kubeseed-probe --print-value-only 2>&1 | head -c 26)
[ "$stored" = "k8s:enc:secretbox:v1:key1:" ] && check secret-encrypted ok || check secret-encrypted "stored as: $stored"
wait_for controller-manager-lease 90 nonempty $K get lease -n kube-system kube-controller-manager -o jsonpath={.spec.holderIdentity}
wait_for scheduler-lease 90 nonempty $K get lease -n kube-system kube-scheduler -o jsonpath={.spec.holderIdentity}
wait_for controller-manager-healthz 30 sh -c 'curl -sk https://127.0.0.1:10257/healthz | grep -qx ok'
wait_for scheduler-healthz 30 sh -c 'curl -sk https://127.0.0.1:10259/healthz | grep -qx ok'
wait_for service-account-token 60 $K create token default -n default
wait_for kube-proxy-rbac 30 /usr/local/bin/kubectl --kubeconfig=/etc/kubernetes/kube-proxy.conf get endpointslices -A
A=/var/log/kubernetes/audit/audit.log
if grep -q '"resource":"secrets"' $A && ! grep -q '"requestObject"' $A && ! grep -q '"responseObject"' $A; then check audit-metadata-only ok; else check audit-metadata-only "$(ls -l /var/log/kubernetes/audit 2>&1)"; fi
if curl -sk https://10.213.0.11:10257/healthz >/dev/null 2>&1; then check controller-manager-loopback-only "answers on the node address"; else check controller-manager-loopback-only ok; fi
"#,
    );
    let out = in_namespaces(d, &script);
    let output = text(&out);
    eprintln!("{output}");
    let checks = [
        "etcd-health",
        "apiserver-ready",
        "secret-encrypted",
        "controller-manager-lease",
        "scheduler-lease",
        "controller-manager-healthz",
        "scheduler-healthz",
        "service-account-token",
        "kube-proxy-rbac",
        "audit-metadata-only",
        "controller-manager-loopback-only",
    ];
    let failed: Vec<&str> = checks
        .iter()
        .copied()
        .filter(|c| !output.lines().any(|l| l == format!("RESULT {c} ok")))
        .collect();
    let logs = || {
        let mut all = String::new();
        for c in [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ] {
            let log = std::fs::read_to_string(d.join("logs").join(format!("{c}.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            all.push_str(&format!(
                "--- {c}\n{}\n",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        all
    };
    assert!(
        failed.is_empty(),
        "failed: {failed:?}\n{output}\n{}",
        logs()
    );
}

/// The containernetworking plugins set up a Pod's network from the
/// rendered conflist, as a runtime calls them (each plugin gets the list's
/// name and version and the previous plugin's result): the Pod gets the
/// first address of the node's range, a default route via the bridge, and
/// the bridge is the gateway.
#[test]
fn cni_plugins_set_up_a_pod_from_the_conflist() {
    require_root("running the CNI plugins");
    let tc = toolchain();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files = CniInput {
        pod_cidr: Cidr::parse("10.244.3.0/24").unwrap(),
    }
    .render()
    .unwrap();
    let list: serde_json::Value =
        serde_json::from_str(files.get(paths::CNI_CONFLIST).unwrap()).unwrap();
    // Each plugin's stdin: its entry plus the list's name and version.
    let mut configs = Vec::new();
    for plugin in list["plugins"].as_array().unwrap() {
        let mut conf = plugin.clone();
        conf["name"] = list["name"].clone();
        conf["cniVersion"] = list["cniVersion"].clone();
        configs.push(conf);
    }
    assert_eq!(configs.len(), 2);
    std::fs::write(d.join("bridge.json"), configs[0].to_string()).unwrap();
    // The script puts the bridge's result where the placeholder is.
    configs[1]["prevResult"] = serde_json::Value::from("__PREV__");
    configs[1]["runtimeConfig"] = serde_json::json!({
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]
    });
    std::fs::write(d.join("portmap.json"), configs[1].to_string()).unwrap();
    let cni = tc.cni_bin_dir().display().to_string();
    let script = format!(
        r#"
export CNI_PATH={cni} CNI_CONTAINERID=kubeseed-probe CNI_IFNAME=eth0
ip netns add pod || exit 93
export CNI_NETNS=/run/netns/pod
CNI_COMMAND=ADD {cni}/bridge < {d}/bridge.json > {d}/bridge.out 2> {d}/bridge.err; echo "RESULT bridge-exit $?"
# portmap gets the bridge's result as prevResult.
prev=$(cat {d}/bridge.out); tmpl=$(cat {d}/portmap.json)
printf '%s' "${{tmpl/\"__PREV__\"/$prev}}" > {d}/portmap-in.json
CNI_COMMAND=ADD {cni}/portmap < {d}/portmap-in.json > {d}/portmap.out 2> {d}/portmap.err; echo "RESULT portmap-exit $?"
echo "POD-ADDR $(ip netns exec pod ip -4 -o addr show dev eth0 | awk '{{print $4}}')"
echo "POD-ROUTE $(ip netns exec pod ip -4 route show default)"
echo "BRIDGE-ADDR $(ip -4 -o addr show dev cni0 | awk '{{print $4}}')"
echo "HOSTPORT $( (iptables-save; nft list ruleset) 2>/dev/null | grep -c 8080)"
"#,
        d = d.display()
    );
    let out = in_namespaces(d, &script);
    let output = text(&out);
    eprintln!("{output}");
    let read = |name: &str| std::fs::read_to_string(d.join(name)).unwrap_or_default();
    let ctx = format!(
        "{output}\nbridge: {}{}\nportmap: {}{}",
        read("bridge.out"),
        read("bridge.err"),
        read("portmap.out"),
        read("portmap.err")
    );
    assert!(output.contains("RESULT bridge-exit 0"), "{ctx}");
    assert!(output.contains("RESULT portmap-exit 0"), "{ctx}");
    assert!(output.contains("POD-ADDR 10.244.3.2/24"), "{ctx}");
    assert!(
        output.contains("POD-ROUTE default via 10.244.3.1 dev eth0"),
        "{ctx}"
    );
    assert!(output.contains("BRIDGE-ADDR 10.244.3.1/24"), "{ctx}");
    assert!(!output.contains("HOSTPORT 0"), "no hostPort rule: {ctx}");
}
