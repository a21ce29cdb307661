//! kubeseed's API: group `kubeseed.io`, version `v1alpha1`.
//!
//! This crate holds only types: the four cluster-scoped kinds a user applies
//! ([`ControlPlaneMember`], [`EtcdMember`], [`ApiLoadBalancer`], [`WorkerNode`]),
//! their shared host block and their status. Validation that the API server
//! enforces (CEL rules, ranges) lives on the types, so `kubectl apply` refuses a
//! bad member before the operator ever sees it.
//!
//! [`ControlPlaneMember`]: v1alpha1::ControlPlaneMember
//! [`EtcdMember`]: v1alpha1::EtcdMember
//! [`ApiLoadBalancer`]: v1alpha1::ApiLoadBalancer
//! [`WorkerNode`]: v1alpha1::WorkerNode

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod crdgen;
pub mod v1alpha1;

/// The API group of every kubeseed kind.
pub const GROUP: &str = "kubeseed.io";
