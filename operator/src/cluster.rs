//! The cluster's shared material, as `bootstrap seed` stored it in the
//! operator's namespace: the record of what the cluster is (ConfigMap
//! `kubeseed-cluster`, `cluster.json`), and its CAs and encryption key
//! (Secret `kubeseed-cluster`, encrypted at rest by the apiserver).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

use kubeseed_provision::cluster::ClusterRecord;
use kubeseed_provision::pki::ClusterCas;
use kubeseed_provision::render::{EncryptionConfig, EncryptionKey};

use crate::context::Context;
use crate::error::{Error, Result};

/// The ConfigMap and the Secret's name.
pub const CLUSTER_OBJECT: &str = "kubeseed-cluster";
/// The ConfigMap key of the cluster record.
pub const RECORD_KEY: &str = "cluster.json";
/// The ConfigMap key of the bundle the seed installed from.
pub const BUNDLE_KEY: &str = "bundle-key";
/// The ConfigMap key of that bundle's manifest digest (sha256 of SHA256SUMS).
pub const BUNDLE_SHA256: &str = "bundle-sha256";
/// Secret keys of encryption-at-rest keys start with this.
pub const ENCRYPTION_KEY_PREFIX: &str = "encryption-key-";

/// What every member's plan is made from.
#[derive(Debug)]
pub struct ClusterMaterial {
    /// What the cluster is.
    pub record: ClusterRecord,
    /// Its CAs and service-account key.
    pub cas: ClusterCas,
    /// Encryption at rest, the same on every master.
    pub encryption: EncryptionConfig,
    /// The bundle the seed installed: its key (directory under the bundle
    /// root) and the sha256 of its manifest, which pins every file in it.
    pub bundle_key: String,
    /// sha256 of its SHA256SUMS, hex.
    pub bundle_sha256: String,
}

impl ClusterMaterial {
    /// Reads the ConfigMap and the Secret; a missing or malformed one is a
    /// [`Error::ClusterMaterial`] saying which and how to restore it.
    pub async fn load(ctx: &Context) -> Result<Self> {
        let source = format!("{}/{CLUSTER_OBJECT}", ctx.namespace);
        let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        let cm = cms.get_opt(CLUSTER_OBJECT).await?.ok_or_else(|| {
            missing(format!(
                "ConfigMap {source} is missing: it is written by `bootstrap seed`; run it again for this cluster"
            ))
        })?;
        let data = cm.data.unwrap_or_default();
        let field = |key: &str| -> Result<&String> {
            data.get(key).ok_or_else(|| {
                missing(format!(
                    "ConfigMap {source} has no {key:?}: run `bootstrap seed` again for this cluster to rewrite it"
                ))
            })
        };
        let record: ClusterRecord = serde_json::from_str(field(RECORD_KEY)?)
            .map_err(|e| missing(format!("ConfigMap {source}: {RECORD_KEY} is invalid: {e}")))?;
        let bundle_key = field(BUNDLE_KEY)?.clone();
        let bundle_sha256 = field(BUNDLE_SHA256)?.clone();

        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
        let secret = secrets.get_opt(CLUSTER_OBJECT).await?.ok_or_else(|| {
            missing(format!(
                "Secret {source} is missing: it holds the cluster's CAs; restore it from the workstation's state directory with `bootstrap seed`"
            ))
        })?;
        let data: BTreeMap<String, Vec<u8>> = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        let cas = ClusterCas::from_secret_data(&format!("Secret {source}"), &data)
            .map_err(|e| missing(e.to_string()))?;
        let mut keys = Vec::new();
        for (name, bytes) in &data {
            if let Some(key_name) = name.strip_prefix(ENCRYPTION_KEY_PREFIX) {
                keys.push(
                    EncryptionKey::new(key_name, bytes)
                        .map_err(|e| missing(format!("Secret {source}: {name}: {e}")))?,
                );
            }
        }
        let mut keys = keys.into_iter();
        let first = keys.next().ok_or_else(|| {
            missing(format!(
                "Secret {source} has no {ENCRYPTION_KEY_PREFIX}* entry: without it a new master could not read the cluster's Secrets"
            ))
        })?;
        let mut encryption = EncryptionConfig::new(first);
        encryption.keys.extend(keys);
        Ok(ClusterMaterial {
            record,
            cas,
            encryption,
            bundle_key,
            bundle_sha256,
        })
    }
}

fn missing(message: String) -> Error {
    Error::ClusterMaterial(message)
}
