//! What the membership client returns, and the JSON of etcd's gRPC gateway
//! it is decoded from.
//!
//! The gateway (etcd v3.6: grpc-gateway v2, protojson with the proto field
//! names) writes every 64-bit integer as a JSON *string*
//! (`"ID":"1654818993570247861"`), and leaves out every field at its zero
//! value: a voting member has no `isLearner`, a member that was added but
//! never started has no `name` and no `clientURLs`, a member that sees no
//! leader has no `leader` in its status. The wire structs below default
//! every field and accept a 64-bit integer as a string or a number.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// An etcd member ID.
///
/// Displayed as etcdctl prints it, 16 lowercase hex digits
/// (`16f7191b6752f4b5`); sent to etcd as a decimal string, as the gateway
/// expects. [`FromStr`] reads the hex form (with or without leading zeros).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub u64);

impl MemberId {
    /// The raw ID.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The decimal form the gateway's JSON wants.
    pub(crate) fn wire(self) -> String {
        self.0.to_string()
    }
}

impl From<u64> for MemberId {
    fn from(id: u64) -> Self {
        Self(id)
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberId({self})")
    }
}

impl FromStr for MemberId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.trim();
        if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "{s:?} is not an etcd member ID (up to 16 hex digits, as etcdctl prints it)"
            ));
        }
        u64::from_str_radix(hex, 16)
            .map(Self)
            .map_err(|e| format!("{s:?} is not an etcd member ID: {e}"))
    }
}

/// One member of the cluster, as `member list` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMemberInfo {
    pub id: MemberId,
    /// Empty until the member has started and published its name.
    pub name: String,
    pub peer_urls: Vec<String>,
    /// Empty until the member has started.
    pub client_urls: Vec<String>,
    pub is_learner: bool,
}

impl EtcdMemberInfo {
    /// Whether the member has started: etcd learns a member's name and
    /// client URLs only from the member itself.
    pub fn is_started(&self) -> bool {
        !self.name.is_empty()
    }

    /// A voting member (not a learner).
    pub fn is_voter(&self) -> bool {
        !self.is_learner
    }
}

/// What one member says about itself (`/v3/maintenance/status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    /// The client URL that answered.
    pub endpoint: String,
    /// The answering member (the response header's `member_id`).
    pub member_id: MemberId,
    /// The member it believes is the leader; `None` when it sees none.
    pub leader: Option<MemberId>,
    pub raft_term: u64,
    /// The raft index it knows to be committed.
    pub raft_index: u64,
    /// The raft index it has applied.
    pub raft_applied_index: u64,
    pub is_learner: bool,
    /// etcd's server version (`3.6.16`).
    pub version: String,
    /// Size of the backend database file, bytes.
    pub db_size: u64,
    /// Bytes of it in use.
    pub db_size_in_use: u64,
    /// Alarms and health problems (`etcdserver: no leader`, `NOSPACE`, ...).
    pub errors: Vec<String>,
}

impl EndpointStatus {
    /// Whether the answering member is the leader.
    pub fn is_leader(&self) -> bool {
        self.leader == Some(self.member_id)
    }
}

// ---------------------------------------------------------------------------
// The wire format.

