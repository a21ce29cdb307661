//! Growing etcd one member at a time: the member is added as a **learner**
//! (it replicates but does not vote, so a slow or broken newcomer cannot
//! cost the cluster its quorum), started on its host with
//! `initial-cluster-state=existing`, and **promoted** once it has caught up.
//!
//! Both steps are tasks, so they run in a master's plan between etcd's
//! start and the apiserver's, check before they act (a resumed run finds
//! the learner it added by its peer URL and never adds a second one), and
//! report like every other task. They talk to etcd over its client API
//! from wherever the plan runs: the operator in the cluster, or a
//! workstation when the cluster cannot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::etcd::{EtcdClient, EtcdError, EtcdMemberInfo, find_by_peer_url};
use crate::host::Host;
use crate::tasks::{Check, Failure, Progress, Task};

/// Reason: another member is still joining; etcd takes one learner at a time.
pub const REASON_LEARNER_BUSY: &str = "EtcdLearnerBusy";
/// Reason: the learner did not catch up in time.
pub const REASON_LEARNER_BEHIND: &str = "EtcdLearnerBehind";

fn failure(e: EtcdError) -> Failure {
    Failure::new(e.reason(), e.to_string())
}

/// `--initial-cluster` for a member joining `members`: every started
/// member by name, and the newcomer. A member added but never started
/// (no name yet) other than the newcomer means another join is half done:
/// refused, one join at a time.
pub fn initial_cluster_for(
    members: &[EtcdMemberInfo],
    name: &str,
    peer_url: &str,
) -> Result<String, Failure> {
    let mut pairs = Vec::new();
    for m in members {
        if m.peer_urls.iter().any(|u| u == peer_url) {
            continue;
        }
        if !m.is_started() {
            return Err(Failure::new(
                REASON_LEARNER_BUSY,
                format!(
                    "etcd member {} ({}) was added but has not started: another join is in progress; this one waits for it",
                    m.id,
                    m.peer_urls.join(",")
                ),
            ));
        }
        for url in &m.peer_urls {
            pairs.push(format!("{}={url}", m.name));
        }
    }
    pairs.push(format!("{name}={peer_url}"));
    Ok(pairs.join(","))
}

/// Adds the member as a learner, unless it is already a member.
#[derive(Debug)]
pub struct AddLearner {
    etcd: Arc<EtcdClient>,
    name: String,
    peer_url: String,
}

impl AddLearner {
    /// Adds `name` at `peer_url` through `etcd`.
    pub fn new(
        etcd: Arc<EtcdClient>,
        name: impl Into<String>,
        peer_url: impl Into<String>,
    ) -> Self {
        AddLearner {
            etcd,
            name: name.into(),
            peer_url: peer_url.into(),
        }
    }
}

impl Task for AddLearner {
    fn id(&self) -> &str {
        "etcd/add-learner"
    }

    fn describe(&self) -> String {
        format!(
            "add etcd member {} ({}) as a learner",
            self.name, self.peer_url
        )
    }

    fn check<'a>(&'a self, _host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            let members = self.etcd.members().await.map_err(failure)?;
            Ok(match find_by_peer_url(&members, &self.peer_url) {
                Some(_) => Check::UpToDate,
                None => Check::apply("not a member yet"),
            })
        })
    }

    fn apply<'a>(
        &'a self,
        _host: &'a dyn Host,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let members = self.etcd.members().await.map_err(failure)?;
            if find_by_peer_url(&members, &self.peer_url).is_some() {
                return Ok(());
            }
            if let Some(other) = members.iter().find(|m| m.is_learner || !m.is_started()) {
                return Err(Failure::new(
                    REASON_LEARNER_BUSY,
                    format!(
                        "etcd member {} ({}) is still joining: one learner at a time; this join resumes when it is promoted or removed",
                        other.id,
                        other.peer_urls.join(",")
                    ),
                ));
            }
            let (id, _) = self
                .etcd
                .add_learner(std::slice::from_ref(&self.peer_url))
                .await
                .map_err(failure)?;
            progress(format!("added as learner {id}"));
            Ok(())
        })
    }
}

