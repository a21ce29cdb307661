//! The operator's error kinds.
//!
//! Every kind names the reason of the Warning event it raises and the label it
//! counts under in `kubeseed_reconcile_errors_total`, so `kubectl describe` and a
//! dashboard both say which failure it was without reading logs.

use kube::runtime::finalizer;

/// What can go wrong while reconciling one object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the Kubernetes API failed.
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[source] kube::Error),

    /// Adding or removing the finalizer failed, or the wrapped step failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),

    /// The object came without a name; the API server never sends one, so this
    /// is a programming error worth seeing.
    #[error("object has no name")]
    MissingName,

    /// A status document could not be serialised.
    #[error("cannot serialise the status: {0}")]
    Serialize(#[source] serde_json::Error),

    /// Reaching or using a host over SSH failed; its typed reason (e.g.
    /// `HostKeyMismatch`) is kept all the way to the event.
    #[error("{0}")]
    Ssh(#[from] kubeseed_provision::ssh::SshError),

    /// The cluster's ConfigMap or Secret that `bootstrap seed` wrote is
    /// missing or malformed; the message says which and how to restore it.
    #[error("{0}")]
    ClusterMaterial(String),

    /// The bundle on the operator's node failed verification.
    #[error("{0}")]
    Bundle(#[from] kubeseed_provision::bundle::BundleError),

    /// A member's plan could not be composed (certificates, bundle, spec).
    #[error("{message}")]
    Plan {
        /// Stable reason.
        reason: &'static str,
        /// What went wrong and what to do.
        message: String,
    },

    /// A task of the plan failed on the host; the host's journal and the
    /// member's conditions say where it stopped.
    #[error("{0}")]
    Task(#[from] kubeseed_provision::tasks::TaskError),

    /// An etcd membership call failed.
    #[error("{0}")]
    Etcd(#[from] kubeseed_provision::etcd::EtcdError),
}

impl Error {
    /// Reason of the Warning event raised for this error (CamelCase, as
    /// Kubernetes reasons are).
    pub fn event_reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "ApiCallFailed",
            Error::Finalizer(inner) => match inner.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.event_reason()
                }
                finalizer::Error::AddFinalizer(_) | finalizer::Error::RemoveFinalizer(_) => {
                    "FinalizerUpdateFailed"
                }
                _ => "FinalizerFailed",
            },
            Error::MissingName => "InvalidObject",
            Error::Serialize(_) => "StatusInvalid",
            Error::Ssh(e) => e.reason(),
            Error::ClusterMaterial(_) => "ClusterMaterialInvalid",
            Error::Bundle(_) => "BundleInvalid",
            Error::Plan { reason, .. } => reason,
            Error::Task(e) => e.reason,
            Error::Etcd(e) => e.reason(),
        }
    }

    /// Value of the `error` label in `kubeseed_reconcile_errors_total`
    /// (snake_case, bounded cardinality).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube_api",
            Error::Finalizer(inner) => match inner.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.metric_label()
                }
                finalizer::Error::AddFinalizer(_) | finalizer::Error::RemoveFinalizer(_) => {
                    "finalizer_update"
                }
                _ => "finalizer",
            },
            Error::MissingName => "invalid_object",
            Error::Serialize(_) => "status_invalid",
            Error::Ssh(_) => "ssh",
            Error::ClusterMaterial(_) => "cluster_material",
            Error::Bundle(_) => "bundle",
            Error::Plan { .. } => "plan",
            Error::Task(_) => "task",
            Error::Etcd(_) => "etcd",
        }
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Kube(e)
    }
}

impl From<finalizer::Error<Error>> for Error {
    fn from(e: finalizer::Error<Error>) -> Self {
        Error::Finalizer(Box::new(e))
    }
}

/// Result of a reconcile step.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_errors_report_the_inner_reason() {
        let inner = Error::MissingName;
        let wrapped = Error::from(finalizer::Error::ApplyFailed(inner));
        assert_eq!(wrapped.event_reason(), "InvalidObject");
        assert_eq!(wrapped.metric_label(), "invalid_object");
    }

    #[test]
    fn finalizer_patch_failures_have_their_own_reason() {
        let e = Error::from(finalizer::Error::<Error>::UnnamedObject);
        assert_eq!(e.event_reason(), "FinalizerFailed");
        assert_eq!(e.metric_label(), "finalizer");
    }

    #[test]
    fn labels_are_snake_case_and_reasons_camel_case() {
        let all = [
            Error::MissingName,
            Error::Serialize(serde_json::Error::io(std::io::Error::other("x"))),
            Error::Ssh(kubeseed_provision::ssh::SshError::InvalidInput("x".into())),
        ];
        for e in all {
            assert!(
                e.metric_label()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
            );
            assert!(
                e.event_reason()
                    .starts_with(|c: char| c.is_ascii_uppercase())
            );
            assert!(e.event_reason().chars().all(|c| c.is_ascii_alphanumeric()));
        }
    }
}
