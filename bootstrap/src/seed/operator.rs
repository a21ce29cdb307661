//! Installing the operator into the new cluster: its namespace, the
//! cluster's shared material (the CA store and the encryption key, as a
//! Secret; the cluster's description, as a ConfigMap), the SSH key it uses,
//! and the Helm release of its chart from the bundle — run by the real
//! `helm` on the host, with the image already imported into containerd.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use kubeseed_provision::bundle::Bundle;
use kubeseed_provision::files::HostFiles;
use kubeseed_provision::pki::ClusterCas;
use kubeseed_provision::plans::{ADMIN_CONF, ApiAccess, FIELD_MANAGER, KubectlApply, bundle_dir};
use kubeseed_provision::render::EncryptionConfig;
use kubeseed_provision::ssh::shell::quote;
use kubeseed_provision::tasks::{Shell, Task, WaitUntil, WriteFiles};

use crate::state::ClusterRecord;

/// The operator's namespace.
pub const NAMESPACE: &str = "kubeseed-system";
/// The Helm release.
pub const RELEASE: &str = "kubeseed";
/// The Secret with the CA store and the encryption key.
pub const CLUSTER_SECRET: &str = "kubeseed-cluster";
/// The ConfigMap with the cluster's record (named like the Secret).
pub const CLUSTER_CONFIG_MAP: &str = CLUSTER_SECRET;
/// The ConfigMap key holding the record, as JSON (what the operator reads).
pub const RECORD_KEY: &str = "cluster.json";
/// The Secret with the operator's SSH key.
pub const SSH_SECRET: &str = "kubeseed-ssh";

const HELM_DIR: &str = "/var/lib/kubeseed/helm";

/// What the operator's installation is made from.
#[derive(Debug)]
pub struct OperatorInput<'a> {
    /// The cluster.
    pub record: &'a ClusterRecord,
    /// Its CAs (for the Secret the operator issues members' certificates from).
    pub cas: &'a ClusterCas,
    /// Encryption at rest (new masters get the same key).
    pub encryption: &'a EncryptionConfig,
    /// The bundle (operator image name).
    pub bundle: &'a Bundle,
    /// Its key (where the chart is staged on the host).
    pub bundle_key: &'a str,
    /// The operator's SSH private key, when the user gave one.
    pub ssh_key: Option<&'a [u8]>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The tasks, in order. `members` (the seed's member records) runs once the
