//! kube-apiserver's audit policy: who did what, never what was in it.
//!
//! Every request is logged at `Metadata` (user, verb, object, response
//! code; no bodies) except the traffic that would drown it: health probes,
//! heartbeats (node and leader-election leases), kube-proxy's watches and
//! Events. Secrets, ConfigMaps, token requests and token reviews have their
//! own `Metadata` rule ahead of everything else, so a later rule at a
//! body-carrying level could never log a credential. The first matching
//! rule wins, so the order below is the policy.

use serde::Serialize;

use super::Component;
use super::error::Result;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Policy {
    api_version: &'static str,
    kind: &'static str,
    /// `RequestReceived` would log every request twice.
    omit_stages: Vec<&'static str>,
    rules: Vec<Rule>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Rule {
    level: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    users: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    user_groups: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    verbs: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    namespaces: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    resources: Vec<GroupResources>,
    #[serde(rename = "nonResourceURLs", skip_serializing_if = "Vec::is_empty")]
    non_resource_urls: Vec<&'static str>,
}

#[derive(Serialize)]
struct GroupResources {
    group: &'static str,
    resources: Vec<&'static str>,
}

fn group(group: &'static str, resources: &[&'static str]) -> GroupResources {
    GroupResources {
        group,
        resources: resources.to_vec(),
    }
}

/// The policy document (the same on every master).
pub(crate) fn render() -> Result<String> {
    let rules = vec![
        Rule {
            level: "Metadata",
            resources: vec![
                group("", &["secrets", "configmaps", "serviceaccounts/token"]),
                group("authentication.k8s.io", &["tokenreviews"]),
            ],
            ..Rule::default()
        },
        Rule {
            level: "None",
            non_resource_urls: vec!["/healthz*", "/livez*", "/readyz*", "/version", "/metrics"],
            ..Rule::default()
        },
        Rule {
            level: "None",
            user_groups: vec!["system:nodes"],
            verbs: vec!["get", "update", "patch"],
            namespaces: vec!["kube-node-lease"],
            resources: vec![group("coordination.k8s.io", &["leases"])],
            ..Rule::default()
        },
        Rule {
            level: "None",
            users: vec!["system:kube-controller-manager", "system:kube-scheduler"],
            verbs: vec!["get", "update"],
            namespaces: vec!["kube-system"],
            resources: vec![group("coordination.k8s.io", &["leases"])],
            ..Rule::default()
        },
        Rule {
            level: "None",
            users: vec!["system:kube-proxy"],
            verbs: vec!["watch"],
            resources: vec![
                group("", &["services", "nodes"]),
                group("discovery.k8s.io", &["endpointslices"]),
            ],
            ..Rule::default()
        },
        Rule {
            level: "None",
            resources: vec![group("", &["events"]), group("events.k8s.io", &["events"])],
            ..Rule::default()
        },
        Rule {
            level: "Metadata",
            ..Rule::default()
        },
    ];
    let policy = Policy {
        api_version: "audit.k8s.io/v1",
        kind: "Policy",
        omit_stages: vec!["RequestReceived"],
        rules,
    };
    super::yaml_file(Component::KubeApiserver, "audit policy", &policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_caught_first_and_nothing_logs_bodies() {
        let doc: serde_yaml::Value = serde_yaml::from_str(&render().unwrap()).unwrap();
        let rules = doc["rules"].as_sequence().unwrap();
        let first = &rules[0];
        assert_eq!(first["level"].as_str(), Some("Metadata"));
        assert_eq!(
            first["resources"][0]["resources"][0].as_str(),
            Some("secrets")
        );
        for rule in rules {
            let level = rule["level"].as_str().unwrap();
            assert!(matches!(level, "None" | "Metadata"), "{level}");
        }
        let last = rules.last().unwrap().as_mapping().unwrap();
        assert_eq!(last.len(), 1, "the catch-all matches everything");
    }
}
