//! The errors of opening and verifying a bundle: each says what was wrong
//! and what to do, and [`BundleError::reason`] gives a stable word for
//! conditions, events and metric labels.

use std::path::PathBuf;
use std::time::Duration;

use super::digest::Sha256Digest;

const REBUILD: &str = "rebuild it with `bash e2e/toolchain/bundle.sh` (or copy it again)";

/// Everything that can go wrong with a bundle.
///
/// `location` is where a file was looked for: a local path or a URL.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The source is neither a usable directory nor an http(s) URL.
    #[error("bundle source {source_name:?}: {problem}")]
    InvalidSource {
        /// The source as given.
        source_name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// There is no `SHA256SUMS` where the bundle should be.
    #[error(
        "no bundle manifest (SHA256SUMS) at {location}: {detail}; point at a bundle directory or \
         base URL, or build one with `bash e2e/toolchain/bundle.sh`"
    )]
    ManifestMissing {
        /// Where it was looked for.
        location: String,
        /// "no such file", "the server answered 404", ...
        detail: String,
    },
    /// A line of `SHA256SUMS` was refused.
    #[error("{location} line {line}: {problem}; the manifest is damaged: {REBUILD}")]
    ManifestMalformed {
        /// The manifest.
        location: String,
        /// 1-based line number.
        line: usize,
        /// What was wrong with the line.
        problem: String,
    },
    /// `SHA256SUMS` is not the one the caller pinned.
    #[error(
        "{location} has sha256 {actual}, but {expected} was pinned (--bundle-sha256); this is a \
         different or altered bundle: use the bundle the digest came from, or pin the new \
         digest if the change is intended"
    )]
    ManifestDigestMismatch {
        /// The manifest.
        location: String,
        /// The pinned digest.
        expected: Sha256Digest,
        /// The digest of the manifest found.
        actual: Sha256Digest,
    },
    /// A line of `VERSIONS` was refused, or a required key is missing.
    #[error("{location} line {line}: {problem}; {REBUILD}")]
    VersionsMalformed {
        /// The file.
        location: String,
        /// 1-based line number (the last line for a missing key).
        line: usize,
        /// What was wrong.
        problem: String,
    },
    /// `SHA256SUMS` or `VERSIONS` is far larger than such a file can be.
    #[error(
        "{location} is larger than {limit} bytes, far more than a bundle's {name} can be; \
         is the source really a bundle?"
    )]
    FileTooLarge {
        /// The file.
        location: String,
        /// Its name in the bundle.
        name: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A path the caller needs is not in the manifest.
    #[error(
        "{path}: not listed in the bundle's SHA256SUMS ({manifest}); this bundle does not carry \
         it: use a bundle built for this version of kubeseed (`bash e2e/toolchain/bundle.sh`)"
    )]
    ArtifactNotInManifest {
        /// The relative path asked for.
        path: String,
        /// The manifest.
        manifest: String,
    },
    /// A file listed in the manifest is not in the directory or on the server.
    #[error(
        "{path}: listed in the bundle's SHA256SUMS but missing at {location} ({detail}); the \
         bundle is incomplete: {REBUILD}"
    )]
    ArtifactMissing {
        /// The relative path.
        path: String,
        /// Where it was looked for.
        location: String,
        /// "no such file", "the server answered 404", ...
        detail: String,
    },
    /// A file's sha256 is not the one the manifest lists. Nothing of the
    /// request was returned.
    #[error(
        "{path}: sha256 is {actual}, but the bundle's SHA256SUMS says {expected} ({location}); \
         the file is corrupt or was changed after the bundle was built: {REBUILD}, and install \
         nothing from it until `sha256sum -c SHA256SUMS` passes in its directory"
    )]
    ArtifactHashMismatch {
        /// The relative path.
        path: String,
        /// Where the bytes came from.
        location: String,
        /// The manifest's digest.
        expected: Sha256Digest,
        /// The digest of the bytes found.
        actual: Sha256Digest,
    },
    /// The server answered something other than 200.
    #[error("the server answered {status} for {url}; {}", status_hint(*.status))]
    HttpStatus {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// No connection could be made (refused, no route, DNS, TLS).
    #[error(
        "cannot reach {url}: {detail}; check the address and that the server is running, or use \
         a local bundle directory"
    )]
    Unreachable {
        /// The URL requested.
        url: String,
        /// The cause, with its chain.
        detail: String,
    },
    /// The server stopped answering.
    #[error(
        "{url}: nothing received for {after:?} while {waiting_for}; the server or the network \
         stalled: try again"
    )]
    Timeout {
        /// The URL requested.
        url: String,
        /// "the response headers", "the body".
        waiting_for: &'static str,
        /// The limit.
        after: Duration,
    },
    /// The connection ended before the whole body arrived.
    #[error(
        "{url}: the download was cut off after {received} of {expected} bytes (Content-Length): \
         {detail}; try again"
    )]
    Truncated {
        /// The URL requested.
        url: String,
        /// The announced length, when there was one.
        expected: String,
        /// Bytes received.
        received: u64,
        /// What the connection reported.
        detail: String,
    },
    /// The download cache could not be used.
    #[error("bundle cache {}: {action}: {source}; give a cache directory you own", .path.display())]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// A local file of the bundle could not be read.
    #[error("{}: {action}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// Several artifacts were refused; each is listed. Nothing was returned.
    #[error("{} artifacts of the bundle were refused, nothing was used:{}", .problems.len(), list(.problems))]
    Rejected {
        /// One error per refused artifact, in manifest order.
        problems: Vec<BundleError>,
    },
}

