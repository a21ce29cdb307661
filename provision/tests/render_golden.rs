//! Golden files of every renderer for a fixed cluster, and the checks that
//! need no program: modes, cross-references to the PKI's files, refusals.
//!
//! Pure tests. `KUBESEED_UPDATE_GOLDEN=1 cargo test -p kubeseed-provision
//! --test render_golden` rewrites `tests/golden/render/`; review the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod render_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kubeseed_provision::cluster::Cidr;
use kubeseed_provision::files::HostFiles;
use kubeseed_provision::pki::{BootstrapToken, ClusterPki};
use kubeseed_provision::render::{
    self, ApiServerInput, CniInput, ContainerdInput, EtcdInput, KubeProxyInput, KubeletCredentials,
    KubeletInput, paths,
};
use kubeseed_testenv::golden::UPDATE_ENV;
use render_support::*;

const MODES_FILE: &str = "MODES";

fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/render")
}

/// `<case>/<absolute path without the leading />` for each file, and
/// `<case>/MODES` listing every file's mode, so a mode change shows in review.
fn expected_tree(files: &HostFiles) -> BTreeMap<PathBuf, String> {
    let mut tree = BTreeMap::new();
    let mut modes = String::new();
    for (path, file) in files.iter() {
        let rel = path.strip_prefix("/").unwrap().to_path_buf();
        modes.push_str(&format!("{:04o} {}\n", file.mode, path.display()));
        tree.insert(rel, file.contents.clone());
    }
    tree.insert(PathBuf::from(MODES_FILE), modes);
    tree
}

fn read_tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Taken while a test reads or writes the golden files, so a rewrite does
/// not race the test that checks they stay unchanged.
static GOLDEN_FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn rendered_files_match_the_golden_files() {
    let _turn = GOLDEN_FILES.lock().unwrap_or_else(|e| e.into_inner());
    // KUBESEED_UPDATE_GOLDEN=1, refused under CI (one switch for every
    // golden file in the workspace).
    let update = kubeseed_testenv::golden::update_requested();
    let mut stale = Vec::new();
    for case in cases()
        .into_iter()
        .chain(lb_cases())
        .chain(pod_routes_cases())
    {
        let dir = golden_root().join(case.name);
        let expected = expected_tree(&case.files);
        if update {
            let _ = std::fs::remove_dir_all(&dir);
            for (rel, text) in &expected {
                let path = dir.join(rel);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, text).unwrap();
            }
            continue;
        }
        let on_disk = read_tree(&dir);
        let names = |t: &BTreeMap<PathBuf, String>| t.keys().cloned().collect::<BTreeSet<_>>();
        for missing in names(&expected).difference(&names(&on_disk)) {
            stale.push(format!(
                "{}/{}: not in the golden files",
                case.name,
                missing.display()
            ));
        }
        for extra in names(&on_disk).difference(&names(&expected)) {
            stale.push(format!(
                "{}/{}: no longer rendered",
                case.name,
                extra.display()
            ));
        }
        for (rel, text) in &expected {
            if let Some(old) = on_disk.get(rel)
                && old != text
            {
                stale.push(format!(
                    "{}/{} differs:\n--- golden\n{old}\n--- rendered\n{text}",
                    case.name,
                    rel.display()
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "{}\n\nIf the change is intended, run `{UPDATE_ENV}=1 cargo test -p kubeseed-provision --test render_golden` and review the diff.",
        stale.join("\n")
    );
}

/// Under CI a request to rewrite the golden files fails and leaves them as
/// they are (the golden test runs in a child process of this test binary).
#[test]
fn golden_files_are_never_rewritten_under_ci() {
    let _turn = GOLDEN_FILES.lock().unwrap_or_else(|e| e.into_inner());
    let before = read_tree(&golden_root());
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "rendered_files_match_the_golden_files",
            "--exact",
            "--nocapture",
        ])
        .env("CI", "true")
        .env(UPDATE_ENV, "1")
        .env_remove("UPDATE_GOLDEN")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "passed under CI with {UPDATE_ENV}=1");
    assert!(said.contains("refused under CI"), "{said}");
    assert!(read_tree(&golden_root()) == before, "golden files changed");
}

#[test]
fn rendering_is_deterministic() {
    assert_eq!(master_1(), master_1());
    assert_eq!(worker_1(), worker_1());
    assert_eq!(
        lb_haproxy().render().unwrap(),
        lb_haproxy().render().unwrap()
    );
    let mut reversed = pod_routes_worker_1();
    reversed.routes.reverse();
    assert_eq!(
        pod_routes_worker_1().render().unwrap(),
        reversed.render().unwrap()
    );
}

