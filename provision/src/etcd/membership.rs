//! Pure decisions the operator makes around membership changes, so that a
//! reconcile run again after a crash does the right thing.

use super::types::{EndpointStatus, EtcdMemberInfo, MemberId};

/// The member with this peer URL, started or not.
///
/// An added member that has not started yet has no name and no client
/// URLs: its peer URL is the only thing that identifies it. A reconcile
/// that crashed between `add_learner` and recording the ID finds the
/// member again with this instead of adding a second one. URLs are
/// compared case-insensitively and without trailing slashes.
pub fn find_by_peer_url<'a>(
    members: &'a [EtcdMemberInfo],
    url: &str,
) -> Option<&'a EtcdMemberInfo> {
    let wanted = normalise_url(url);
    members
        .iter()
        .find(|m| m.peer_urls.iter().any(|u| normalise_url(u) == wanted))
}

fn normalise_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_ascii_lowercase()
}

/// Why a removal was refused by [`quorum_after_removal`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemovalRefused {
    #[error(
        "refusing to remove {member}: it is the last voting member, and etcd would have no \
         members left to serve; add and promote another member first"
    )]
    LastVoter { member: MemberId },

    #[error(
        "refusing to remove {member}: {voters_after} voting member(s) would remain, of which only \
         {healthy_after} are healthy, and a quorum needs {needed}; bring the unhealthy members \
         back (or remove them first) before removing this one"
    )]
    WouldLoseQuorum {
        member: MemberId,
        voters_after: usize,
        healthy_after: usize,
        needed: usize,
    },
}

impl RemovalRefused {
    /// A stable reason for a Kubernetes condition.
    pub fn reason(&self) -> &'static str {
        match self {
            RemovalRefused::LastVoter { .. } => "EtcdLastVoter",
            RemovalRefused::WouldLoseQuorum { .. } => "EtcdQuorumAtRisk",
        }
    }
}

/// Whether removing `remove` keeps the cluster able to serve.
///
/// The rule is the one etcd's leader applies under `--strict-reconfig-check`
/// (on by default; it answers "not enough started members" or "unhealthy
/// cluster"), checked here first so that the operator can refuse with its
/// own reason, from its own view of which members are healthy, before
/// asking etcd at all:
///
/// - a member that is not in `members`, or is a learner, never counts
///   towards quorum: removing it is always allowed;
/// - removing the last voting member is refused;
/// - otherwise, with `n` voting members left after the removal, at least
///   `n / 2 + 1` of them must be in `healthy` (members whose status answered
///   without errors, as the caller measured just before). For example, of
///   three voters with one down, removing the one that is down is allowed
///   (two left, both healthy), removing a healthy one is refused (two left,
///   one healthy).
pub fn quorum_after_removal(
    members: &[EtcdMemberInfo],
    remove: MemberId,
    healthy: &[MemberId],
) -> Result<(), RemovalRefused> {
    let Some(target) = members.iter().find(|m| m.id == remove) else {
        return Ok(());
    };
    if target.is_learner {
        return Ok(());
    }
    let remaining: Vec<&EtcdMemberInfo> = members
        .iter()
        .filter(|m| m.is_voter() && m.id != remove)
        .collect();
    if remaining.is_empty() {
        return Err(RemovalRefused::LastVoter { member: remove });
    }
    let voters_after = remaining.len();
    let healthy_after = remaining.iter().filter(|m| healthy.contains(&m.id)).count();
    let needed = voters_after / 2 + 1;
    if healthy_after < needed {
        return Err(RemovalRefused::WouldLoseQuorum {
            member: remove,
            voters_after,
            healthy_after,
            needed,
        });
    }
    Ok(())
}

