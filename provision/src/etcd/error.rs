//! The membership client's errors, each with a stable [`EtcdError::reason`]
//! for a Kubernetes condition and a message that says what to do.
//!
//! etcd's gateway answers an error with an HTTP status and
//! `{"code": <gRPC code>, "message": "etcdserver: ..."}`. The gRPC code is
//! too coarse (`FailedPrecondition` covers both "too many learners" and
//! "learner not in sync"), so the kind is read from the message: the texts
//! below are etcd's own error values (`api/v3rpc/rpctypes`), unchanged from
//! v3.4 to v3.6.

use std::time::Duration;

use super::types::{MemberId, WireError};

/// Errors of [`super::EtcdClient`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EtcdError {
    #[error("etcd client configuration: {problem}")]
    Config { problem: String },

    #[error(
        "no etcd endpoint could be reached ({detail}); check that etcd runs on {} and that this \
         host can connect to its client port",
        endpoints.join(", ")
    )]
    Unreachable {
        endpoints: Vec<String>,
        detail: String,
    },

    #[error(
        "etcd at {endpoint} refused our client certificate ({detail}); use a client certificate \
         signed by this cluster's etcd CA"
    )]
    ClientCertRejected { endpoint: String, detail: String },

    #[error(
        "etcd's server certificate at {endpoint} is not trusted ({detail}); the CA given must be \
         this cluster's etcd CA, and the certificate must name the address dialled"
    )]
    ServerCertUntrusted { endpoint: String, detail: String },

    #[error(
        "etcd at {endpoint} did not answer {operation} within {after:?}; if it lost quorum, bring \
         its members back first. A membership change may or may not have been applied: list the \
         members before retrying"
    )]
    Timeout {
        endpoint: String,
        operation: &'static str,
        after: Duration,
    },

    #[error(
        "etcd at {endpoint} refused to add a learner: {message}; promote or remove the existing \
         learner first (etcd allows one learner by default)"
    )]
    TooManyLearners { endpoint: String, message: String },

    #[error(
        "etcd at {endpoint} refused to promote learner {member}: {message}; wait until it has \
         caught up with the leader (is it started and able to reach its peers?), then retry"
    )]
    LearnerNotReady {
        endpoint: String,
        member: MemberId,
        message: String,
    },

    #[error(
        "etcd at {endpoint} refused to promote {member}: {message}; it is already a voting member"
    )]
    NotALearner {
        endpoint: String,
        member: MemberId,
        message: String,
    },

    #[error(
        "etcd at {endpoint}: {message} ({member}); list the members again: it may have been \
         removed already"
    )]
    MemberNotFound {
        endpoint: String,
        member: MemberId,
        message: String,
    },

    #[error(
        "etcd at {endpoint} refused to add a member: {message}; a member with that peer URL \
         exists already: look it up by peer URL instead of adding it again"
    )]
    PeerUrlExists { endpoint: String, message: String },

    #[error(
        "etcd at {endpoint} cannot change its membership safely now: {message}; wait until every \
         member is started and healthy (a leader elected, all peers connected), then retry"
    )]
    Unhealthy { endpoint: String, message: String },

    #[error("etcd at {endpoint} refused {operation} (HTTP {status}{}): {message}", code.map(|c| format!(", gRPC code {c}")).unwrap_or_default())]
    RequestFailed {
        endpoint: String,
        operation: &'static str,
        status: u16,
        code: Option<i64>,
        message: String,
    },

    #[error("etcd at {endpoint} answered {operation} with something unexpected: {detail}")]
    BadResponse {
        endpoint: String,
        operation: &'static str,
        detail: String,
    },
}

