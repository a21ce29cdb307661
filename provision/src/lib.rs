//! kubeseed's provisioning engine, shared by the `bootstrap` CLI and the operator.
//!
//! Everything kubeseed does to a host goes through here, and nothing in it
//! knows about Kubernetes API objects (no kube dependency):
//!
//! - [`cluster`]: the typed description of a cluster and its nodes;
//! - [`pki`]: every certificate, key and kubeconfig, issued from it;
//! - [`render`]: pure renderers from it to configuration files and units;
//! - [`host`]: the narrow interface side effects go through, implemented by
//!   the SSH engine ([`ssh`]);
//! - [`tasks`]: check-then-apply steps and the runner that executes them;
//! - [`plans`]: which tasks make a host a master, a member, a worker;
//! - [`bundle`]: the verified binaries and images those tasks install;
//! - [`etcd`]: etcd membership (learners, promotion, removal, leadership)
//!   over etcd's client API with mutual TLS;
//! - [`preflight`]: what is checked on a host before anything changes.

// Tests may unwrap: a panic is how a test fails.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod api_probe;
pub mod bundle;
pub mod cluster;
mod error_text;
pub mod etcd;
pub mod files;
pub mod host;
pub mod pki;
pub mod plans;
pub mod preflight;
pub mod render;
pub mod ssh;
pub mod tasks;