/// Whether a learner has caught up with the leader closely enough to be
/// promoted.
///
/// etcd promotes a learner only when the leader's record of what the
/// learner has (its raft `Match`) is at least 90% of the leader's own
/// (`readyPercentThreshold` in etcd's server). Those numbers are internal
/// to the leader; the closest a client sees is the learner's applied index
/// and the leader's committed index, which this compares with the same 90%.
/// It also wants both statuses error-free, the leader to be the leader, and
/// the learner to know that leader (it has heard from it). `promote` may
/// still answer [`super::EtcdError::LearnerNotReady`] on a busy cluster:
/// that is transient, retry.
pub fn learner_caught_up(leader: &EndpointStatus, learner: &EndpointStatus) -> bool {
    if !leader.is_leader() || !leader.errors.is_empty() || !learner.errors.is_empty() {
        return false;
    }
    if learner.leader != Some(leader.member_id) || learner.member_id == leader.member_id {
        return false;
    }
    // learner / leader >= 0.9, in integers.
    u128::from(learner.raft_applied_index) * 10 >= u128::from(leader.raft_index) * 9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, name: &str, peer: &str, learner: bool) -> EtcdMemberInfo {
        EtcdMemberInfo {
            id: MemberId(id),
            name: name.into(),
            peer_urls: vec![peer.into()],
            client_urls: if name.is_empty() {
                vec![]
            } else {
                vec![peer.replace("2380", "2379")]
            },
            is_learner: learner,
        }
    }

    fn three() -> Vec<EtcdMemberInfo> {
        vec![
            member(1, "a", "https://10.0.0.1:2380", false),
            member(2, "b", "https://10.0.0.2:2380", false),
            member(3, "c", "https://10.0.0.3:2380", false),
        ]
    }

    #[test]
    fn an_unstarted_member_is_found_by_its_peer_url() {
        let mut members = three();
        members.push(member(4, "", "https://10.0.0.4:2380", true));
        let found = find_by_peer_url(&members, "HTTPS://10.0.0.4:2380/").unwrap();
        assert_eq!(found.id, MemberId(4));
        assert!(!found.is_started());
        assert_eq!(
            find_by_peer_url(&members, "https://10.0.0.2:2380").map(|m| m.id),
            Some(MemberId(2))
        );
        assert!(find_by_peer_url(&members, "https://10.0.0.4:2381").is_none());
        assert!(find_by_peer_url(&[], "https://10.0.0.4:2380").is_none());
    }

    #[test]
    fn the_last_voter_is_never_removed() {
        let one = vec![member(1, "a", "https://10.0.0.1:2380", false)];
        let e = quorum_after_removal(&one, MemberId(1), &[MemberId(1)]).unwrap_err();
        assert_eq!(
            e,
            RemovalRefused::LastVoter {
                member: MemberId(1)
            }
        );
        assert_eq!(e.reason(), "EtcdLastVoter");
        // A learner left behind is no voter.
        let mut with_learner = one.clone();
        with_learner.push(member(2, "b", "https://10.0.0.2:2380", true));
        assert!(
            quorum_after_removal(&with_learner, MemberId(1), &[MemberId(1), MemberId(2)]).is_err()
        );
        // The learner itself can go.
        assert_eq!(
            quorum_after_removal(&with_learner, MemberId(2), &[MemberId(1)]),
            Ok(())
        );
    }

    #[test]
    fn removals_keep_a_healthy_majority() {
        let members = three();
        let all = [MemberId(1), MemberId(2), MemberId(3)];
        // Three healthy voters: any one may go (two left, both healthy).
        for id in all {
            assert_eq!(quorum_after_removal(&members, id, &all), Ok(()), "{id}");
        }
        // c is down: removing c leaves a and b, both healthy.
        let up = [MemberId(1), MemberId(2)];
        assert_eq!(quorum_after_removal(&members, MemberId(3), &up), Ok(()));
        // Removing a healthy one leaves b (healthy) and c (down): 1 < 2.
        let e = quorum_after_removal(&members, MemberId(1), &up).unwrap_err();
        assert_eq!(
            e,
            RemovalRefused::WouldLoseQuorum {
                member: MemberId(1),
                voters_after: 2,
                healthy_after: 1,
                needed: 2
            }
        );
        assert_eq!(e.reason(), "EtcdQuorumAtRisk");
        assert!(e.to_string().contains("0000000000000001"), "{e}");
        // Two voters: removing one leaves one, which must be healthy.
        let two = &members[..2];
        assert_eq!(quorum_after_removal(two, MemberId(1), &up), Ok(()));
        assert!(quorum_after_removal(two, MemberId(1), &[MemberId(1)]).is_err());
        // Five voters, two down: removing a down one leaves 4 with 3 healthy (needs 3).
        let mut five = three();
        five.push(member(4, "d", "https://10.0.0.4:2380", false));
        five.push(member(5, "e", "https://10.0.0.5:2380", false));
        let up = [MemberId(1), MemberId(2), MemberId(3)];
        assert_eq!(quorum_after_removal(&five, MemberId(5), &up), Ok(()));
        assert!(quorum_after_removal(&five, MemberId(1), &up).is_err());
        // A member that is not there: nothing to protect.
        assert_eq!(quorum_after_removal(&members, MemberId(9), &[]), Ok(()));
    }

    fn status(id: u64, leader: Option<u64>, index: u64, applied: u64) -> EndpointStatus {
        EndpointStatus {
            endpoint: format!("https://10.0.0.{id}:2379"),
            member_id: MemberId(id),
            leader: leader.map(MemberId),
            raft_term: 2,
            raft_index: index,
            raft_applied_index: applied,
            is_learner: false,
            version: "3.6.16".into(),
            db_size: 0,
            db_size_in_use: 0,
            errors: vec![],
        }
    }

    #[test]
    fn a_learner_is_caught_up_at_ninety_percent_of_the_leader() {
        let leader = status(1, Some(1), 1000, 1000);
        let mut learner = status(2, Some(1), 900, 900);
        learner.is_learner = true;
        assert!(learner_caught_up(&leader, &learner));
        learner.raft_applied_index = 899;
        assert!(!learner_caught_up(&leader, &learner));
        learner.raft_applied_index = 1000;
        assert!(learner_caught_up(&leader, &learner));
        // Not if the "leader" is not the leader, or the learner has not heard of it.
        assert!(!learner_caught_up(
            &status(3, Some(1), 1000, 1000),
            &learner
        ));
        let mut orphan = learner.clone();
        orphan.leader = None;
        assert!(!learner_caught_up(&leader, &orphan));
        // Not with errors on either side.
        let mut sick = learner.clone();
        sick.errors.push("etcdserver: no leader".into());
        assert!(!learner_caught_up(&leader, &sick));
        // Not against itself.
        assert!(!learner_caught_up(&leader, &leader));
        // A fresh learner of an empty cluster: 0 of 0.
        assert!(learner_caught_up(
            &status(1, Some(1), 0, 0),
            &status(2, Some(1), 0, 0)
        ));
        // No overflow at the top.
        assert!(learner_caught_up(
            &status(1, Some(1), u64::MAX, u64::MAX),
            &status(2, Some(1), u64::MAX, u64::MAX)
        ));
    }
}
