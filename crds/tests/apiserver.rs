//! The CRDs, proven against a real kube-apiserver (and etcd) from the
//! toolchain: what the API server accepts, refuses and explains is what users
//! get. Needs `bash e2e/toolchain/build.sh` first; fails, not skips, without it.
//!
//! Contract with the generated files:
//! - `charts/kubeseed/crds/*.yaml`: one CustomResourceDefinition per file.
//! - `docs/examples/*.yaml`: valid objects (several documents allowed).
//! - `docs/examples/invalid/*.yaml`: first line `# expect: <substring of the
//!   API server's error>`. Every document but the last must be accepted (so a
//!   two-document file tests an update); the last must be refused with that
//!   substring.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use kubeseed_testenv::ControlPlane;

fn repo() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().unwrap_or(crate_dir).to_path_buf()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML files in {}", dir.display());
    files
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(mut cmd: Command) -> Output {
    let shown = format!("{cmd:?}");
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"))
}

fn run_ok(cmd: Command) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(out.status.success(), "{shown} failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `kubectl apply --server-side -f -` with `doc` on stdin.
fn apply_stdin(cp: &ControlPlane, doc: &str) -> Output {
    let mut child = cp
        .kubectl()
        .args([
            "apply",
            "--server-side",
            "--field-manager=kubeseed-crd-test",
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Documents of a multi-document YAML file, empty ones dropped.
fn documents(yaml: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in yaml.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(last) = docs.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    docs.into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

fn crd_names() -> Vec<(PathBuf, serde_json::Value)> {
    yaml_files(&repo().join("charts/kubeseed/crds"))
        .into_iter()
        .map(|p| {
            let crd: serde_json::Value =
                serde_yaml::from_str(&std::fs::read_to_string(&p).unwrap())
                    .unwrap_or_else(|e| panic!("{} is not YAML: {e}", p.display()));
            assert_eq!(
                crd["kind"],
                "CustomResourceDefinition",
                "{} must hold one CustomResourceDefinition",
                p.display()
            );
            (p, crd)
        })
        .collect()
}

/// Applies the chart's CRDs and waits until every one is Established.
fn install_crds(cp: &ControlPlane) -> Vec<serde_json::Value> {
    let crds = crd_names();
    let mut apply = cp.kubectl();
    apply.args(["apply", "--server-side", "-f"]);
    apply.arg(repo().join("charts/kubeseed/crds"));
    run_ok(apply);
    wait_established(cp);
    crds.into_iter().map(|(_, c)| c).collect()
}

/// Waits until every one of the chart's CRDs is Established.
fn wait_established(cp: &ControlPlane) {
    for (_, crd) in crd_names() {
        let name = crd["metadata"]["name"].as_str().unwrap();
        let mut wait = cp.kubectl();
        wait.args([
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            &format!("crd/{name}"),
        ]);
        run_ok(wait);
    }
}

fn ensure_namespace(cp: &ControlPlane, name: &str) {
    let mut cmd = cp.kubectl();
    cmd.args(["create", "namespace", name]);
    let out = run(cmd);
    assert!(
        out.status.success() || text(&out).contains("AlreadyExists"),
        "{}",
        text(&out)
    );
}

fn delete_file(cp: &ControlPlane, file: &Path) {
    let mut cmd = cp.kubectl();
    cmd.args(["delete", "--ignore-not-found", "--wait=true", "-f"])
        .arg(file);
    run_ok(cmd);
}

#[tokio::test]
async fn crds_accept_examples_refuse_invalid_ones_and_explain_fields() {
    let cp = ControlPlane::start().await.unwrap();
    let crds = install_crds(&cp);
    // The Secret example lives here; the chart creates it in a real install.
    ensure_namespace(&cp, "kubeseed-system");

    // Every valid example is accepted as written.
    let mut failures = Vec::new();
    for file in yaml_files(&repo().join("docs/examples")) {
        let mut cmd = cp.kubectl();
        cmd.args([
            "apply",
            "--server-side",
            "--field-manager=kubeseed-crd-test",
            "-f",
        ])
        .arg(&file);
        let out = run(cmd);
        if !out.status.success() {
            failures.push(format!("{} was refused:\n{}", file.display(), text(&out)));
            continue;
        }
        let mut get = cp.kubectl();
        get.args(["get", "-o", "name", "-f"]).arg(&file);
        run_ok(get);
        // Examples may reuse names; each file starts from a clean slate.
        delete_file(&cp, &file);
    }

    // Values at the edges of every format are accepted (the refused side of
    // each is an invalid example below).
    for file in yaml_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/accepted")) {
        let yaml = std::fs::read_to_string(&file).unwrap();
        for (i, doc) in documents(&yaml).iter().enumerate() {
            let out = apply_stdin(&cp, doc);
            if !out.status.success() {
                failures.push(format!(
                    "{} document {} was refused:\n{}",
                    file.display(),
                    i + 1,
                    text(&out)
                ));
            }
        }
        delete_file(&cp, &file);
    }

    // Every invalid example is refused with the message it names.
    for file in yaml_files(&repo().join("docs/examples/invalid")) {
        let yaml = std::fs::read_to_string(&file).unwrap();
        let Some(expect) = yaml
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect:"))
            .map(str::trim)
            .filter(|e| !e.is_empty())
        else {
            failures.push(format!(
                "{} must begin with a line `# expect: <part of the API server's error>`",
                file.display()
            ));
            continue;
        };
        let docs = documents(&yaml);
        let Some((last, setup)) = docs.split_last() else {
            failures.push(format!("{} has no YAML document", file.display()));
            continue;
        };
        let mut setup_ok = true;
        for (i, doc) in setup.iter().enumerate() {
            let out = apply_stdin(&cp, doc);
            if !out.status.success() {
                failures.push(format!(
                    "{}: document {} (setup for the refused one) was refused:\n{}",
                    file.display(),
                    i + 1,
                    text(&out)
                ));
                setup_ok = false;
            }
        }
        if setup_ok {
            let out = apply_stdin(&cp, last);
            let said = text(&out);
            if out.status.success() {
                failures.push(format!(
                    "{} was accepted but should be refused with \"{expect}\":\n{said}",
                    file.display()
                ));
            } else if !said.contains(expect) {
                failures.push(format!(
                    "{} was refused, but without \"{expect}\"; the API server said:\n{said}",
                    file.display()
                ));
            } else {
                eprintln!("refused as expected: {}", file.display());
            }
        }
        delete_file(&cp, &file);
    }

    // `kubectl explain` shows the field docs the CRD carries, for the paths
    // each kind documents; a path missing from the schema is a failure.
    for crd in &crds {
        let kind = crd["spec"]["names"]["kind"].as_str().unwrap();
        let plural = crd["spec"]["names"]["plural"].as_str().unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let Some(paths) = explained_paths(kind) else {
            failures.push(format!("no documented paths to explain for kind {kind}"));
            continue;
        };
        for path in paths {
            let Some(node) = schema_node(schema, path) else {
                failures.push(format!(
                    "{plural}.{path} is documented but missing from the CRD's schema"
                ));
                continue;
            };
            let Some(doc) = node["description"].as_str() else {
                failures.push(format!("{plural}.{path} has no description"));
                continue;
            };
            let field = format!("{plural}.{path}");
            let mut cmd = cp.kubectl();
            cmd.args(["explain", &field]);
            let out = run(cmd);
            if !out.status.success() {
                failures.push(format!("kubectl explain {field} failed:\n{}", text(&out)));
                continue;
            }
            let shown = squash(&String::from_utf8_lossy(&out.stdout));
            let want = first_words(doc, 12);
            if !shown.contains(&want) {
                failures.push(format!(
                    "kubectl explain {field} does not show \"{want}\"; it said:\n{shown}"
                ));
            }
        }
    }
    // The field the issue names explicitly must be documented.
    let mut cmd = cp.kubectl();
    cmd.args(["explain", "controlplanemembers.spec.host"]);
    let explained = run_ok(cmd);
    assert!(explained.contains("DESCRIPTION"), "{explained}");
    assert!(explained.contains("address"), "{explained}");

    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn printer_columns_show_in_kubectl_get() {
    let cp = ControlPlane::start().await.unwrap();
    let crds = install_crds(&cp);
    ensure_namespace(&cp, "kubeseed-system");
    for crd in &crds {
        let plural = crd["spec"]["names"]["plural"].as_str().unwrap();
        let columns: Vec<String> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_uppercase))
                    .collect()
            })
            .unwrap_or_default();
        // An empty list prints no header, so create one object from the
        // first example of this kind.
        for file in yaml_files(&repo().join("docs/examples")) {
            let yaml = std::fs::read_to_string(&file).unwrap();
            if !yaml.contains(&format!(
                "kind: {}",
                crd["spec"]["names"]["kind"].as_str().unwrap()
            )) {
                continue;
            }
            let mut apply = cp.kubectl();
            apply.args(["apply", "--server-side", "-f"]).arg(&file);
            run_ok(apply);
            let mut get = cp.kubectl();
            get.args(["get", plural]);
            let table = run_ok(get);
            let header = table.lines().next().unwrap_or_default().to_owned();
            for col in &columns {
                assert!(
                    header.contains(col.as_str()),
                    "{plural}: column {col} missing in:\n{table}"
                );
            }
            delete_file(&cp, &file);
            break;
        }
    }
}

#[tokio::test]
async fn chart_installs_with_helm4_and_helm3() {
    let chart = repo().join("charts/kubeseed");
    assert!(
        chart.join("Chart.yaml").is_file(),
        "{} has no Chart.yaml yet: the chart must exist for this test",
        chart.display()
    );
    for (label, use_helm3) in [("helm 4", false), ("helm 3", true)] {
        // A fresh control plane each, so each Helm installs the CRDs itself.
        let cp = ControlPlane::start().await.unwrap();
        let mut cmd = if use_helm3 { cp.helm3() } else { cp.helm() };
        cmd.args([
            "install",
            "kubeseed",
            "--namespace",
            "kubeseed-system",
            "--create-namespace",
        ])
        .arg(&chart);
        let out = run(cmd);
        assert!(
            out.status.success(),
            "{label} install failed:\n{}",
            text(&out)
        );
        wait_established(&cp);
        let mut status = if use_helm3 { cp.helm3() } else { cp.helm() };
        status.args(["status", "kubeseed", "--namespace", "kubeseed-system"]);
        let said = run_ok(status);
        assert!(said.contains("STATUS: deployed"), "{label}: {said}");
        eprintln!("{label}: chart installed");
    }
}

/// The fields whose `kubectl explain` text each kind documents (the README's
/// CRD reference names them).
fn explained_paths(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "ControlPlaneMember" => &[
            "spec",
            "spec.host",
            "spec.host.address",
            "spec.host.bastion.hostKey",
            "spec.advertiseAddress",
            "spec.etcd.topology",
            "spec.etcd.dataDir",
            "spec.apiServer.extraArgs",
            "spec.kubelet.taints",
            "status.observedBastionHostKey",
        ],
        "EtcdMember" => &[
            "spec",
            "spec.host.address",
            "spec.dataDir",
            "spec.clientPort",
            "status.memberId",
        ],
        "ApiLoadBalancer" => &[
            "spec",
            "spec.hosts.host.address",
            "spec.hosts.priority",
            "spec.vip",
            "spec.interface",
            "status.vipHolder",
        ],
        "WorkerNode" => &[
            "spec",
            "spec.host.address",
            "spec.kubelet.labels",
            "spec.kubeProxyExtraArgs",
            "status.nodeName",
        ],
        _ => return None,
    })
}