impl EtcdError {
    /// A stable CamelCase reason for a Kubernetes condition.
    pub fn reason(&self) -> &'static str {
        match self {
            EtcdError::Config { .. } => "EtcdClientConfigInvalid",
            EtcdError::Unreachable { .. } => "EtcdUnreachable",
            EtcdError::ClientCertRejected { .. } => "EtcdClientCertRejected",
            EtcdError::ServerCertUntrusted { .. } => "EtcdServerCertUntrusted",
            EtcdError::Timeout { .. } => "EtcdTimeout",
            EtcdError::TooManyLearners { .. } => "EtcdTooManyLearners",
            EtcdError::LearnerNotReady { .. } => "EtcdLearnerNotReady",
            EtcdError::NotALearner { .. } => "EtcdMemberNotLearner",
            EtcdError::MemberNotFound { .. } => "EtcdMemberNotFound",
            EtcdError::PeerUrlExists { .. } => "EtcdPeerURLExists",
            EtcdError::Unhealthy { .. } => "EtcdUnhealthy",
            EtcdError::RequestFailed { .. } | EtcdError::BadResponse { .. } => "EtcdRequestFailed",
        }
    }

    /// Whether the same call may succeed later without anyone changing the
    /// configuration: a learner catching up, a cluster regaining health, a
    /// network coming back.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EtcdError::Unreachable { .. }
                | EtcdError::Timeout { .. }
                | EtcdError::LearnerNotReady { .. }
                | EtcdError::Unhealthy { .. }
        )
    }

    /// Whether this is a TLS failure (either side's certificate).
    pub fn is_tls(&self) -> bool {
        matches!(
            self,
            EtcdError::ClientCertRejected { .. } | EtcdError::ServerCertUntrusted { .. }
        )
    }
}

/// etcd's error texts this module tells apart (`rpctypes`).
pub(crate) mod text {
    pub const TOO_MANY_LEARNERS: &str = "too many learner members in cluster";
    pub const LEARNER_NOT_READY: &str =
        "can only promote a learner member which is in sync with leader";
    pub const NOT_A_LEARNER: &str = "can only promote a learner member";
    pub const MEMBER_NOT_FOUND: &str = "member not found";
    pub const PEER_URL_EXISTS: &str = "Peer URLs already exists";
    /// A member ID is a hash of the peer URLs, the cluster token and the
    /// time in seconds: the same peer URLs added twice within a second
    /// collide on the ID before the URL check.
    pub const MEMBER_ID_EXISTS: &str = "member ID already exist";
    pub const NOT_ENOUGH_STARTED: &str =
        "re-configuration failed due to not enough started members";
    pub const UNHEALTHY: &str = "unhealthy cluster";
    pub const NO_LEADER: &str = "no leader";
    pub const LEADER_CHANGED: &str = "leader changed";
    pub const REQUEST_TIMED_OUT: &str = "request timed out";
    pub const NOT_LEADER: &str = "not leader";
    pub const NOT_SUPPORTED_FOR_LEARNER: &str = "rpc not supported for learner";
}

/// What an error answer (non-2xx) from `endpoint` means. `member` is the ID
/// the request was about, if any.
pub(crate) fn from_answer(
    endpoint: &str,
    operation: &'static str,
    status: u16,
    body: &[u8],
    member: Option<MemberId>,
) -> EtcdError {
    let parsed = serde_json::from_slice::<WireError>(body).ok();
    let message = match parsed.as_ref().and_then(WireError::text) {
        Some(m) => m.to_string(),
        None => {
            let body = String::from_utf8_lossy(body);
            let body = body.trim();
            if body.is_empty() {
                "no error message".to_string()
            } else {
                body.chars().take(300).collect()
            }
        }
    };
    let code = parsed.as_ref().and_then(|e| e.code);
    let endpoint = endpoint.to_string();
    let has = |t: &str| message.contains(t);
    // Longest first: NOT_A_LEARNER is a prefix of LEARNER_NOT_READY.
    if has(text::TOO_MANY_LEARNERS) {
        EtcdError::TooManyLearners { endpoint, message }
    } else if has(text::LEARNER_NOT_READY) {
        EtcdError::LearnerNotReady {
            endpoint,
            member: member.unwrap_or(MemberId(0)),
            message,
        }
    } else if has(text::NOT_A_LEARNER) {
        EtcdError::NotALearner {
            endpoint,
            member: member.unwrap_or(MemberId(0)),
            message,
        }
    } else if has(text::MEMBER_NOT_FOUND) {
        EtcdError::MemberNotFound {
            endpoint,
            member: member.unwrap_or(MemberId(0)),
            message,
        }
    } else if has(text::PEER_URL_EXISTS) || has(text::MEMBER_ID_EXISTS) {
        EtcdError::PeerUrlExists { endpoint, message }
    } else if [
        text::NOT_ENOUGH_STARTED,
        text::UNHEALTHY,
        text::NO_LEADER,
        text::LEADER_CHANGED,
        text::REQUEST_TIMED_OUT,
    ]
    .iter()
    .any(|t| has(t))
    {
        EtcdError::Unhealthy { endpoint, message }
    } else {
        EtcdError::RequestFailed {
            endpoint,
            operation,
            status,
            code,
            message,
        }
    }
}

