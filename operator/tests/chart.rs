//! The Helm chart, checked with the real Helm 4 and Helm 3 of the toolchain:
//! lint, schema refusals, golden renders, and what the rendered manifests
//! promise (restrictive securityContext, least-privilege RBAC).
//!
//! Kind of test: real programs started by the test (no API server needed).
//! `KUBESEED_UPDATE_GOLDEN=1 cargo test -p kubeseed-operator --test chart`
//! rewrites the golden files after an intended change (refused when `CI` is
//! set); review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{chart, run_err, run_ok, test_file};
use kubeseed_testenv::golden;
use kubeseed_testenv::toolchain::Toolchain;
use serde_yaml::Value;

struct Helm {
    program: PathBuf,
    home: tempfile::TempDir,
}

impl Helm {
    fn all() -> Vec<Helm> {
        let tc = Toolchain::locate().expect("toolchain (bash e2e/toolchain/build.sh)");
        [tc.helm(), tc.helm3()]
            .into_iter()
            .map(|program| Helm {
                program,
                home: tempfile::tempdir().unwrap(),
            })
            .collect()
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.program);
        let h = self.home.path();
        c.env("HELM_CACHE_HOME", h.join("cache"))
            .env("HELM_CONFIG_HOME", h.join("config"))
            .env("HELM_DATA_HOME", h.join("data"))
            .env_remove("KUBECONFIG");
        c
    }

    fn template(&self, values: Option<&Path>, set: &[&str]) -> Command {
        let mut c = self.cmd();
        c.arg("template")
            .arg("kubeseed")
            .arg(chart())
            .args(["--namespace", "kubeseed-system"]);
        if let Some(v) = values {
            c.arg("--values").arg(v);
        }
        for s in set {
            c.args(["--set", s]);
        }
        c
    }
}

fn custom_values() -> PathBuf {
    test_file("values/custom.yaml")
}

#[test]
fn lint_passes_with_default_and_custom_values() {
    for helm in Helm::all() {
        run_ok(helm.cmd().args(["lint", "--strict"]).arg(chart()));
        run_ok(
            helm.cmd()
                .args(["lint", "--strict"])
                .arg(chart())
                .arg("--values")
                .arg(custom_values()),
        );
    }
}

#[test]
fn schema_and_template_checks_refuse_bad_values() {
    for helm in Helm::all() {
        for (set, why) in [
            ("replicaCount=0", "replicaCount"),
            ("notAKey=1", "notAKey"),
            ("operator.logFormat=xml", "logFormat"),
            ("operator.leaderElection.leaseDuration=15", "leaseDuration"),
            ("image.digest=sha256:nothex", "digest"),
            // Approving this signer's CSRs would mint any client certificate.
            (
                "rbac.csrSigners={kubernetes.io/kube-apiserver-client}",
                "csrSigners",
            ),
            ("rbac.csrSigners={example.com/anything}", "csrSigners"),
            ("rbac.ownedSecrets={Bad_Name}", "ownedSecrets"),
        ] {
            let err = run_err(&mut helm.template(None, &[set]));
            assert!(err.contains(why), "{set}: {err}");
        }
        let err = run_err(&mut helm.template(None, &["operator.leaderElection.enabled=false"]));
        assert!(err.contains("needs replicaCount: 1"), "{err}");
        run_ok(&mut helm.template(
            None,
            &["operator.leaderElection.enabled=false", "replicaCount=1"],
        ));
    }
}

/// Taken while a test reads or writes the golden files, so a rewrite does
/// not race the test that checks they stay unchanged.
static GOLDEN_FILES: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Renders with Helm 4 and compares with the golden file; Helm 3 must render
/// the same manifests.
fn check_golden(values: Option<&Path>, golden: &str) {
    let _turn = GOLDEN_FILES.lock().unwrap_or_else(|e| e.into_inner());
    let helms = Helm::all();
    let rendered = run_ok(&mut helms[0].template(values, &[]));
    let rendered3 = run_ok(&mut helms[1].template(values, &[]));
    assert_eq!(
        docs(&rendered),
        docs(&rendered3),
        "Helm 3 and Helm 4 render differently"
    );
    let path = test_file(&format!("golden/{golden}"));
    if golden::update_requested() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with {}=1 to create it",
            path.display(),
            golden::UPDATE_ENV
        )
    });
    assert!(
        want == rendered,
        "{} differs from the render; if intended, run with {}=1.\n--- render ---\n{rendered}",
        path.display(),
        golden::UPDATE_ENV
    );
}

/// Under CI a request to rewrite the golden files fails the test and
/// leaves them as they are (this runs the golden test in a child process
/// of this very test binary).
#[test]
fn golden_files_are_never_rewritten_under_ci() {
    let _turn = GOLDEN_FILES.lock().unwrap_or_else(|e| e.into_inner());
    let path = test_file("golden/default.yaml");
    let before = std::fs::read(&path).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["default_render_matches_golden", "--exact", "--nocapture"])
        .env("CI", "true")
        .env(golden::UPDATE_ENV, "1")
        .env_remove("UPDATE_GOLDEN")
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "the golden test passed under CI with {}=1:\n{said}",
        golden::UPDATE_ENV
    );
    assert!(said.contains("refused under CI"), "{said}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "golden file changed");
}

