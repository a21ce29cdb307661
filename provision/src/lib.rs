//! kubeseed's provisioning engine, shared by the `bootstrap` CLI and the operator.
//!
//! Everything kubeseed does to a host goes through here: SSH sessions and file
//! transfer ([`ssh`]), the cluster PKI ([`pki`]), and the rendering of the
//! configuration and unit files that make a host a cluster member.

pub mod pki;
pub mod ssh;
