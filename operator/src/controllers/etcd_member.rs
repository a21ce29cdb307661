//! Controller of `EtcdMember`: one etcd member on one host.
//!
//! Provisioning of this kind comes with its own issue; until then the
//! controller adds its finalizer and sets `Implemented=False` /
//! `Ready=False` with reason `NotImplemented`, so nobody mistakes an
//! untouched host for a provisioned one.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kubeseed_crds::v1alpha1::EtcdMember;

use super::{Member, StopSignal};
use crate::context::Context;

impl Member for EtcdMember {
    fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .map(|s| s.common.conditions.as_slice())
            .unwrap_or_default()
    }

    fn hosts(&self) -> String {
        self.spec.host.address.clone()
    }
}

/// Runs the `EtcdMember` controller until `stop` completes.
pub async fn run(ctx: Arc<Context>, stop: StopSignal) {
    super::run::<EtcdMember>(ctx, stop).await;
}