/// The load balancer's scripts are executable, everything else 0644, and
/// every path under `/etc/kubeseed/lb/` that a rendered file names is one
/// the renderer writes.
#[test]
fn load_balancer_modes_and_references() {
    for case in lb_cases() {
        let mut seen = 0;
        for (path, file) in case.files.iter() {
            let want = if path.extension().is_some_and(|e| e == "sh") {
                0o755
            } else {
                0o644
            };
            assert_eq!(file.mode, want, "{}: {}", case.name, path.display());
            for word in file
                .contents
                .split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ';'))
            {
                // A path at the end of a sentence in a comment.
                let word = word.trim_end_matches('.');
                if word.starts_with(render::LB_DIR) {
                    seen += 1;
                    assert!(
                        case.files.get(word).is_some(),
                        "{}: {word} (named in {}) is not rendered",
                        case.name,
                        path.display()
                    );
                }
            }
        }
        assert!(seen >= 8, "{}: only {seen} references", case.name);
    }
}

/// The script is executable, the routes and the unit 0644; the unit runs
/// the script on the file the others name.
#[test]
fn pod_routes_modes_and_references() {
    for case in pod_routes_cases() {
        for (path, file) in case.files.iter() {
            let want = if path == Path::new(render::POD_ROUTES_SCRIPT) {
                0o755
            } else {
                0o644
            };
            assert_eq!(file.mode, want, "{}: {}", case.name, path.display());
        }
        let unit = case
            .files
            .get(paths::unit_path("kubeseed-pod-routes"))
            .unwrap();
        assert!(unit.contains(&format!(
            "ExecStart={} {}\n",
            render::POD_ROUTES_SCRIPT,
            render::POD_ROUTES_FILE
        )));
        assert!(case.files.get(render::POD_ROUTES_FILE).is_some());
    }
}

#[test]
fn only_the_encryption_config_is_private() {
    for case in cases() {
        for (path, file) in case.files.iter() {
            let want = if path == Path::new(paths::ENCRYPTION_CONFIG) {
                0o600
            } else {
                0o644
            };
            assert_eq!(file.mode, want, "{}: {}", case.name, path.display());
            assert!(path.is_absolute(), "{}", path.display());
        }
    }
}

/// Every `/etc/kubernetes/...` or `/var/lib/kubelet/pki/...` path a
/// rendered file names is a file the PKI or a renderer makes, so a renamed
/// kubeconfig or certificate cannot slip through.
#[test]
fn every_referenced_file_is_made_by_the_pki_or_a_renderer() {
    let spec = cluster();
    let pki = ClusterPki::generate(spec.clone()).unwrap();

    let mut master = pki.hosts["master-1"].clone();
    master.extend(pki.cas.csr_signer_files());
    let local = spec
        .local_server_url(spec.control_plane_member("master-1").unwrap())
        .unwrap();
    master.extend(pki.cas.kube_proxy_files(&spec, &local).unwrap());
    let rendered = master_1();
    master.extend(rendered.clone());
    check_references("master-1", &rendered, &master, &[], 30);

    let token: BootstrapToken = "abcdef.0123456789abcdef".parse().unwrap();
    let mut worker = pki.cas.bootstrap_kubelet_files(&spec, &token).unwrap();
    worker.extend(
        pki.cas
            .kube_proxy_files(&spec, &spec.server_url().unwrap())
            .unwrap(),
    );
    let rendered = worker_1();
    worker.extend(rendered.clone());
    // A bootstrapped kubelet writes kubelet.conf itself.
    check_references("worker-1", &rendered, &worker, &[paths::KUBELET_CONF], 4);
}

fn check_references(
    case: &str,
    rendered: &HostFiles,
    all: &HostFiles,
    written_later: &[&str],
    at_least: usize,
) {
    let mut missing = BTreeSet::new();
    let mut seen = 0;
    for (path, file) in rendered.iter() {
        for word in file
            .contents
            .split(|c: char| c.is_whitespace() || matches!(c, '=' | ',' | '"' | '\''))
        {
            if !(word.starts_with("/etc/kubernetes/") || word.starts_with("/var/lib/kubelet/pki/"))
            {
                continue;
            }
            seen += 1;
            if all.get(word).is_none() && !written_later.contains(&word) {
                missing.insert(format!("{word} (named in {})", path.display()));
            }
        }
    }
    assert!(
        seen >= at_least,
        "{case}: only {seen} references found; is the scan broken?"
    );
    assert!(missing.is_empty(), "{case}: {missing:#?}");
}

#[test]
fn node_role_labels_are_left_for_the_api() {
    let spec = cluster();
    let node = worker_node();
    let flags = KubeletInput {
        spec: &spec,
        node: &node,
        credentials: KubeletCredentials::Bootstrap,
    }
    .flags()
    .unwrap();
    assert_eq!(
        flags.get("node-labels"),
        Some("kubeseed.io/pool=general,topology.kubernetes.io/zone=lab-a")
    );
    assert_eq!(
        render::api_only_labels(&node.labels)
            .keys()
            .collect::<Vec<_>>(),
        ["node-role.kubernetes.io/worker"]
    );
    // A master's only labels are for the API: no --node-labels at all.
    let master = master_node(&spec, "master-1");
    let flags = KubeletInput {
        spec: &spec,
        node: &master,
        credentials: KubeletCredentials::Issued,
    }
    .flags()
    .unwrap();
    assert_eq!(
        flags.get("node-labels"),
        Some("node.kubernetes.io/exclude-from-external-load-balancers=")
    );
}

