//! kubeseed's provisioning engine, shared by the `bootstrap` CLI and the operator.
//!
//! Everything kubeseed does to a host goes through here: SSH sessions and file
//! transfer ([`ssh`]) and the cluster PKI ([`pki`]). The rendering of the
//! configuration and unit files that make a host a cluster member comes next.

// Tests may unwrap: a panic is how a test fails.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod pki;
pub mod ssh;
