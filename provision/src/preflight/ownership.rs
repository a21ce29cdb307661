//! Which cluster a host's existing state belongs to, and the checks that
//! depend on it: /etc/kubernetes, /var/lib/etcd, /var/lib/kubeseed and the
//! ports. State and ports of THIS cluster mean a resumed run (Pass); of
//! another cluster, or of unknown origin, they fail.

use super::expect::{ClusterIdentity, Expectations, component_for_port, is_component};
use super::facts::{ExistingState, Listener, SystemFacts};
use super::parse::normalize_fingerprint;
use super::report::Check;

/// Whose state the host holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ownership {
    /// None at all.
    Fresh,
    /// This cluster's: every marker found matches, and at least one does.
    ThisCluster {
        /// The markers that matched.
        evidence: Vec<String>,
    },
    /// Another cluster's: a marker does not match this cluster (or there
    /// is no "this cluster" yet: a new cluster's seed).
    OtherCluster {
        /// The markers that did not match.
        evidence: Vec<String>,
    },
    /// State without any marker to compare (etcd data, kubeconfigs...).
    Unknown,
}

impl Ownership {
    /// Whether the state is this cluster's.
    pub fn is_this_cluster(&self) -> bool {
        matches!(self, Ownership::ThisCluster { .. })
    }
}

fn short(fp: &str) -> String {
    let fp = normalize_fingerprint(fp);
    match fp.split_once(':') {
        Some((kind, hex)) if hex.len() > 16 => format!("{kind}:{}...", &hex[..16]),
        _ => fp,
    }
}

/// Compares the host's markers (cluster-id, CA fingerprints) with
/// `expected` (`None`: a new cluster, so any marker is another cluster's).
pub fn ownership(state: &ExistingState, expected: Option<&ClusterIdentity>) -> Ownership {
    if state.is_empty() {
        return Ownership::Fresh;
    }
    let mut matched = Vec::new();
    let mut foreign = Vec::new();
    if let Some(id) = &state.cluster_id {
        match expected {
            Some(e) if e.cluster_id == *id => matched.push(format!("cluster-id {id}")),
            _ => foreign.push(format!("cluster-id {id}")),
        }
    }
    let cas = [
        (
            "pki/ca.crt",
            &state.ca_fingerprint,
            expected.and_then(|e| e.ca_fingerprint.as_ref()),
        ),
        (
            "pki/etcd/ca.crt",
            &state.etcd_ca_fingerprint,
            expected.and_then(|e| e.etcd_ca_fingerprint.as_ref()),
        ),
    ];
    for (what, on_host, wanted) in cas {
        let Some(on_host) = on_host else { continue };
        match (expected, wanted) {
            (Some(_), Some(w)) if normalize_fingerprint(w) == normalize_fingerprint(on_host) => {
                matched.push(format!("{what} {}", short(on_host)));
            }
            (Some(_), Some(_)) | (None, _) => {
                foreign.push(format!("{what} {}", short(on_host)));
            }
            // This cluster's fingerprint is not known: nothing to compare.
            (Some(_), None) => {}
        }
    }
    if !foreign.is_empty() {
        Ownership::OtherCluster { evidence: foreign }
    } else if !matched.is_empty() {
        Ownership::ThisCluster { evidence: matched }
    } else {
        Ownership::Unknown
    }
}

const RESET: &str = "systemctl disable --now kubelet etcd kube-apiserver kube-controller-manager \
kube-scheduler; rm -rf /etc/kubernetes /var/lib/etcd /var/lib/kubeseed /var/lib/kubelet";

/// The fix for a host that holds state that is not this cluster's.
pub(crate) fn reset_fix(owner: &Ownership) -> String {
    match owner {
        Ownership::OtherCluster { evidence } => format!(
            "this host already belongs to another cluster ({}): reset it ({RESET}) or pick another host",
            evidence.join(", ")
        ),
        _ => format!(
            "this host holds Kubernetes state of unknown origin: if nothing in it is needed, \
             reset it ({RESET}) or pick another host"
        ),
    }
}

fn whose(owner: &Ownership) -> String {
    match owner {
        Ownership::OtherCluster { evidence } => {
            format!("of another cluster ({})", evidence.join(", "))
        }
        Ownership::ThisCluster { .. } => "of this cluster".into(),
        Ownership::Fresh | Ownership::Unknown => {
            "of unknown origin (no kubeseed cluster-id, no CA of this cluster)".into()
        }
    }
}

