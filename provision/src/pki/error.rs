//! What can go wrong while making, loading or checking PKI material.
//!
//! Every variant names what was wrong and what to do about it, because these
//! messages end up in `bootstrap` output and in the operator's conditions.

use std::path::PathBuf;

/// An error from the PKI engine.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A subject alternative name is neither an IP address nor a DNS name.
    #[error(
        "invalid subject alternative name {value:?}: {reason}. Give an IP address \
         (10.0.0.10, fd00::10) or a DNS name (letters, digits, '-' and '.'; at most 253 \
         characters), without scheme or port"
    )]
    InvalidSan {
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },

    /// The service CIDR cannot give the `kubernetes` Service's address.
    #[error(
        "invalid service CIDR {value:?}: {reason}. Give the same value as kube-apiserver's \
         --service-cluster-ip-range, e.g. 10.96.0.0/12"
    )]
    InvalidServiceCidr {
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },

    /// A name used inside certificates (cluster, node, member, domain) is unusable.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// Which input it was.
        what: &'static str,
        /// The value as given.
        value: String,
        /// Why it was refused and what would be accepted.
        reason: String,
    },

    /// The cluster description is incomplete or contradicts itself.
    #[error("invalid cluster PKI specification: {0}")]
    InvalidSpec(String),

    /// A key algorithm name was not recognised.
    #[error("unknown key algorithm {0:?}: use one of ecdsa-p256, rsa-2048, rsa-3072, rsa-4096")]
    UnknownAlgorithm(String),

    /// A validity period is unusable.
    #[error("invalid validity: {0}")]
    InvalidValidity(String),

    /// Text that should have been a PEM certificate was not one.
    #[error("{what}: cannot read the certificate: {reason}. Expected one PEM `CERTIFICATE` block")]
    BadCertificate {
        /// Which certificate.
        what: String,
        /// The parser's complaint.
        reason: String,
    },

    /// Text that should have been a private key was not one.
    #[error(
        "{what}: cannot read the private key: {reason}. Expected an unencrypted PEM key: \
         PKCS#8 (`PRIVATE KEY`), SEC1 (`EC PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`)"
    )]
    BadKey {
        /// Which key.
        what: String,
        /// The parser's complaint.
        reason: String,
    },

    /// A certificate that must be a CA is not one.
    #[error(
        "{what} is not a certificate authority (it needs basicConstraints CA:TRUE and the \
         keyCertSign key usage); load the CA certificate (ca.crt), not a leaf"
    )]
    NotCa {
        /// Which certificate.
        what: String,
    },

    /// The CA has expired.
    #[error(
        "{what} expired at {not_after}; certificates it signs would be rejected. Rotate the \
         CA (make a new one and re-issue every certificate under it)"
    )]
    CaExpired {
        /// Which CA.
        what: String,
        /// When it expired (RFC 3339).
        not_after: String,
    },

    /// The CA is not valid yet.
    #[error(
        "{what} is not valid before {not_before}; check this machine's clock (and the clock \
         of the machine that made the CA)"
    )]
    CaNotYetValid {
        /// Which CA.
        what: String,
        /// Its notBefore (RFC 3339).
        not_before: String,
    },

    /// The private key does not belong to the certificate.
    #[error(
        "the private key of {what} does not match its certificate; the pair must come from \
         the same CA (check that ca.crt/ca.key were not swapped with another CA's files)"
    )]
    KeyMismatch {
        /// Which CA or certificate.
        what: String,
    },

    /// A Secret (or state directory) lacks an entry.
    #[error(
        "{source_name} has no `{key}` (it has: {present}); a kubeseed CA store holds {expected}. \
         Restore it from the workstation state directory or a backup"
    )]
    MissingSecretKey {
        /// The Secret or directory read.
        source_name: String,
        /// The missing key.
        key: String,
        /// The keys that are there.
        present: String,
        /// The keys expected.
        expected: String,
    },

    /// A Secret entry is not text.
    #[error("{source_name}: `{key}` is not UTF-8 PEM text")]
    NotUtf8 {
        /// The Secret or directory read.
        source_name: String,
        /// The entry.
        key: String,
    },

    /// A certificate to renew was not issued by the CA asked to renew it.
    #[error("{what} was not issued by {ca}; renew it with the CA that signed it ({issuer})")]
    NotIssuedBy {
        /// The certificate.
        what: String,
        /// The CA that was asked.
        ca: String,
        /// The certificate's issuer name.
        issuer: String,
    },

    /// A certificate to renew holds something kubeseed does not issue.
    #[error("{what} cannot be renewed: {reason}")]
    NotRenewable {
        /// The certificate.
        what: String,
        /// What kubeseed cannot carry over.
        reason: String,
    },

    /// A bootstrap token is malformed.
    #[error(
        "invalid bootstrap token: {0}. A token is 6 characters, a dot and 16 characters, all \
         [a-z0-9] (e.g. abcdef.0123456789abcdef)"
    )]
    InvalidBootstrapToken(String),

    /// rcgen refused to make a key or certificate.
    #[error("cannot {doing}: {source}")]
    Rcgen {
        /// What was being made.
        doing: String,
        /// rcgen's error.
        source: rcgen::Error,
    },

    /// A kubeconfig could not be written or read.
    #[error("kubeconfig {what}: {reason}")]
    Kubeconfig {
        /// Which kubeconfig.
        what: String,
        /// What went wrong.
        reason: String,
    },

    /// A file operation in a state directory failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Shorthand for results of this module.
pub type Result<T, E = PkiError> = std::result::Result<T, E>;

pub(crate) fn rcgen_err(doing: impl Into<String>) -> impl FnOnce(rcgen::Error) -> PkiError {
    let doing = doing.into();
    move |source| PkiError::Rcgen { doing, source }
}