/// Whether an error answer says "ask another member": a learner serves no
/// linearizable member list.
pub(crate) fn is_learner_refusal(e: &EtcdError) -> bool {
    matches!(e, EtcdError::RequestFailed { message, .. } if message.contains(text::NOT_SUPPORTED_FOR_LEARNER))
}

/// Whether an error answer means "this member is not (or no longer) the
/// leader" (transfer-leadership must go to the leader).
pub(crate) fn is_not_leader(e: &EtcdError) -> bool {
    matches!(e, EtcdError::RequestFailed { message, .. } if message.ends_with(text::NOT_LEADER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> EtcdError {
        from_answer(
            "https://e:2379",
            "member promote",
            status,
            body.as_bytes(),
            Some(MemberId(0x2a)),
        )
    }

    /// Bodies verbatim from etcd v3.6.16's gateway.
    #[test]
    fn etcd_answers_map_to_reasons() {
        let cases = [
            (
                400,
                r#"{"code":9,"message":"etcdserver: too many learner members in cluster"}"#,
                "EtcdTooManyLearners",
            ),
            (
                400,
                r#"{"code":9,"message":"etcdserver: can only promote a learner member which is in sync with leader"}"#,
                "EtcdLearnerNotReady",
            ),
            (
                400,
                r#"{"code":9,"message":"etcdserver: can only promote a learner member"}"#,
                "EtcdMemberNotLearner",
            ),
            (
                404,
                r#"{"code":5,"message":"etcdserver: member not found"}"#,
                "EtcdMemberNotFound",
            ),
            (
                400,
                r#"{"code":9,"message":"etcdserver: Peer URLs already exists"}"#,
                "EtcdPeerURLExists",
            ),
            (
                400,
                r#"{"code":9,"message":"etcdserver: member ID already exist"}"#,
                "EtcdPeerURLExists",
            ),
            (
                500,
                r#"{"code":2,"message":"etcdserver: re-configuration failed due to not enough started members"}"#,
                "EtcdUnhealthy",
            ),
            (
                503,
                r#"{"code":14,"message":"etcdserver: no leader"}"#,
                "EtcdUnhealthy",
            ),
            (
                400,
                r#"{"code":9,"message":"etcdserver: bad leader transferee"}"#,
                "EtcdRequestFailed",
            ),
            (
                400,
                r#"{"code":3,"message":"invalid character '}' in literal true (expecting 'e')"}"#,
                "EtcdRequestFailed",
            ),
            (502, "<html>bad gateway</html>", "EtcdRequestFailed"),
            (500, "", "EtcdRequestFailed"),
        ];
        for (status, body, reason) in cases {
            let e = answer(status, body);
            assert_eq!(e.reason(), reason, "{body}: {e}");
        }
    }

    #[test]
    fn messages_say_what_to_do() {
        let e = answer(
            400,
            r#"{"code":9,"message":"etcdserver: can only promote a learner member which is in sync with leader"}"#,
        );
        let text = e.to_string();
        assert!(text.contains("000000000000002a"), "{text}");
        assert!(text.contains("wait until it has caught up"), "{text}");
        assert!(e.is_transient());
        let e = answer(502, "<html>bad gateway</html>");
        assert_eq!(
            e.to_string(),
            "etcd at https://e:2379 refused member promote (HTTP 502): <html>bad gateway</html>"
        );
        let e = answer(
            400,
            r#"{"code":9,"message":"etcdserver: bad leader transferee"}"#,
        );
        assert!(e.to_string().contains("(HTTP 400, gRPC code 9)"), "{e}");
        assert!(!e.is_transient());
    }

    #[test]
    fn learner_and_leader_refusals_are_recognised() {
        assert!(is_learner_refusal(&answer(
            400,
            r#"{"code":9,"message":"etcdserver: rpc not supported for learner"}"#
        )));
        assert!(is_not_leader(&answer(
            400,
            r#"{"code":9,"message":"etcdserver: not leader"}"#
        )));
        assert!(!is_not_leader(&answer(
            503,
            r#"{"code":14,"message":"etcdserver: no leader"}"#
        )));
    }
}
