//! Controller of `EtcdMember`: one etcd member on one host.
//!
//! A member a Stacked `ControlPlaneMember` owns is that master's business:
//! its join adds and promotes it, its leave removes it, and this controller
//! keeps its hands off (writing nothing, so the two never race on its
//! status). A standalone member (the External topology) is not provisioned
//! yet: its status says `NotImplemented`, so nobody mistakes an untouched
//! host for a provisioned one.

use std::sync::Arc;

use futures::future::BoxFuture;
use kube::Api;
use kube::runtime::controller::Action;

use kubeseed_crds::v1alpha1::{ControlPlaneMember, EtcdMember};

use super::{Member, StopSignal, apply_not_implemented, cleanup_not_implemented};
use crate::context::Context;
use crate::error::Result;

impl Member for EtcdMember {
    fn apply(obj: Arc<Self>, ctx: Arc<Context>) -> BoxFuture<'static, Result<Action>> {
        Box::pin(async move {
            if owning_master(&obj).is_some() {
                return Ok(Action::await_change());
            }
            let api: Api<Self> = Api::all(ctx.client.clone());
            apply_not_implemented(&api, obj, &ctx).await
        })
    }

    fn cleanup(obj: Arc<Self>, ctx: Arc<Context>) -> BoxFuture<'static, Result<Action>> {
        // An owned member is removed from etcd by its master's leave, which
        // runs before the garbage collector deletes this object.
        Box::pin(async move { cleanup_not_implemented(obj, &ctx).await })
    }
}

/// The `ControlPlaneMember` that owns this member, if one does.
pub fn owning_master(member: &EtcdMember) -> Option<&str> {
    use kube::Resource;
    member
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true) && o.kind == ControlPlaneMember::kind(&()))
        .map(|o| o.name.as_str())
}

/// Runs the `EtcdMember` controller until `stop` completes.
pub async fn run(ctx: Arc<Context>, stop: StopSignal) {
    super::run::<EtcdMember>(ctx, stop).await;
}
