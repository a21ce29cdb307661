//! Reading and changing the seeded cluster from the runner: kubeseed
//! objects, their conditions, and etcd's member list on a master.

use std::path::Path;
use std::time::{Duration, Instant};

use kubeseed_e2e::Lab;

use super::{kubectl, kubectl_ok};

/// An `etcdctl` command line for `host`'s shell, with the health-check
/// client certificate every stacked master holds, against `endpoints`.
pub fn etcdctl(endpoints: &str, args: &str) -> String {
    format!(
        "ETCDCTL_API=3 /usr/local/bin/etcdctl --endpoints={endpoints} \
         --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt \
         --key=/etc/kubernetes/pki/etcd/healthcheck-client.key --command-timeout=5s {args}"
    )
}

/// One line of `etcdctl member list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdRow {
    /// Hex member ID.
    pub id: String,
    /// `started`, or `unstarted` for a member added but not yet running.
    pub started: bool,
    /// Empty until the member has started.
    pub name: String,
    pub peer_urls: String,
    pub client_urls: String,
    pub learner: bool,
}

/// `etcdctl member list` through `host`'s own member.
pub fn etcd_rows(lab: &Lab, host: &str) -> Vec<EtcdRow> {
    let out = lab
        .exec_ok(
            host,
            &etcdctl("https://127.0.0.1:2379", "member list -w simple"),
        )
        .unwrap();
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            EtcdRow {
                id: f[0].to_owned(),
                started: f[1] == "started",
                name: f[2].to_owned(),
                peer_urls: f[3].to_owned(),
                client_urls: f[4].to_owned(),
                learner: f[5] == "true",
            }
        })
        .collect()
}

/// A `ControlPlaneMember` with the seed's SSH key Secret.
pub fn master_yaml(name: &str, address: &str, topology: &str) -> String {
    format!(
        "apiVersion: kubeseed.io/v1alpha1\nkind: ControlPlaneMember\nmetadata:\n  name: {name}\nspec:\n  host:\n    address: {address}\n    sshKeySecretRef:\n      name: kubeseed-ssh\n  etcd:\n    topology: {topology}\n"
    )
}

/// A Stacked `ControlPlaneMember`.
pub fn member_yaml(name: &str, address: &str) -> String {
    master_yaml(name, address, "Stacked")
}

/// A standalone `EtcdMember` with the seed's SSH key Secret.
pub fn etcd_member_yaml(name: &str, address: &str) -> String {
    format!(
        "apiVersion: kubeseed.io/v1alpha1\nkind: EtcdMember\nmetadata:\n  name: {name}\nspec:\n  host:\n    address: {address}\n    sshKeySecretRef:\n      name: kubeseed-ssh\n"
    )
}

/// A `WorkerNode` with the seed's SSH key Secret and `extra` spec lines
/// (indented by two spaces).
pub fn worker_yaml(name: &str, address: &str, extra: &str) -> String {
    format!(
        "apiVersion: kubeseed.io/v1alpha1\nkind: WorkerNode\nmetadata:\n  name: {name}\nspec:\n  host:\n    address: {address}\n    sshKeySecretRef:\n      name: kubeseed-ssh\n{extra}"
    )
}

/// `kubectl apply` of `yaml` (one or more documents).
pub fn apply(state: &Path, yaml: &str) {
    let file = state.join("member.yaml");
    std::fs::write(&file, yaml).unwrap();
    kubectl_ok(state, &["apply", "-f", file.to_str().unwrap()]);
}

