//! Node labels and taints: Kubernetes' syntax, and which labels a kubelet
//! may set on its own Node.
//!
//! The NodeRestriction admission plugin (and the kubelet itself, before it
//! starts) refuses labels under `kubernetes.io` / `k8s.io` other than a
//! short allowed list, so that a compromised node cannot make itself a
//! master (`node-role.kubernetes.io/control-plane`) and attract its
//! workloads. Such labels are left out of `--node-labels`; the caller sets
//! them on the Node through the API ([`api_only_labels`]).

use std::collections::BTreeMap;

use crate::cluster::Taint;

/// Labels the kubelet may set although they are in a Kubernetes namespace
/// (k8s.io/kubelet `pkg/apis/well_known_labels.go`).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];

/// Namespaces (and their subdomains) whose labels the kubelet may set.
const KUBELET_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

fn namespace(key: &str) -> &str {
    key.split_once('/').map(|(ns, _)| ns).unwrap_or("")
}

fn in_domain(namespace: &str, domain: &str) -> bool {
    namespace == domain || namespace.ends_with(&format!(".{domain}"))
}

/// Whether the kubelet may register its Node with label `key`.
pub fn kubelet_may_set(key: &str) -> bool {
    let ns = namespace(key);
    let reserved = in_domain(ns, "kubernetes.io") || in_domain(ns, "k8s.io");
    !reserved
        || KUBELET_LABELS.contains(&key)
        || KUBELET_NAMESPACES.iter().any(|d| in_domain(ns, d))
}

/// The labels the caller must set on the Node through the API because the
/// kubelet may not (such as `node-role.kubernetes.io/control-plane`).
pub fn api_only_labels(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| !kubelet_may_set(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A label key: `[prefix/]name`, the prefix a DNS subdomain, the name 1–63
/// alphanumerics, `-`, `_`, `.` (alphanumeric at both ends).
pub(crate) fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if p.is_empty() || p.len() > 253 || !p.split('.').all(label_ok) {
            return Err(format!(
                "the prefix {p:?} is not a DNS subdomain (lower case letters, digits, `-` and `.`)"
            ));
        }
    }
    check_name(name).map_err(|e| format!("the name {name:?} {e}"))
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 63 {
        return Err("must have 1 to 63 characters");
    }
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !ends_ok(name.chars().next()) || !ends_ok(name.chars().last()) {
        return Err("must begin and end with a letter or digit");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("may only contain letters, digits, `-`, `_` and `.`");
    }
    Ok(())
}

/// A label value: empty, or what a name may be.
pub(crate) fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    check_name(value).map_err(|e| format!("the value {value:?} {e}"))
}

/// A taint as the kubelet registers it.
pub(crate) fn check_taint(taint: &Taint) -> Result<(), String> {
    check_key(&taint.key)?;
    if let Some(v) = &taint.value {
        check_value(v)?;
    }
    if !matches!(
        taint.effect.as_str(),
        "NoSchedule" | "PreferNoSchedule" | "NoExecute"
    ) {
        return Err(format!(
            "the effect {:?} is not NoSchedule, PreferNoSchedule or NoExecute",
            taint.effect
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_for_the_api_and_topology_for_the_kubelet() {
        for key in [
            "node-role.kubernetes.io/control-plane",
            "node-role.kubernetes.io/worker",
            "kubernetes.io/role",
            "example.k8s.io/x",
            "k8s.io/x",
        ] {
            assert!(!kubelet_may_set(key), "{key}");
        }
        for key in [
            "topology.kubernetes.io/zone",
            "kubernetes.io/hostname",
            "node.kubernetes.io/exclude-from-external-load-balancers",
            "pool.node.kubernetes.io/name",
            "kubelet.kubernetes.io/x",
            "kubeseed.io/pool",
            "plain",
            "notkubernetes.io/x",
        ] {
            assert!(kubelet_may_set(key), "{key}");
        }
        let labels: BTreeMap<String, String> = [
            ("node-role.kubernetes.io/control-plane", ""),
            ("kubeseed.io/pool", "a"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            api_only_labels(&labels).keys().collect::<Vec<_>>(),
            ["node-role.kubernetes.io/control-plane"]
        );
    }

    #[test]
    fn syntax_is_kubernetes() {
        for good in ["a", "kubeseed.io/pool", "a.b-c_d", "x.y/Z9"] {
            check_key(good).unwrap();
        }
        for bad in [
            "", "-a", "a/", "/a", "A_B.io/x", "a b", "a,b", "a=b", "a/b/c",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        check_value("").unwrap();
        check_value("v1.2_3-x").unwrap();
        for bad in ["a,b", "a=b", "-a", "a b", &"x".repeat(64)] {
            assert!(check_value(bad).is_err(), "{bad:?}");
        }
        let mut taint = Taint::control_plane();
        check_taint(&taint).unwrap();
        taint.effect = "Never".into();
        assert!(check_taint(&taint).unwrap_err().contains("NoSchedule"));
    }
}