/// Promotes the learner at the peer URL once it has caught up.
#[derive(Debug)]
pub struct PromoteLearner {
    etcd: Arc<EtcdClient>,
    peer_url: String,
    timeout: Duration,
}

impl PromoteLearner {
    /// Promotes the member at `peer_url`, waiting up to `timeout` for it to
    /// catch up with the leader.
    pub fn new(etcd: Arc<EtcdClient>, peer_url: impl Into<String>, timeout: Duration) -> Self {
        PromoteLearner {
            etcd,
            peer_url: peer_url.into(),
            timeout,
        }
    }
}

impl Task for PromoteLearner {
    fn id(&self) -> &str {
        "etcd/promote"
    }

    fn describe(&self) -> String {
        format!(
            "promote the etcd learner at {} to a voting member once it has caught up",
            self.peer_url
        )
    }

    fn check<'a>(&'a self, _host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            let members = self.etcd.members().await.map_err(failure)?;
            Ok(match find_by_peer_url(&members, &self.peer_url) {
                Some(m) if m.is_voter() => Check::UpToDate,
                Some(_) => Check::apply("a learner"),
                None => Check::apply("not a member"),
            })
        })
    }

    fn apply<'a>(
        &'a self,
        _host: &'a dyn Host,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let started = Instant::now();
            loop {
                let members = self.etcd.members().await.map_err(failure)?;
                let Some(member) = find_by_peer_url(&members, &self.peer_url) else {
                    return Err(Failure::new(
                        "EtcdMemberNotFound",
                        format!(
                            "no etcd member has peer URL {}: it was removed while joining; the join starts over on the next reconcile",
                            self.peer_url
                        ),
                    ));
                };
                if member.is_voter() {
                    return Ok(());
                }
                let id = member.id;
                let caught_up = match self.etcd.learner_progress(id).await {
                    Ok(p) => p.caught_up(),
                    Err(e) if e.is_transient() => false,
                    Err(e) => return Err(failure(e)),
                };
                if caught_up {
                    match self.etcd.promote(id).await {
                        Ok(_) => {
                            progress(format!("learner {id} promoted"));
                            return Ok(());
                        }
                        // Caught up by our reading, not yet by the leader's.
                        Err(e) if e.reason() == "EtcdLearnerNotReady" => {}
                        Err(e) => return Err(failure(e)),
                    }
                }
                if started.elapsed() > self.timeout {
                    return Err(Failure::new(
                        REASON_LEARNER_BEHIND,
                        format!(
                            "etcd learner {id} did not catch up with the leader within {:?}: look at `journalctl -u etcd` on the new host (peer port reachable? clock?)",
                            self.timeout
                        ),
                    ));
                }
                progress(format!("learner {id} catching up"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::MemberId;

    fn member(id: u64, name: &str, peer: &str, learner: bool) -> EtcdMemberInfo {
        EtcdMemberInfo {
            id: MemberId(id),
            name: name.into(),
            peer_urls: vec![peer.into()],
            client_urls: vec![],
            is_learner: learner,
        }
    }

    #[test]
    fn the_initial_cluster_is_the_started_members_and_the_newcomer() {
        let members = [
            member(1, "m1", "https://10.0.0.11:2380", false),
            member(2, "", "https://10.0.0.12:2380", true),
        ];
        assert_eq!(
            initial_cluster_for(&members, "m2", "https://10.0.0.12:2380").unwrap(),
            "m1=https://10.0.0.11:2380,m2=https://10.0.0.12:2380"
        );
        let busy = initial_cluster_for(&members, "m3", "https://10.0.0.13:2380").unwrap_err();
        assert_eq!(busy.reason, REASON_LEARNER_BUSY);
    }
}
