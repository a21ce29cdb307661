//! Every example a user applies parses into kubeseed's Rust types, and every
//! invalid example says which message the API server must answer with.
//! (That the API server really accepts and refuses them is proven in
//! `tests/apiserver.rs`, against a real kube-apiserver.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use kubeseed_crds::v1alpha1::{ApiLoadBalancer, ControlPlaneMember, EtcdMember, WorkerNode};
use serde::Deserialize;

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/examples")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn documents(path: &Path) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// Parses a document into `T` and serialises it back, so a field the type does
/// not know (which serde would silently drop) shows up as a difference.
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(
    doc: serde_yaml::Value,
) -> Result<serde_json::Value, String> {
    let typed: T = serde_yaml::from_value(doc).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// Every leaf the author wrote must survive the round trip.
fn dropped_paths(
    original: &serde_json::Value,
    typed: &serde_json::Value,
    path: &str,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (original, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => dropped_paths(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, v) in a.iter().enumerate() {
                match b.get(i) {
                    Some(w) => dropped_paths(v, w, &format!("{path}[{i}]"), out),
                    None => out.push(format!("{path}[{i}]")),
                }
            }
        }
        (a, b) if a != b => out.push(format!("{path} ({a} became {b})")),
        _ => {}
    }
}

/// Parses one document into the type of its kind; returns the kind.
fn parse_typed(doc: serde_yaml::Value) -> Result<String, String> {
    let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
    let original: serde_json::Value =
        serde_yaml::from_value(doc.clone()).map_err(|e| e.to_string())?;
    let typed = match kind.as_str() {
        "ControlPlaneMember" => round_trip::<ControlPlaneMember>(doc)?,
        "EtcdMember" => round_trip::<EtcdMember>(doc)?,
        "ApiLoadBalancer" => round_trip::<ApiLoadBalancer>(doc)?,
        "WorkerNode" => round_trip::<WorkerNode>(doc)?,
        "Secret" => round_trip::<k8s_openapi::api::core::v1::Secret>(doc)?,
        other => return Err(format!("unexpected kind {other:?}")),
    };
    let mut dropped = Vec::new();
    dropped_paths(&original, &typed, "", &mut dropped);
    if dropped.is_empty() {
        Ok(kind)
    } else {
        Err(format!(
            "fields the types do not know (misspelt or misnamed?): {dropped:?}"
        ))
    }
}

#[test]
fn every_valid_example_parses_into_the_types() {
    let mut kinds = Vec::new();
    for file in yaml_files(&examples_dir()) {
        let docs = documents(&file);
        assert!(!docs.is_empty(), "{} has no document", file.display());
        for doc in docs {
            match parse_typed(doc) {
                Ok(kind) => kinds.push(kind),
                Err(e) => panic!("{}: {e}", file.display()),
            }
        }
    }
    for kind in [
        "ControlPlaneMember",
        "EtcdMember",
        "ApiLoadBalancer",
        "WorkerNode",
        "Secret",
    ] {
        assert!(kinds.iter().any(|k| k == kind), "no example of {kind}");
    }
}

#[test]
fn the_ssh_secret_example_has_the_ssh_auth_type() {
    let docs = documents(&examples_dir().join("ssh-secret.yaml"));
    let secret: k8s_openapi::api::core::v1::Secret =
        serde_yaml::from_value(docs[0].clone()).unwrap();
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/ssh-auth"));
    assert!(secret.string_data.unwrap().contains_key("ssh-privatekey"));
}

#[test]
fn every_invalid_example_names_its_expected_message() {
    let files = yaml_files(&examples_dir().join("invalid"));
    assert!(files.len() >= 10, "expected an invalid example per rule");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let expected = first
            .strip_prefix("# expect: ")
            .unwrap_or_else(|| panic!("{} must start with `# expect: <message>`", file.display()));
        assert!(!expected.trim().is_empty());
        let docs = documents(&file);
        assert!(
            (1..=2).contains(&docs.len()),
            "{}: one document (refused on create) or two (created, then refused on update)",
            file.display()
        );
    }
}

