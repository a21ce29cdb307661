//! Leader election on a `coordination.k8s.io/v1` Lease.
//!
//! kube 5 ships no leader election, so this is the client-go algorithm in
//! small: the holder renews `renewTime` every retry period; a candidate takes
//! the Lease over when the record it observed has not changed for
//! `leaseDurationSeconds` *by its own monotonic clock* (so clock skew between
//! nodes cannot make two leaders); every write is a PUT carrying the
//! `resourceVersion` that was read, so two candidates racing for the Lease
//! cannot both win. A leader that cannot renew within the renew deadline gives
//! up (its caller stops the controllers and exits), and a leader that shuts
//! down releases the Lease so the next one takes over at once.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tracing::{debug, info, warn};

/// Timings and names of the election.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Name of the Lease object.
    pub name: String,
    /// Namespace of the Lease object (the operator's own).
    pub namespace: String,
    /// This process's identity, written as `holderIdentity` (the Pod name).
    pub identity: String,
    /// How long a record must stay unchanged before a candidate takes over.
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it gives up.
    pub renew_deadline: Duration,
    /// Pause between attempts.
    pub retry_period: Duration,
}

/// What a candidate does with the Lease it read (pure, see [`decide`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// We hold it: renew.
    Renew,
    /// Nobody holds it, or the holder stopped renewing: take it.
    TakeOver,
    /// Someone else holds it and renews it.
    Follow {
        /// The current holder.
        holder: String,
    },
}

/// Decides what to do with a Lease whose record has been unchanged for
/// `unchanged_for` (measured locally).
pub fn decide(spec: &LeaseSpec, identity: &str, unchanged_for: Duration) -> Decision {
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    if holder.is_empty() {
        return Decision::TakeOver;
    }
    if holder == identity {
        return Decision::Renew;
    }
    let duration = Duration::from_secs(
        spec.lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0),
    );
    if unchanged_for > duration {
        Decision::TakeOver
    } else {
        Decision::Follow {
            holder: holder.to_owned(),
        }
    }
}

/// Who holds the Lease after one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// This process.
    Leader,
    /// Another process, if known.
    Follower(Option<String>),
}

/// The record a candidate watches for change: holder and renew time.
type Record = (Option<String>, Option<MicroTime>);

/// One process's view of the Lease.
#[derive(Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Option<(Record, Instant)>,
}

impl LeaderElector {
    /// An elector for `config`, using `client`.
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    /// The election's settings.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// One attempt to acquire or renew. `Err` only for API failures other than
    /// a lost race (a conflict is simply "not leader this round").
    pub async fn try_acquire_or_renew(&mut self) -> Result<Role, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(self.lease_seconds()),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Role::Leader),
                Err(e) if is_status(&e, 409) => Ok(Role::Follower(None)),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let record: Record = (spec.holder_identity.clone(), spec.renew_time.clone());
        let unchanged_for = match &self.observed {
            Some((seen, since)) if *seen == record => since.elapsed(),
            _ => {
                self.observed = Some((record, Instant::now()));
                Duration::ZERO
            }
        };
        let mut next = spec.clone();
        match decide(&spec, &self.config.identity, unchanged_for) {
            Decision::Follow { holder } => return Ok(Role::Follower(Some(holder))),
            Decision::Renew => {
                next.renew_time = Some(now);
                next.lease_duration_seconds = Some(self.lease_seconds());
            }
            Decision::TakeOver => {
                info!(previous = ?spec.holder_identity, "taking over the leader Lease");
                next.holder_identity = Some(self.config.identity.clone());
                next.acquire_time = Some(now.clone());
                next.renew_time = Some(now);
                next.lease_duration_seconds = Some(self.lease_seconds());
                next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
        }
        lease.spec = Some(next);
        // replace() sends metadata.resourceVersion: a concurrent writer makes
        // this a 409 instead of a second leader.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Role::Leader),
            Err(e) if is_status(&e, 409) => {
                debug!("lost a race for the Lease");
                Ok(Role::Follower(None))
            }
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up if this process holds it, so a standby takes over
    /// without waiting for it to expire.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        lease.spec = Some(spec);
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await?;
        info!("released the leader Lease");
        Ok(())
    }

    /// Renews until `stop` completes (returns [`Held::Stopped`]) or until no
    /// renewal succeeded for the renew deadline or another holder appeared
    /// (returns [`Held::Lost`]). `on_api_ok` is called after every successful
    /// API round trip (readiness).
    /// `acquired_at` is when the attempt that won the Lease was started.
    pub async fn hold(
        &mut self,
        stop: crate::controllers::StopSignal,
        acquired_at: Instant,
        on_api_ok: impl Fn(),
    ) -> Held {
        let mut last_renewed = acquired_at;
        loop {
            tokio::select! {
                _ = stop.clone() => return Held::Stopped,
                _ = tokio::time::sleep(self.config.retry_period) => {}
            }
            // The deadline counts from when a successful renewal was *sent*
            // (that is the renewTime standbys saw), and a request that hangs
            // (an API server that stopped answering) must not outlive it.
            let started = Instant::now();
            let remaining = self
                .config
                .renew_deadline
                .saturating_sub(last_renewed.elapsed());
            let attempt = tokio::select! {
                _ = stop.clone() => return Held::Stopped,
                r = tokio::time::timeout(remaining, self.try_acquire_or_renew()) => r,
            };
            match attempt {
                Ok(Ok(Role::Leader)) => {
                    on_api_ok();
                    last_renewed = started;
                }
                Ok(Ok(Role::Follower(holder))) => {
                    on_api_ok();
                    if holder.is_some() {
                        warn!(holder = ?holder, "another process holds the Lease now");
                        return Held::Lost;
                    }
                }
                Ok(Err(e)) => warn!(error = %e, "cannot renew the leader Lease"),
                Err(_) => warn!("renewing the leader Lease timed out"),
            }
            if last_renewed.elapsed() >= self.config.renew_deadline {
                warn!(
                    deadline = ?self.config.renew_deadline,
                    "no renewal within the renew deadline; giving up leadership"
                );
                return Held::Lost;
            }
        }
    }
}

/// How holding the Lease ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// The caller asked to stop; the Lease is still ours until released.
    Stopped,
    /// Leadership is gone; the controllers must stop at once.
    Lost,
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, secs: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(str::to_owned),
            lease_duration_seconds: Some(secs),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn empty_holder_is_taken() {
        assert_eq!(
            decide(&spec(None, 15), "a", Duration::ZERO),
            Decision::TakeOver
        );
        assert_eq!(
            decide(&spec(Some(""), 15), "a", Duration::ZERO),
            Decision::TakeOver
        );
    }

    #[test]
    fn own_lease_is_renewed() {
        assert_eq!(
            decide(&spec(Some("a"), 15), "a", Duration::from_secs(100)),
            Decision::Renew
        );
    }

    #[test]
    fn live_holder_is_followed() {
        assert_eq!(
            decide(&spec(Some("b"), 15), "a", Duration::from_secs(15)),
            Decision::Follow { holder: "b".into() }
        );
    }

    #[test]
    fn stale_holder_is_replaced_only_after_the_full_duration() {
        assert_eq!(
            decide(&spec(Some("b"), 15), "a", Duration::from_millis(15_001)),
            Decision::TakeOver
        );
    }
}
