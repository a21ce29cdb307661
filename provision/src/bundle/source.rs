//! Where a bundle comes from, and the options of opening it.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use super::digest::Sha256Digest;

/// Where the bundle is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A bundle directory on this machine (the toolchain's output): the
    /// air-gapped default. Files are verified where they are.
    Dir(PathBuf),
    /// The same tree under an `http://` or `https://` base URL. Files are
    /// downloaded into `cache` (see [`super::Bundle`] for its layout) and
    /// verified there; a file already in the cache with the right sha256 is
    /// not fetched again.
    Url {
        /// The base URL; `SHA256SUMS` is at `<base>/SHA256SUMS`.
        base: String,
        /// A directory of the caller's: created owner-only (0700) if missing,
        /// refused if other users may write to it.
        cache: PathBuf,
    },
}

impl Source {
    /// A command-line argument: an `http://` or `https://` URL becomes
    /// [`Source::Url`] with `cache`, anything else a [`Source::Dir`].
    pub fn from_arg(arg: &str, cache: impl Into<PathBuf>) -> Self {
        let lower = arg.get(..8).unwrap_or(arg).to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            Source::Url {
                base: arg.to_string(),
                cache: cache.into(),
            }
        } else {
            Source::Dir(PathBuf::from(arg))
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Dir(dir) => write!(f, "{}", dir.display()),
            Source::Url { base, .. } => f.write_str(base),
        }
    }
}

/// How to open a bundle.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// The sha256 `SHA256SUMS` must have (`--bundle-sha256`). With it, a
    /// manifest already in the cache is used without asking the server.
    pub manifest_sha256: Option<Sha256Digest>,
    /// Files hashed or downloaded at the same time.
    pub concurrency: usize,
    /// Downloads from a [`Source::Url`].
    pub http: HttpOptions,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            manifest_sha256: None,
            concurrency: 4,
            http: HttpOptions::default(),
        }
    }
}

impl OpenOptions {
    /// The defaults, with the manifest pinned to `sha256`.
    pub fn pinned(sha256: Sha256Digest) -> Self {
        Self {
            manifest_sha256: Some(sha256),
            ..Self::default()
        }
    }
}

/// Timeouts, retries and trust for downloads.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Limit on establishing the TCP connection (and TLS).
    pub connect_timeout: Duration,
    /// Limit on waiting for the response headers, and for each piece of the
    /// body: a stalled transfer fails, a slow steady one does not.
    pub idle_timeout: Duration,
    /// Tries per file for network trouble (refused, reset, cut off, 5xx);
    /// a 404 or a wrong hash is never retried.
    pub attempts: u32,
    /// Wait before the second try; doubled for each further one.
    pub retry_delay: Duration,
    /// PEM files of CA certificates trusted for `https://` besides the
    /// system's (a private mirror's CA).
    pub extra_ca_files: Vec<PathBuf>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            attempts: 3,
            retry_delay: Duration::from_millis(500),
            extra_ca_files: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_directories_from_an_argument() {
        assert_eq!(
            Source::from_arg("HTTPS://mirror/b", "/c"),
            Source::Url {
                base: "HTTPS://mirror/b".into(),
                cache: "/c".into()
            }
        );
        assert_eq!(
            Source::from_arg("./out/bundle", "/c"),
            Source::Dir("./out/bundle".into())
        );
        assert_eq!(Source::from_arg("http", "/c"), Source::Dir("http".into()));
    }
}