/// Every CEL rule's message in the generated CRDs, with the schema paths it
/// guards.
fn rule_messages() -> std::collections::BTreeMap<String, Vec<String>> {
    fn walk(
        node: &serde_json::Value,
        path: &str,
        out: &mut std::collections::BTreeMap<String, Vec<String>>,
    ) {
        for rule in node["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let message = rule["message"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: rule {} has no message", rule["rule"]));
            out.entry(message.to_owned())
                .or_default()
                .push(path.to_owned());
        }
        if let Some(props) = node["properties"].as_object() {
            for (name, prop) in props {
                walk(prop, &format!("{path}.{name}"), out);
            }
        }
        if node["items"].is_object() {
            walk(&node["items"], &format!("{path}[]"), out);
        }
        if node["additionalProperties"].is_object() {
            walk(&node["additionalProperties"], &format!("{path}{{}}"), out);
        }
    }
    let mut out = std::collections::BTreeMap::new();
    for crd in kubeseed_crds::crdgen::crds() {
        let kind = crd.spec.names.kind.clone();
        for version in &crd.spec.versions {
            let schema = serde_json::to_value(
                version
                    .schema
                    .as_ref()
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .unwrap(),
            )
            .unwrap();
            walk(&schema, &kind, &mut out);
        }
    }
    out
}

/// Every rule the API server enforces has an example it refuses with that
/// very message (`tests/apiserver.rs` proves the refusal on a real
/// kube-apiserver), and no example expects a message no rule has any more.
#[test]
fn every_rule_message_has_an_invalid_example_and_every_example_a_rule() {
    let messages = rule_messages();
    assert!(messages.len() > 20, "{messages:?}");
    let mut expected = std::collections::BTreeMap::new();
    for file in yaml_files(&examples_dir().join("invalid")) {
        let text = std::fs::read_to_string(&file).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_default()
            .trim()
            .to_owned();
        expected.insert(
            file.file_name().unwrap().to_string_lossy().into_owned(),
            expect,
        );
    }
    let without_example: Vec<String> = messages
        .iter()
        .filter(|(m, _)| !expected.values().any(|e| e == *m))
        .map(|(m, paths)| format!("{m:?} (rule on {})", paths.join(", ")))
        .collect();
    assert!(
        without_example.is_empty(),
        "rules without an example in docs/examples/invalid/ refused with their whole message:\n{}",
        without_example.join("\n")
    );
    let stale: Vec<String> = expected
        .iter()
        .filter(|(_, e)| !messages.contains_key(*e))
        .map(|(f, e)| format!("{f}: {e:?}"))
        .collect();
    assert!(
        stale.is_empty(),
        "invalid examples expecting a message no rule has:\n{}",
        stale.join("\n")
    );
}

/// The rules with `oldSelf` (immutable fields) each have a two-document
/// example: created, then refused as an update, on every kind that has one.
#[test]
fn every_immutability_rule_is_tested_as_an_update() {
    let mut kinds_with_rules = std::collections::BTreeSet::new();
    for crd in kubeseed_crds::crdgen::crds() {
        let yaml = serde_yaml::to_string(&crd).unwrap();
        if yaml.contains("oldSelf") {
            kinds_with_rules.insert(crd.spec.names.kind.clone());
        }
    }
    let mut kinds_tested = std::collections::BTreeSet::new();
    for file in yaml_files(&examples_dir().join("invalid")) {
        let docs = documents(&file);
        if docs.len() == 2 {
            assert_eq!(
                docs[0]["kind"],
                docs[1]["kind"],
                "{}: an update keeps the kind",
                file.display()
            );
            assert_eq!(
                docs[0]["metadata"]["name"],
                docs[1]["metadata"]["name"],
                "{}: an update keeps the name",
                file.display()
            );
            kinds_tested.insert(docs[0]["kind"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(kinds_with_rules, kinds_tested);
}
