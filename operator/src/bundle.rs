//! The bundle joining hosts are installed from: the one the cluster was
//! seeded with, as staged on this master (mounted read-only from the host),
//! opened against the manifest digest recorded in the cluster's ConfigMap
//! and verified file by file before any of it is used. No registry and no
//! network are involved.

use kubeseed_provision::bundle::{Bundle, OpenOptions, Sha256Digest, Source};
use kubeseed_provision::plans::{self, BundleOnHost};

use crate::cluster::ClusterMaterial;
use crate::context::Context;
use crate::error::{Error, Result};

/// Opens and verifies the cluster's bundle, in the shape plans take.
pub async fn open(ctx: &Context, material: &ClusterMaterial) -> Result<BundleOnHost> {
    let dir = ctx.bundle_root.join(&material.bundle_key);
    let pinned: Sha256Digest = material.bundle_sha256.parse().map_err(|e| {
        Error::ClusterMaterial(format!(
            "the cluster's bundle-sha256 {:?} is not a sha256: {e}",
            material.bundle_sha256
        ))
    })?;
    let bundle = Bundle::open(&Source::Dir(dir), &OpenOptions::pinned(pinned)).await?;
    let verified = bundle.verify_all().await?;
    plans::bundle_on_host(&bundle, &verified).map_err(|e| Error::Plan {
        reason: e.reason(),
        message: e.to_string(),
    })
}