/// CRDs exist and before the operator starts, so the operator's first look
/// at them already sees them provisioned.
pub fn tasks(
    input: &OperatorInput<'_>,
    members: Box<dyn Task>,
) -> anyhow::Result<Vec<Box<dyn Task>>> {
    let mut tasks: Vec<Box<dyn Task>> = Vec::new();
    let api = ApiAccess::local_admin(input.record.endpoint_port);
    let local_server = format!("https://127.0.0.1:{}", input.record.endpoint_port);
    // The operator runs with the node's network: Pod Security must allow it.
    let namespace = json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {
            "pod-security.kubernetes.io/enforce": "privileged",
            "app.kubernetes.io/managed-by": "kubeseed",
        }},
    });
    tasks.push(Box::new(KubectlApply::new(
        "operator/namespace",
        format!("create namespace {NAMESPACE}"),
        api.clone(),
        namespace.to_string(),
    )));

    let mut data: BTreeMap<String, String> = input
        .cas
        .to_secret_data()
        .into_iter()
        .map(|(k, v)| (k, b64(&v)))
        .collect();
    for key in &input.encryption.keys {
        data.insert(format!("encryption-key-{}", key.name()), b64(key.secret()));
    }
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": CLUSTER_SECRET, "namespace": NAMESPACE},
        "data": data,
    });
    tasks.push(Box::new(KubectlApply::new(
        "operator/cluster-secret",
        format!("store the CAs and encryption key in Secret {CLUSTER_SECRET}"),
        api.clone(),
        secret.to_string(),
    )));
    let config = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": CLUSTER_CONFIG_MAP, "namespace": NAMESPACE},
        // The bundle the operator installs joining hosts from: its directory
        // on every master, and the manifest digest that pins every file.
        "data": {
            RECORD_KEY: serde_json::to_string_pretty(input.record)?,
            "bundle-key": input.bundle_key,
            "bundle-sha256": input.bundle.manifest_sha256().to_hex(),
        },
    });
    tasks.push(Box::new(KubectlApply::new(
        "operator/cluster-config",
        format!("describe the cluster in ConfigMap {CLUSTER_CONFIG_MAP}"),
        api.clone(),
        config.to_string(),
    )));
    if let Some(key) = input.ssh_key {
        let ssh = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/ssh-auth",
            "metadata": {"name": SSH_SECRET, "namespace": NAMESPACE},
            "data": {"ssh-privatekey": b64(key)},
        });
        tasks.push(Box::new(KubectlApply::new(
            "operator/ssh-secret",
            format!("store the operator's SSH key in Secret {SSH_SECRET}"),
            api.clone(),
            ssh.to_string(),
        )));
    }

    let chart = format!("{}/charts/kubeseed", bundle_dir(input.bundle_key));
    let crds = quote(&format!("{chart}/crds"));
    tasks.push(Box::new(
        Shell::new(
            "operator/crds",
            "install the kubeseed.io CRDs from the chart",
            format!(
                "{k} apply --server-side --field-manager={FIELD_MANAGER} --force-conflicts -f {crds} >/dev/null \
                 && {k} wait --for condition=established --timeout=60s -f {crds} >/dev/null",
                k = api.kubectl()
            ),
        )
        .unless(
            format!(
                "{k} diff --server-side --field-manager={FIELD_MANAGER} --force-conflicts -f {crds} >/dev/null",
                k = api.kubectl()
            ),
            "CRDs missing or different",
        ),
    ));
    tasks.push(members);

    let image = input.bundle.versions().operator_image();
    let (repository, tag) = image
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("the bundle's OPERATOR_IMAGE {image:?} has no tag"))?;
    let values = json!({
        "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        // A new bundle (new chart or image bytes) rolls the Pods.
        "podAnnotations": {"kubeseed.io/bundle": input.bundle_key},
    });
    let values_text = serde_json::to_string_pretty(&values)?;
    let values_path = format!("{HELM_DIR}/{RELEASE}-values.json");
    let mut files = HostFiles::default();
    files.insert_public(&values_path, values_text.clone());
    tasks.push(Box::new(WriteFiles::new(
        "operator/values",
        "write the operator's Helm values",
        files,
    )));
    let digest = hex::encode(Sha256::digest(
        format!("{}\n{values_text}", input.bundle_key).as_bytes(),
    ));
    let marker = format!("{HELM_DIR}/{RELEASE}.applied");
    let helm = format!(
        "env HELM_CACHE_HOME={d}/cache HELM_CONFIG_HOME={d}/config HELM_DATA_HOME={d}/data /usr/local/bin/helm --kubeconfig {kc} --kube-apiserver {server} --namespace {ns}",
        d = HELM_DIR,
        kc = ADMIN_CONF,
        server = local_server,
        ns = NAMESPACE
    );
    tasks.push(Box::new(
        Shell::new(
            "operator/release",
            "install the operator's chart with helm",
            format!(
                "{helm} upgrade --install {RELEASE} {chart} -f {values} && printf '%s\\n' {digest} > {marker}",
                chart = quote(&chart),
                values = quote(&values_path),
                marker = quote(&marker)
            ),
        )
        .unless(
            format!(
                "[ \"$(cat {marker} 2>/dev/null)\" = {digest} ] && {helm} status {RELEASE} -o json | grep -Eq '\"status\": ?\"deployed\"'",
                marker = quote(&marker)
            ),
            "release missing or older",
        )
        .timeout(Duration::from_secs(300)),
    ));
    tasks.push(Box::new(WaitUntil::new(
        "operator/ready",
        "wait for an operator Pod to be Ready",
        format!(
            "{} -n {NAMESPACE} get pods -l app.kubernetes.io/name=kubeseed -o jsonpath='{{range .items[*]}}{{.status.conditions[?(@.type==\"Ready\")].status}}{{\"\\n\"}}{{end}}' | grep -qx True",
            api.kubectl()
        ),
        Duration::from_secs(240),
    )));
    Ok(tasks)
}