/// A uint64/int64 as the gateway writes it: a decimal string (or, from
/// other encoders, a plain number).
fn u64_lenient<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Number(u64),
        Text(String),
    }
    match Repr::deserialize(d)? {
        Repr::Number(n) => Ok(n),
        Repr::Text(s) => s.trim().parse().map_err(|e| {
            serde::de::Error::custom(format!("{s:?} is not an unsigned 64-bit integer: {e}"))
        }),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireHeader {
    #[serde(deserialize_with = "u64_lenient", alias = "clusterId")]
    pub cluster_id: u64,
    #[serde(deserialize_with = "u64_lenient", alias = "memberId")]
    pub member_id: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireMember {
    #[serde(rename = "ID", deserialize_with = "u64_lenient")]
    pub id: u64,
    pub name: String,
    #[serde(rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    #[serde(rename = "clientURLs")]
    pub client_urls: Vec<String>,
    #[serde(rename = "isLearner")]
    pub is_learner: bool,
}

impl From<WireMember> for EtcdMemberInfo {
    fn from(m: WireMember) -> Self {
        Self {
            id: MemberId(m.id),
            name: m.name,
            peer_urls: m.peer_urls,
            client_urls: m.client_urls,
            is_learner: m.is_learner,
        }
    }
}

/// The answer of member list, promote and remove.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireMembers {
    pub header: WireHeader,
    pub members: Vec<WireMember>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireMemberAdd {
    pub header: WireHeader,
    /// The added member; absent only from a broken server.
    pub member: Option<WireMember>,
    pub members: Vec<WireMember>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireStatus {
    pub header: WireHeader,
    pub version: String,
    #[serde(rename = "dbSize", deserialize_with = "u64_lenient")]
    pub db_size: u64,
    #[serde(rename = "dbSizeInUse", deserialize_with = "u64_lenient")]
    pub db_size_in_use: u64,
    #[serde(deserialize_with = "u64_lenient")]
    pub leader: u64,
    #[serde(rename = "raftIndex", deserialize_with = "u64_lenient")]
    pub raft_index: u64,
    #[serde(rename = "raftTerm", deserialize_with = "u64_lenient")]
    pub raft_term: u64,
    #[serde(rename = "raftAppliedIndex", deserialize_with = "u64_lenient")]
    pub raft_applied_index: u64,
    pub errors: Vec<String>,
    #[serde(rename = "isLearner")]
    pub is_learner: bool,
}

impl WireStatus {
    pub fn into_status(self, endpoint: &str) -> EndpointStatus {
        EndpointStatus {
            endpoint: endpoint.to_string(),
            member_id: MemberId(self.header.member_id),
            // 0 is raft's "None": no leader known.
            leader: (self.leader != 0).then_some(MemberId(self.leader)),
            raft_term: self.raft_term,
            raft_index: self.raft_index,
            raft_applied_index: self.raft_applied_index,
            is_learner: self.is_learner,
            version: self.version,
            db_size: self.db_size,
            db_size_in_use: self.db_size_in_use,
            errors: self.errors,
        }
    }
}

/// An error answer: `{"code":9,"message":"etcdserver: ..."}` from v3.5+
/// (grpc-gateway v2); v3.4's gateway also sent `"error"` with the same text.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireError {
    pub code: Option<i64>,
    pub message: Option<String>,
    pub error: Option<String>,
}

impl WireError {
    pub fn text(&self) -> Option<&str> {
        self.message
            .as_deref()
            .filter(|m| !m.is_empty())
            .or(self.error.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_print_as_etcdctl_and_parse_back() {
        let id = MemberId(1654818993570247861);
        assert_eq!(id.to_string(), "16f7191b6752f4b5");
        assert_eq!(id.wire(), "1654818993570247861");
        assert_eq!("16f7191b6752f4b5".parse::<MemberId>().unwrap(), id);
        assert_eq!(MemberId(0x2a).to_string(), "000000000000002a");
        assert_eq!("2a".parse::<MemberId>().unwrap(), MemberId(42));
        assert_eq!(format!("{:?}", MemberId(42)), "MemberId(000000000000002a)");
        for bad in ["", "xyz", "0x2a", "16f7191b6752f4b5f", "-1"] {
            assert!(bad.parse::<MemberId>().is_err(), "{bad}");
        }
    }

    /// Verbatim from etcd v3.6.16 after an `add` with `isLearner`: IDs as
    /// strings, the voter without `isLearner`, the new learner without
    /// `name` and `clientURLs`.
    #[test]
    fn member_add_answer_decodes_strings_and_omitted_fields() {
        let json = r#"{"header":{"cluster_id":"14398420247917935680","member_id":"1654818993570247861","raft_term":"2"},"member":{"ID":"11188494595211445682","peerURLs":["https://127.0.0.1:23802"],"isLearner":true},"members":[{"ID":"1654818993570247861","name":"a","peerURLs":["https://127.0.0.1:23801"],"clientURLs":["https://127.0.0.1:23791"]},{"ID":"11188494595211445682","peerURLs":["https://127.0.0.1:23802"],"isLearner":true}]}"#;
        let add: WireMemberAdd = serde_json::from_str(json).unwrap();
        assert_eq!(add.header.cluster_id, 14398420247917935680);
        let new = EtcdMemberInfo::from(add.member.unwrap());
        assert_eq!(new.id, MemberId(11188494595211445682));
        assert!(new.is_learner && !new.is_started() && new.client_urls.is_empty());
        let members: Vec<EtcdMemberInfo> = add.members.into_iter().map(Into::into).collect();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].name, "a");
        assert!(members[0].is_voter() && members[0].is_started());
        assert_eq!(members[0].client_urls, ["https://127.0.0.1:23791"]);
        assert!(members[1].is_learner);
    }

    /// Verbatim from etcd v3.6.16: a single member that is its own leader,
    /// and one that lost its leader (`leader` omitted, an error listed).
    #[test]
    fn status_answers_decode() {
        let json = r#"{"header":{"cluster_id":"14398420247917935680","member_id":"1654818993570247861","revision":"1","raft_term":"2"},"version":"3.6.16","dbSize":"28672","leader":"1654818993570247861","raftIndex":"4","raftTerm":"2","raftAppliedIndex":"4","dbSizeInUse":"24576","storageVersion":"3.6.0","dbSizeQuota":"2147483648","downgradeInfo":{}}"#;
        let s = serde_json::from_str::<WireStatus>(json)
            .unwrap()
            .into_status("https://127.0.0.1:23791");
        assert_eq!(s.member_id, MemberId(1654818993570247861));
        assert!(s.is_leader());
        assert_eq!((s.raft_term, s.raft_index, s.raft_applied_index), (2, 4, 4));
        assert_eq!((s.db_size, s.db_size_in_use), (28672, 24576));
        assert_eq!(s.version, "3.6.16");
        assert!(!s.is_learner && s.errors.is_empty());

        let json = r#"{"header":{"cluster_id":"14398420247917935680","member_id":"1654818993570247861","revision":"1","raft_term":"2"},"version":"3.6.16","dbSize":"28672","raftIndex":"12","raftTerm":"2","raftAppliedIndex":"12","errors":["etcdserver: no leader"],"dbSizeInUse":"24576"}"#;
        let s = serde_json::from_str::<WireStatus>(json)
            .unwrap()
            .into_status("e");
        assert_eq!(s.leader, None);
        assert!(!s.is_leader());
        assert_eq!(s.errors, ["etcdserver: no leader"]);
    }

    #[test]
    fn numbers_are_accepted_and_garbage_is_refused() {
        let m: WireMember =
            serde_json::from_str(r#"{"ID":42,"isLearner":true,"peerURLs":["https://h:2380"]}"#)
                .unwrap();
        assert_eq!((m.id, m.is_learner), (42, true));
        let m: WireMember = serde_json::from_str(r#"{"ID":"18446744073709551615"}"#).unwrap();
        assert_eq!(m.id, u64::MAX);
        assert!(serde_json::from_str::<WireMember>(r#"{"ID":"12ab"}"#).is_err());
        assert!(serde_json::from_str::<WireMember>(r#"{"ID":"18446744073709551616"}"#).is_err());
        // An empty list answer: members omitted entirely.
        let l: WireMembers = serde_json::from_str(r#"{"header":{}}"#).unwrap();
        assert!(l.members.is_empty());
    }

    #[test]
    fn error_answers_decode_old_and_new_shapes() {
        let e: WireError = serde_json::from_str(
            r#"{"code":9,"message":"etcdserver: too many learner members in cluster"}"#,
        )
        .unwrap();
        assert_eq!(e.code, Some(9));
        assert_eq!(
            e.text(),
            Some("etcdserver: too many learner members in cluster")
        );
        let e: WireError = serde_json::from_str(
            r#"{"error":"etcdserver: member not found","code":5,"message":""}"#,
        )
        .unwrap();
        assert_eq!(e.text(), Some("etcdserver: member not found"));
    }
}