/// The schema of a dotted field path (lists are walked through their
/// items, as `kubectl explain` does), or `None` when it is not there.
fn schema_node<'a>(schema: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let mut node = schema;
    for part in path.split('.') {
        while node["type"] == "array" {
            node = &node["items"];
        }
        node = node["properties"].get(part)?;
    }
    Some(node)
}

/// Whitespace collapsed to single spaces (kubectl explain wraps text).
fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn first_words(s: &str, n: usize) -> String {
    s.split_whitespace().take(n).collect::<Vec<_>>().join(" ")
}

#[test]
fn schema_paths_walk_lists_and_report_missing_fields() {
    let schema = serde_json::json!({"properties": {"spec": {"properties": {
        "hosts": {"type": "array", "items": {"properties": {"host": {"description": "h"}}}}}}}});
    assert_eq!(
        schema_node(&schema, "spec.hosts.host").unwrap()["description"],
        "h"
    );
    assert!(schema_node(&schema, "spec.host").is_none());
    assert!(schema_node(&schema, "spec.hosts.missing").is_none());
}

#[test]
fn documents_split_on_separators_and_drop_comment_only_ones() {
    let docs = documents("# expect: x\n# note\n---\na: 1\n---\n\n---\nb: 2\n");
    assert_eq!(docs, ["a: 1\n", "b: 2\n"]);
    let docs = documents("# expect: x\nkind: A\n---\nkind: B\n");
    assert_eq!(docs.len(), 2);
    assert!(docs[0].contains("kind: A"));
}