#[test]
fn bad_labels_taints_and_flag_values_are_refused_by_name() {
    let spec = cluster();
    let mut node = worker_node();
    node.labels
        .insert("kubeseed.io/pool".into(), "a,b=c".into());
    let err = KubeletInput {
        spec: &spec,
        node: &node,
        credentials: KubeletCredentials::Bootstrap,
    }
    .render()
    .unwrap_err();
    assert_eq!(err.reason(), "InvalidInput");
    assert!(err.to_string().contains("kubeseed.io/pool"), "{err}");

    let mut node = worker_node();
    node.taints.push(kubeseed_provision::cluster::Taint {
        key: "dedicated".into(),
        value: Some("x".into()),
        effect: "Sometimes".into(),
    });
    let err = KubeletInput {
        spec: &spec,
        node: &node,
        credentials: KubeletCredentials::Bootstrap,
    }
    .render()
    .unwrap_err();
    assert!(err.to_string().contains("dedicated=x:Sometimes"), "{err}");

    let mut node = worker_node();
    node.kubelet_extra_args = map(&[("node-labels", "a=b\n[Service]")]);
    let err = KubeletInput {
        spec: &spec,
        node: &node,
        credentials: KubeletCredentials::Bootstrap,
    }
    .render()
    .unwrap_err();
    assert_eq!(err.reason(), "InvalidFlagValue");
    assert!(err.to_string().starts_with("kubelet: "), "{err}");
}

#[test]
fn kube_proxy_refuses_flags_it_would_ignore() {
    let spec = cluster();
    let mut node = worker_node();
    node.kube_proxy_extra_args = map(&[("proxy-mode", "ipvs")]);
    let err = KubeProxyInput {
        spec: &spec,
        node: &node,
    }
    .render()
    .unwrap_err();
    assert_eq!(err.reason(), "InvalidFlagName");
    assert!(err.to_string().contains("ignores it"), "{err}");
}

#[test]
fn etcd_refuses_an_initial_cluster_without_the_member() {
    let spec = cluster();
    let mut etcd = EtcdInput::founding(&spec, "master-2").unwrap();
    etcd.initial_cluster = "master-1=https://10.213.0.11:2380".into();
    let err = etcd.render().unwrap_err();
    assert!(
        err.to_string()
            .contains("master-2=https://10.213.0.12:2380"),
        "{err}"
    );
    assert!(EtcdInput::founding(&spec, "nobody").is_err());
}

#[test]
fn apiserver_refuses_plain_http_etcd_and_names_no_key() {
    let spec = cluster();
    let mut api = ApiServerInput::new(&spec, "master-1", encryption()).unwrap();
    api.etcd_servers = vec!["http://10.213.0.11:2379".into()];
    assert!(api.render().unwrap_err().to_string().contains("https://"));
    api.etcd_servers.clear();
    assert!(api.render().unwrap_err().to_string().contains("empty"));
    let shown = format!("{api:?}");
    assert!(shown.contains("<redacted>"), "{shown}");
}

#[test]
fn containerd_and_cni_refuse_unusable_inputs() {
    let host = container_host();
    let err = ContainerdInput {
        host: &host,
        sandbox_image: "pause 3.10".into(),
    }
    .render()
    .unwrap_err();
    assert!(err.to_string().contains("sandbox image"), "{err}");
    let err = CniInput {
        pod_cidr: Cidr::parse("10.244.0.0/31").unwrap(),
    }
    .render()
    .unwrap_err();
    assert!(err.to_string().contains("/30"), "{err}");
    let v6 = CniInput {
        pod_cidr: Cidr::parse("fd00:10:244::/64").unwrap(),
    }
    .render()
    .unwrap();
    assert!(v6.get(paths::CNI_CONFLIST).unwrap().contains("\"::/0\""));
}

#[test]
fn exec_start_parser_reads_what_the_writer_writes() {
    let spec = cluster();
    let mut api = ApiServerInput::new(&spec, "master-1", encryption()).unwrap();
    api.extra_args = map(&[("x", r#"50% of $A \ "q" it's"#), ("y", r"ends\")]);
    let files = api.render().unwrap();
    let args = exec_start(files.get(paths::unit_path("kube-apiserver")).unwrap());
    assert_eq!(args[0], "/usr/local/bin/kube-apiserver");
    assert!(
        args.contains(&r#"--x=50% of $A \ "q" it's"#.to_owned()),
        "{args:?}"
    );
    assert_eq!(args.last().unwrap(), r"--y=ends\");
    assert_eq!(args[1], "--advertise-address=10.213.0.11");
}
