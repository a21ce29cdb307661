//! etcd membership: add a member as a learner, wait until it has caught up,
//! promote it, remove a member, move leadership, all over etcd's client
//! API with mutual TLS.
//!
//! ```no_run
//! # async fn demo(tls: kubeseed_provision::etcd::EtcdTls) -> Result<(), kubeseed_provision::etcd::EtcdError> {
//! use std::time::Duration;
//! use kubeseed_provision::etcd::*;
//! let etcd = EtcdClient::new(
//!     vec!["https://10.0.0.11:2379".into(), "https://10.0.0.12:2379".into()],
//!     tls,
//!     Duration::from_secs(10),
//! )?;
//! let peer = "https://10.0.0.13:2380";
//! let members = etcd.members().await?;
//! let id = match find_by_peer_url(&members, peer) {
//!     Some(m) => m.id, // added by an earlier run
//!     None => etcd.add_learner(&[peer.to_string()]).await?.0,
//! };
//! // ... start etcd on the new host with --initial-cluster-state=existing ...
//! while !etcd.learner_progress(id).await?.caught_up() {
//!     tokio::time::sleep(Duration::from_secs(1)).await;
//! }
//! etcd.promote(id).await?;
//! # Ok(()) }
//! ```
//!
//! - The transport is etcd's gRPC gateway (JSON over HTTP/1.1, `POST
//!   /v3/...` on the client port), not gRPC: it needs nothing beyond the
//!   HTTP stack the crate already builds for bundle downloads (hyper 1,
//!   hyper-util's legacy client, hyper-rustls on rustls with the `ring`
//!   provider). See [`EtcdClient`] for how endpoints are chosen.
//! - Member IDs are [`MemberId`]s: shown as etcdctl shows them (16 hex
//!   digits), sent as the gateway wants them (decimal strings).
//! - Errors are [`EtcdError`]s with a stable [`EtcdError::reason`] for a
//!   condition, read from etcd's own error texts.
//! - The decisions that make a reconcile safe to repeat are pure functions:
//!   [`find_by_peer_url`], [`quorum_after_removal`], [`learner_caught_up`].
//! - Files: `client.rs` (requests, endpoints, TLS), `types.rs` (results and
//!   their JSON), `error.rs`, `membership.rs` (the pure helpers).

mod client;
mod error;
mod membership;
mod types;

pub use client::{EtcdClient, EtcdTls, LearnerProgress};
pub use error::EtcdError;
pub use membership::{RemovalRefused, find_by_peer_url, learner_caught_up, quorum_after_removal};
pub use types::{EndpointStatus, EtcdMemberInfo, MemberId};