#[test]
fn default_render_matches_golden() {
    check_golden(None, "default.yaml");
}

#[test]
fn custom_render_matches_golden() {
    check_golden(Some(&custom_values()), "custom.yaml");
}

fn docs(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

use serde::Deserialize as _;

fn find<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn strs(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn default_render_is_restrictive_and_complete() {
    let helm = &Helm::all()[0];
    let all = docs(&run_ok(&mut helm.template(None, &[])));

    let deploy = find(&all, "Deployment");
    assert_eq!(deploy.len(), 1);
    let pod = &deploy[0]["spec"]["template"]["spec"];
    assert_eq!(deploy[0]["spec"]["replicas"], 2);
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["dnsPolicy"], "ClusterFirstWithHostNet");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(
        pod["nodeSelector"]["node-role.kubernetes.io/control-plane"],
        ""
    );
    let tolerated: Vec<_> = pod["tolerations"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert!(tolerated.contains(&"node-role.kubernetes.io/control-plane"));
    assert!(tolerated.contains(&"node.kubernetes.io/not-ready"));
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["privileged"], false);
    assert_eq!(strs(&sc["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(strs(&c["args"]).contains(&"--leader-elect=true".to_owned()));

    assert_eq!(find(&all, "PodDisruptionBudget").len(), 1);
    assert_eq!(find(&all, "ServiceAccount").len(), 1);
    assert!(find(&all, "ServiceMonitor").is_empty());

    // No wildcard anywhere, and no Secret access outside a namespaced Role.
    for role in find(&all, "ClusterRole")
        .into_iter()
        .chain(find(&all, "Role"))
    {
        for rule in role["rules"].as_sequence().unwrap() {
            for field in ["verbs", "resources", "apiGroups"] {
                assert!(
                    !strs(&rule[field]).iter().any(|s| s == "*"),
                    "wildcard in {rule:?}"
                );
            }
        }
    }
    for rule in find(&all, "ClusterRole")[0]["rules"].as_sequence().unwrap() {
        let res = strs(&rule["resources"]);
        assert!(
            !res.iter().any(|r| r == "secrets"),
            "cluster-wide secrets: {rule:?}"
        );
        assert!(
            !res.iter()
                .any(|r| r.starts_with("clusterrole") || r.starts_with("role")),
            "RBAC objects: {rule:?}"
        );
        assert!(
            !strs(&rule["verbs"])
                .iter()
                .any(|v| v == "escalate" || v == "bind" || v == "impersonate"),
            "escalation verbs: {rule:?}"
        );
    }
    let kube_system: Vec<_> = find(&all, "Role")
        .into_iter()
        .filter(|r| r["metadata"]["namespace"] == "kube-system")
        .collect();
    assert_eq!(kube_system.len(), 1);
    assert_eq!(
        strs(&kube_system[0]["rules"][0]["verbs"]),
        ["create"],
        "kube-system: create bootstrap tokens only"
    );

    // Secrets in its own namespace: read all (members name their SSH-key
    // Secrets), create none, write only the ones it owns, by name.
    let own = find(&all, "Role")
        .into_iter()
        .find(|r| r["metadata"]["namespace"] == "kubeseed-system")
        .unwrap();
    for rule in own["rules"].as_sequence().unwrap() {
        if !strs(&rule["resources"]).contains(&"secrets".to_owned()) {
            continue;
        }
        let verbs = strs(&rule["verbs"]);
        assert!(!verbs.contains(&"create".to_owned()), "{rule:?}");
        assert!(!verbs.contains(&"delete".to_owned()), "{rule:?}");
        if verbs.iter().any(|v| v == "update" || v == "patch") {
            assert_eq!(
                strs(&rule["resourceNames"]),
                ["kubeseed-cluster"],
                "{rule:?}"
            );
        }
    }

    // What RBAC cannot say (create limited by name and type) the
    // ValidatingAdmissionPolicy says, for exactly this ServiceAccount.
    let policy = find(&all, "ValidatingAdmissionPolicy");
    assert_eq!(policy.len(), 1);
    let conditions = serde_yaml::to_string(&policy[0]["spec"]["matchConditions"]).unwrap();
    assert!(
        conditions.contains("system:serviceaccount:kubeseed-system:kubeseed")
            && conditions.contains("kube-system"),
        "{conditions}"
    );
    let validation = serde_yaml::to_string(&policy[0]["spec"]["validations"]).unwrap();
    assert!(
        validation.contains("bootstrap-token-")
            && validation.contains("bootstrap.kubernetes.io/token"),
        "{validation}"
    );
    let binding = find(&all, "ValidatingAdmissionPolicyBinding");
    assert_eq!(binding.len(), 1);
    assert_eq!(
        binding[0]["spec"]["policyName"],
        policy[0]["metadata"]["name"]
    );
    assert_eq!(strs(&binding[0]["spec"]["validationActions"]), ["Deny"]);
}
