//! The kubeseed operator: runs inside the cluster it manages and provisions the
//! hosts its custom resources describe.
//!
//! - [`runtime`] wires a process: endpoints ([`http`]), leader election
//!   ([`leader`]), the controllers ([`controllers`], one per kind) and shutdown.
//! - [`context`] is what every reconcile gets; hosts are reached through
//!   `kubeseed_provision` (its `Host` interface and SSH engine), the layer
//!   `bootstrap` uses too.
//! - [`error`] names, for every failure, its Event reason and metric label.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod bundle;
pub mod cluster;
pub mod conditions;
pub mod config;
pub mod context;
pub mod controllers;
pub mod csr_approval;
pub mod drain;
pub mod error;
pub mod etcd_access;
pub mod etcd_audit;
pub mod hosts;
pub mod http;
pub mod leader;
pub mod load_balancers;
pub mod metrics;
pub mod pod_routes;
pub mod run_plan;
pub mod runtime;
pub mod shutdown;
pub mod telemetry;

pub use config::Config;
pub use context::Context;
pub use error::Error;
pub use runtime::run;