fn status_hint(status: u16) -> &'static str {
    match status {
        404 => "the bundle there is incomplete or the base URL is wrong",
        300..=399 => "redirects are not followed: give the final base URL",
        401 | 403 => "the server refuses access: serve the bundle without authentication",
        429 | 500..=599 => "the server is in trouble: try again later",
        _ => "serve the bundle's files as they are, with status 200",
    }
}

fn list(problems: &[BundleError]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

impl BundleError {
    /// A short stable name for conditions, events and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            BundleError::InvalidSource { .. } => "BundleSourceInvalid",
            BundleError::ManifestMissing { .. } => "BundleManifestMissing",
            BundleError::ManifestMalformed { .. } => "BundleManifestMalformed",
            BundleError::ManifestDigestMismatch { .. } => "BundleManifestMismatch",
            BundleError::VersionsMalformed { .. } => "BundleVersionsMalformed",
            BundleError::FileTooLarge { .. } => "BundleFileTooLarge",
            BundleError::ArtifactNotInManifest { .. } => "ArtifactNotInManifest",
            BundleError::ArtifactMissing { .. } => "ArtifactMissing",
            BundleError::ArtifactHashMismatch { .. } => "ArtifactHashMismatch",
            BundleError::HttpStatus { .. } => "BundleHttpError",
            BundleError::Unreachable { .. } => "BundleUnreachable",
            BundleError::Timeout { .. } => "BundleTimeout",
            BundleError::Truncated { .. } => "BundleTransferTruncated",
            BundleError::Cache { .. } => "BundleCacheError",
            BundleError::Io { .. } => "BundleIo",
            BundleError::Rejected { .. } => "ArtifactsRejected",
        }
    }

    /// Whether trying again later could help (network trouble), as opposed
    /// to a bad or incomplete bundle that a retry would only find again.
    /// [`BundleError::Rejected`] is transient only if all its problems are.
    pub fn is_transient(&self) -> bool {
        match self {
            BundleError::Unreachable { .. }
            | BundleError::Timeout { .. }
            | BundleError::Truncated { .. } => true,
            BundleError::HttpStatus { status, .. } => *status == 429 || *status >= 500,
            BundleError::Rejected { problems } => problems.iter().all(Self::is_transient),
            _ => false,
        }
    }

    /// The artifacts this error is about, one per problem: for
    /// [`BundleError::Rejected`] its list, otherwise this error alone.
    pub fn problems(&self) -> &[BundleError] {
        match self {
            BundleError::Rejected { problems } => problems,
            other => std::slice::from_ref(other),
        }
    }

    /// The relative path of the artifact concerned, when there is one.
    pub fn artifact(&self) -> Option<&str> {
        match self {
            BundleError::ArtifactNotInManifest { path, .. }
            | BundleError::ArtifactMissing { path, .. }
            | BundleError::ArtifactHashMismatch { path, .. } => Some(path),
            _ => None,
        }
    }

    /// One error for a list of problems: the problem itself when there is
    /// one, [`BundleError::Rejected`] for several.
    pub(crate) fn from_problems(mut problems: Vec<BundleError>) -> Option<BundleError> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(BundleError::Rejected { problems }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mismatch(path: &str) -> BundleError {
        BundleError::ArtifactHashMismatch {
            path: path.into(),
            location: format!("/b/{path}"),
            expected: Sha256Digest::of(b"a"),
            actual: Sha256Digest::of(b"b"),
        }
    }

    #[test]
    fn a_mismatch_names_the_file_both_digests_and_what_to_do() {
        let e = mismatch("bin/etcd");
        let msg = e.to_string();
        assert!(msg.starts_with("bin/etcd: sha256 is "), "{msg}");
        assert!(msg.contains(&Sha256Digest::of(b"a").to_string()));
        assert!(msg.contains(&Sha256Digest::of(b"b").to_string()));
        assert!(msg.contains("bash e2e/toolchain/bundle.sh"));
        assert_eq!(
            (e.reason(), e.artifact()),
            ("ArtifactHashMismatch", Some("bin/etcd"))
        );
        assert!(!e.is_transient());
    }

    #[test]
    fn several_problems_are_all_listed() {
        let e = BundleError::from_problems(vec![mismatch("bin/a"), mismatch("bin/b")]).unwrap();
        assert_eq!(e.reason(), "ArtifactsRejected");
        let msg = e.to_string();
        assert!(
            msg.starts_with("2 artifacts of the bundle were refused"),
            "{msg}"
        );
        assert!(msg.contains("\n  - bin/a: sha256") && msg.contains("\n  - bin/b: sha256"));
        assert_eq!(e.problems().len(), 2);
        let one = BundleError::from_problems(vec![mismatch("bin/a")]).unwrap();
        assert_eq!(
            (one.reason(), one.problems().len()),
            ("ArtifactHashMismatch", 1)
        );
        assert!(BundleError::from_problems(vec![]).is_none());
    }

    #[test]
    fn status_errors_say_what_the_server_answered() {
        let e = BundleError::HttpStatus {
            url: "http://127.0.0.1:1/b/bin/etcd".into(),
            status: 404,
        };
        assert!(
            e.to_string()
                .starts_with("the server answered 404 for http://127.0.0.1:1/b/bin/etcd")
        );
        assert!(!e.is_transient());
        let e = BundleError::HttpStatus {
            url: "u".into(),
            status: 503,
        };
        assert!(e.is_transient());
    }
}