fn resuming(owner: &Ownership) -> String {
    match owner {
        Ownership::ThisCluster { evidence } => {
            format!("of this cluster ({}): resuming", evidence.join(", "))
        }
        _ => String::new(),
    }
}

/// A few names of a listing, for a detail line.
fn some_of(files: &[String], strip: &str) -> String {
    let names: Vec<&str> = files
        .iter()
        .take(4)
        .map(|f| f.strip_prefix(strip).unwrap_or(f))
        .collect();
    let more = files.len().saturating_sub(names.len());
    if more > 0 {
        format!("{}, and {more} more", names.join(", "))
    } else {
        names.join(", ")
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// /etc/kubernetes, /var/lib/etcd and /var/lib/kubeseed.
pub(crate) fn state_checks(state: &ExistingState, owner: &Ownership) -> Vec<Check> {
    let mut checks = Vec::new();

    let name = "/etc/kubernetes";
    checks.push(match &state.etc_kubernetes {
        None => Check::pass(name, "absent"),
        Some(files) if files.is_empty() => Check::pass(name, "no files"),
        Some(files) if owner.is_this_cluster() => Check::pass(
            name,
            format!("{} {}", plural(files.len(), "file"), resuming(owner)),
        ),
        Some(files) => Check::fail(
            name,
            format!(
                "{} ({}) {}",
                plural(files.len(), "file"),
                some_of(files, "/etc/kubernetes/"),
                whose(owner)
            ),
            reset_fix(owner),
        ),
    });

    let name = "/var/lib/etcd";
    let member = if state.etcd_member() {
        "etcd data with a member/ directory"
    } else {
        "etcd data"
    };
    checks.push(match &state.var_lib_etcd {
        None => Check::pass(name, "absent"),
        Some(entries) if entries.is_empty() => Check::pass(name, "empty"),
        Some(_) if owner.is_this_cluster() => {
            Check::pass(name, format!("{member} {}", resuming(owner)))
        }
        Some(entries) => Check::fail(
            name,
            format!(
                "{member} ({}) {}: an etcd started on it would come back as that cluster's member",
                some_of(entries, ""),
                whose(owner)
            ),
            match owner {
                Ownership::OtherCluster { .. } => reset_fix(owner),
                _ => "if nothing in it is needed: systemctl disable --now etcd; \
                      mv /var/lib/etcd /var/lib/etcd.old (or pick another host)"
                    .to_owned(),
            },
        ),
    });

    let name = "/var/lib/kubeseed";
    checks.push(match (&state.var_lib_kubeseed, &state.cluster_id) {
        (None, None) => Check::pass(name, "absent"),
        (Some(files), None) if files.is_empty() => Check::pass(name, "no files"),
        _ if owner.is_this_cluster() => Check::pass(name, format!("state {}", resuming(owner))),
        (files, _) => Check::fail(
            name,
            format!(
                "kubeseed state ({}) {}",
                some_of(files.as_deref().unwrap_or_default(), "/var/lib/kubeseed/"),
                whose(owner)
            ),
            reset_fix(owner),
        ),
    });
    checks
}

fn holders(listeners: &[&Listener]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for l in listeners {
        if l.processes.is_empty() {
            parts.push(format!("a process preflight cannot see, on {}", l.address));
        }
        for p in &l.processes {
            let s = format!("{} (pid {}) on {}", p.name, p.pid, l.address);
            if !parts.contains(&s) {
                parts.push(s);
            }
        }
    }
    parts.join(", ")
}

/// One check per port the role needs.
pub(crate) fn port_checks(
    sys: &SystemFacts,
    expect: &Expectations,
    owner: &Ownership,
) -> Vec<Check> {
    let mut checks = Vec::new();
    for &port in &expect.ports {
        let name = format!("port {port}");
        let component = component_for_port(port);
        let held: Vec<&Listener> = sys.listeners.iter().filter(|l| l.port == port).collect();
        if held.is_empty() {
            checks.push(Check::pass(
                name,
                match component {
                    Some(c) => format!("free (for {c})"),
                    None => "free".into(),
                },
            ));
            continue;
        }
        let all_ours = component.is_some_and(|c| {
            held.iter().all(|l| {
                !l.processes.is_empty() && l.processes.iter().all(|p| is_component(&p.name, c))
            })
        });
        let who = holders(&held);
        let finder = format!("ss -tlnp 'sport = :{port}'");
        let check = if all_ours && owner.is_this_cluster() {
            Check::pass(name, format!("held by this cluster's {who}: resuming"))
        } else if all_ours {
            Check::fail(
                name,
                format!("held by {who}, {}", whose(owner)),
                match owner {
                    Ownership::OtherCluster { .. } => reset_fix(owner),
                    _ => format!(
                        "if it is a leftover, stop it (systemctl disable --now {}) or pick another host",
                        component.unwrap_or("UNIT")
                    ),
                },
            )
        } else {
            let stop = held
                .iter()
                .flat_map(|l| l.processes.iter())
                .map(|p| p.name.as_str())
                .next()
                .map(|n| format!("systemctl disable --now {n} if that is its unit, or `kill` it; "))
                .unwrap_or_default();
            Check::fail(
                name,
                format!("in use: held by {who}"),
                format!("free port {port}: {stop}`{finder}` shows the holder"),
            )
        };
        checks.push(check);
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> ClusterIdentity {
        ClusterIdentity {
            cluster_id: "c-1234".into(),
            ca_fingerprint: Some("sha256:aaaa".into()),
            etcd_ca_fingerprint: Some("SHA256:BB:BB".into()),
        }
    }

    fn state() -> ExistingState {
        ExistingState {
            etc_kubernetes: Some(vec!["/etc/kubernetes/pki/ca.crt".into()]),
            var_lib_etcd: Some(vec!["member".into()]),
            var_lib_kubeseed: Some(vec!["/var/lib/kubeseed/cluster-id".into()]),
            cluster_id: Some("c-1234".into()),
            ca_fingerprint: Some("sha256:aaaa".into()),
            etcd_ca_fingerprint: Some("sha256:bbbb".into()),
        }
    }

    #[test]
    fn fresh_host() {
        assert_eq!(ownership(&ExistingState::default(), None), Ownership::Fresh);
        let empty_dirs = ExistingState {
            etc_kubernetes: Some(vec![]),
            var_lib_etcd: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(ownership(&empty_dirs, Some(&identity())), Ownership::Fresh);
    }

    #[test]
    fn this_cluster_when_every_marker_matches() {
        let o = ownership(&state(), Some(&identity()));
        let Ownership::ThisCluster { evidence } = o else {
            panic!("{o:?}")
        };
        assert_eq!(evidence.len(), 3, "{evidence:?}");
        assert_eq!(evidence[0], "cluster-id c-1234");
    }

    #[test]
    fn another_cluster_when_any_marker_differs() {
        let mut s = state();
        s.etcd_ca_fingerprint = Some("sha256:cccc".into());
        let o = ownership(&s, Some(&identity()));
        assert_eq!(
            o,
            Ownership::OtherCluster {
                evidence: vec!["pki/etcd/ca.crt sha256:cccc".into()]
            }
        );
        let mut s = state();
        s.cluster_id = Some("c-9999".into());
        assert!(matches!(
            ownership(&s, Some(&identity())),
            Ownership::OtherCluster { .. }
        ));
    }

    #[test]
    fn a_new_cluster_owns_nothing_yet() {
        let o = ownership(&state(), None);
        let Ownership::OtherCluster { evidence } = o else {
            panic!("{o:?}")
        };
        assert_eq!(evidence.len(), 3);
    }

    #[test]
    fn unknown_without_comparable_markers() {
        let s = ExistingState {
            var_lib_etcd: Some(vec!["member".into()]),
            ..Default::default()
        };
        assert_eq!(ownership(&s, Some(&identity())), Ownership::Unknown);
        assert_eq!(ownership(&s, None), Ownership::Unknown);
        // A CA whose fingerprint this cluster does not know cannot decide.
        let s = ExistingState {
            etc_kubernetes: Some(vec!["/etc/kubernetes/pki/ca.crt".into()]),
            ca_fingerprint: Some("sha256:aaaa".into()),
            ..Default::default()
        };
        let id = ClusterIdentity {
            ca_fingerprint: None,
            etcd_ca_fingerprint: None,
            ..identity()
        };
        assert_eq!(ownership(&s, Some(&id)), Ownership::Unknown);
    }

    #[test]
    fn long_fingerprints_are_shortened_in_evidence() {
        let fp = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(short(&fp), "sha256:abababababababab...");
    }
}
