//! Pure helpers for `metav1.Condition` lists keyed by `type`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// A condition the operator wants to be true of an object, before it is merged
/// with what the object already says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// The condition type, such as `Ready`.
    pub type_: &'static str,
    /// `"True"`, `"False"` or `"Unknown"`.
    pub status: &'static str,
    /// CamelCase reason.
    pub reason: &'static str,
    /// A sentence for a person.
    pub message: String,
}

/// Builds the condition list to write: one entry per desired type, keeping the
/// previous `lastTransitionTime` where the status did not change (so
/// `kubectl get` shows how long a member has been in its state, not when the
/// operator last looked).
pub fn merge(
    existing: &[Condition],
    desired: &[Desired],
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    desired
        .iter()
        .map(|d| {
            let last_transition_time = existing
                .iter()
                .find(|c| c.type_ == d.type_ && c.status == d.status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: d.type_.to_owned(),
                status: d.status.to_owned(),
                reason: d.reason.to_owned(),
                message: d.message.clone(),
                observed_generation: generation,
                last_transition_time,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn ready(status: &'static str) -> Desired {
        Desired {
            type_: "Ready",
            status,
            reason: "Waiting",
            message: "m".into(),
        }
    }

    #[test]
    fn new_condition_gets_now() {
        let c = merge(&[], &[ready("False")], Some(3), at(100));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].last_transition_time, Time(at(100)));
        assert_eq!(c[0].observed_generation, Some(3));
    }

    #[test]
    fn unchanged_status_keeps_transition_time() {
        let first = merge(&[], &[ready("False")], Some(1), at(100));
        let second = merge(&first, &[ready("False")], Some(2), at(200));
        assert_eq!(second[0].last_transition_time, Time(at(100)));
        assert_eq!(second[0].observed_generation, Some(2));
    }

    #[test]
    fn changed_status_moves_transition_time() {
        let first = merge(&[], &[ready("False")], Some(1), at(100));
        let second = merge(&first, &[ready("True")], Some(1), at(200));
        assert_eq!(second[0].last_transition_time, Time(at(200)));
    }

    #[test]
    fn one_entry_per_type() {
        let d = [
            ready("False"),
            Desired {
                type_: "Provisioned",
                status: "False",
                reason: "Waiting",
                message: "m".into(),
            },
        ];
        let c = merge(&[], &d, None, at(1));
        let types: Vec<_> = c.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Ready", "Provisioned"]);
    }
}
