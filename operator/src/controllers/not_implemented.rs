//! The plan of a kind whose provisioning has not landed yet: say so in the
//! status, loudly, instead of leaving the object looking untouched or healthy.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kubeseed_crds::v1alpha1::Phase;
use kubeseed_crds::v1alpha1::conditions::{IMPLEMENTED, READY, REASON_NOT_IMPLEMENTED};

use crate::conditions::{Desired, merge};

/// The status a not-yet-implemented controller writes.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusPlan {
    /// Always [`Phase::Pending`]: accepted, nothing done on the host.
    pub phase: Phase,
    /// `Implemented=False` and `Ready=False`, both with reason `NotImplemented`.
    pub conditions: Vec<Condition>,
    /// The generation this status describes.
    pub observed_generation: Option<i64>,
    /// True when the object did not already say `NotImplemented`: the Warning
    /// event is raised once per object, not on every resync.
    pub announce: bool,
}

/// The sentence the status and the Warning event carry.
pub fn message(kind: &str, hosts: &str) -> String {
    format!(
        "kubeseed-operator {} cannot provision {kind} yet: nothing was done on {hosts}; \
         the object is kept (with its finalizer) until a version that can is installed",
        env!("CARGO_PKG_VERSION")
    )
}

/// Plans the status of an object of `kind` on `hosts` (pure).
pub fn plan(
    kind: &str,
    hosts: &str,
    existing: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> StatusPlan {
    let msg = message(kind, hosts);
    let desired = [
        Desired {
            type_: IMPLEMENTED,
            status: "False",
            reason: REASON_NOT_IMPLEMENTED,
            message: msg.clone(),
        },
        Desired {
            type_: READY,
            status: "False",
            reason: REASON_NOT_IMPLEMENTED,
            message: msg,
        },
    ];
    let announce = !existing.iter().any(|c| {
        c.type_ == IMPLEMENTED && c.status == "False" && c.reason == REASON_NOT_IMPLEMENTED
    });
    StatusPlan {
        phase: Phase::Pending,
        conditions: merge(existing, &desired, generation, now),
        observed_generation: generation,
        announce,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_not_implemented_and_never_ready() {
        let p = plan(
            "EtcdMember",
            "10.0.0.1",
            &[],
            Some(1),
            Timestamp::UNIX_EPOCH,
        );
        assert_eq!(p.phase, Phase::Pending);
        assert!(p.announce);
        let ready = p.conditions.iter().find(|c| c.type_ == READY);
        assert_eq!(ready.map(|c| c.status.as_str()), Some("False"));
        let implemented = p.conditions.iter().find(|c| c.type_ == IMPLEMENTED);
        assert_eq!(
            implemented.map(|c| c.reason.as_str()),
            Some(REASON_NOT_IMPLEMENTED)
        );
        assert!(p.conditions[0].message.contains("10.0.0.1"));
    }

    #[test]
    fn announces_once() {
        let first = plan("WorkerNode", "h", &[], Some(1), Timestamp::UNIX_EPOCH);
        let second = plan(
            "WorkerNode",
            "h",
            &first.conditions,
            Some(2),
            Timestamp::UNIX_EPOCH,
        );
        assert!(!second.announce);
        assert_eq!(second.observed_generation, Some(2));
    }
}
