//! Controller of `EtcdMember`: one etcd member on one host.
//!
//! Provisioning of this kind comes with its own issue; until then the
//! controller adds its finalizer and sets `Implemented=False` /
//! `Ready=False` with reason `NotImplemented`, so nobody mistakes an
//! untouched host for a provisioned one.

use std::sync::Arc;

use kubeseed_crds::v1alpha1::EtcdMember;

use super::{Member, StopSignal};
use crate::context::Context;

impl Member for EtcdMember {}

/// Runs the `EtcdMember` controller until `stop` completes.
pub async fn run(ctx: Arc<Context>, stop: StopSignal) {
    super::run::<EtcdMember>(ctx, stop).await;
}