/// One jsonpath of one object (`kind/name`); empty when absent.
pub fn jsonpath(state: &Path, kind_name: &str, path: &str) -> String {
    let out = kubectl(state)
        .args(["get", kind_name, "-o", &format!("jsonpath={path}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// (status, reason) of condition `type_` of `kind/name`.
pub fn condition(state: &Path, kind_name: &str, type_: &str) -> (String, String) {
    (
        jsonpath(
            state,
            kind_name,
            &format!("{{.status.conditions[?(@.type==\"{type_}\")].status}}"),
        ),
        jsonpath(
            state,
            kind_name,
            &format!("{{.status.conditions[?(@.type==\"{type_}\")].reason}}"),
        ),
    )
}

/// Whether `kind/name` exists.
pub fn exists(state: &Path, kind_name: &str) -> bool {
    kubectl(state)
        .args(["get", kind_name])
        .output()
        .unwrap()
        .status
        .success()
}

/// `etcdctl` on a master against its own member.
pub fn local_etcdctl(args: &str) -> String {
    etcdctl("https://127.0.0.1:2379", args)
}

/// `etcdctl member list` on `host`, as printed (peer URLs included).
pub fn etcd_member_lines(lab: &Lab, host: &str) -> String {
    lab.exec_ok(host, &local_etcdctl("member list -w simple"))
        .unwrap_or_default()
}

/// `etcdctl member list` on `host`: (name, is learner) per member.
pub fn etcd_members(lab: &Lab, host: &str) -> Vec<(String, bool)> {
    etcd_rows(lab, host)
        .into_iter()
        .map(|r| (r.name, r.learner))
        .collect()
}

/// The operator's view, printed when a step does not happen in time.
pub fn dump(lab: &Lab, state: &Path, what: &str) {
    let out = |args: &[&str]| {
        let o = kubectl(state).args(args).output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    eprintln!(
        "---- {what}: members ----\n{}",
        out(&["get", "cpm,etcdmembers,nodes,pods", "-A", "-o", "wide"])
    );
    eprintln!(
        "---- status ----\n{}",
        out(&[
            "get",
            "cpm,etcdmembers",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.status.conditions}{\"\\n\"}{end}"
        ])
    );
    eprintln!(
        "---- operator logs ----\n{}",
        out(&[
            "-n",
            "kubeseed-system",
            "logs",
            "-l",
            "app.kubernetes.io/name=kubeseed",
            "--tail=60",
            "--prefix"
        ])
    );
    eprintln!("---- etcd ----\n{}", etcd_member_lines(lab, "host1"));
}

/// Polls `f` every 500 ms; the operator's view is printed before failing.
pub fn eventually_or_dump(
    lab: &Lab,
    state: &Path,
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + limit;
    while !f() {
        if Instant::now() > deadline {
            dump(lab, state, what);
            panic!("{what} did not happen in {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Waits for `kind/name` to be Ready, failing at once on a refusal reason.
pub fn wait_ready(lab: &Lab, state: &Path, kind_name: &str, limit: Duration) {
    eventually_or_dump(lab, state, &format!("{kind_name} Ready"), limit, || {
        let (ready, reason) = condition(state, kind_name, "Ready");
        assert!(
            !matches!(
                reason.as_str(),
                "Conflict" | "PreflightFailed" | "HostKeyMismatch" | "Unsupported"
            ),
            "{kind_name}: {reason}"
        );
        ready == "True"
    });
}

/// The names of every object of `kind` (cluster-wide or in the default namespace).
fn names(state: &Path, kind: &str) -> std::collections::BTreeSet<String> {
    kubectl_ok(
        state,
        &[
            "get",
            kind,
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}",
        ],
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// The end state a user expects whatever happened before: etcd's members
/// are exactly the `EtcdMember`s, the Nodes exactly the `ControlPlaneMember`s
/// and `WorkerNode`s (their names are the hosts' names in these scenarios),
/// `balancer`'s backends exactly the Ready masters, and every Secret in etcd
/// ciphertext. `etcd_host` is a master whose etcd member answers.
pub fn assert_consistent(lab: &Lab, state: &Path, etcd_host: &str, balancer: Option<&str>) {
    let etcd: std::collections::BTreeSet<String> = etcd_members(lab, etcd_host)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        etcd,
        names(state, "etcdmembers"),
        "etcd's members vs EtcdMembers"
    );
    let masters = names(state, "controlplanemembers");
    let members: std::collections::BTreeSet<String> = masters
        .union(&names(state, "workernodes"))
        .cloned()
        .collect();
    assert_eq!(names(state, "nodes"), members, "Nodes vs members");
    if let Some(balancer) = balancer {
        let ready: std::collections::BTreeSet<String> = masters
            .iter()
            .filter(|m| condition(state, &format!("controlplanemember/{m}"), "Ready").0 == "True")
            .map(|m| {
                let address = jsonpath(
                    state,
                    &format!("controlplanemember/{m}"),
                    "{.spec.host.address}",
                );
                format!("{address}:6443")
            })
            .collect();
        let backends: std::collections::BTreeSet<String> =
            jsonpath(state, &format!("apilb/{balancer}"), "{.status.backends[*]}")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        assert_eq!(
            backends, ready,
            "{balancer}'s backends vs the Ready masters"
        );
    }
    let secrets = local_etcdctl("get /registry/secrets --prefix --keys-only");
    let value = local_etcdctl("get \"$k\" --print-value-only");
    let report = lab
        .exec_ok(
            etcd_host,
            &format!(
                "n=0; for k in $({secrets}); do n=$((n+1)); {value} | head -c 8 | grep -q '^k8s:enc' || echo \"plain $k\"; done; echo \"secrets $n\""
            ),
        )
        .unwrap();
    assert!(
        !report.contains("plain "),
        "Secrets stored unencrypted: {report}"
    );
    let count: usize = report
        .lines()
        .find_map(|l| l.strip_prefix("secrets "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(count > 0, "no Secret read from etcd: {report}");
    eprintln!("consistent: etcd {etcd:?}, Nodes {members:?}, {count} Secrets all ciphertext");
}
