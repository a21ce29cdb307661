//! The SSH engine: everything kubeseed does to a host goes through here,
//! from the workstation (`bootstrap`) and from inside the cluster (the
//! operator).
//!
//! ```no_run
//! # async fn demo() -> Result<(), kubeseed_provision::ssh::SshError> {
//! use kubeseed_provision::ssh::*;
//! let target = SshTarget::new(
//!     "10.213.0.12",
//!     "admin",
//!     Auth::key_file("/home/me/.ssh/id_ed25519"),
//!     HostKeyPolicy::Pinned(HostKey::parse("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ")?),
//! );
//! let (session, _keys) = Session::connect(&target, &Limits::default()).await?;
//! let out = session.run("systemctl is-active etcd", ExecOptions::sudo()).await?;
//! session
//!     .write_file(b"[Unit]\n", "/etc/systemd/system/etcd.service", &FileSpec::mode(0o644))
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! - Host keys are always verified under a policy the caller picks
//!   ([`HostKeyPolicy`]): pinned, known_hosts (with `@revoked`), or
//!   first-seen (every hop's key returned in [`ConnectionKeys`] for the
//!   caller to record). There is no accept-any mode.
//! - Key exchange offers ML-KEM and curve25519 first, then the NIST curves
//!   (`ecdh-sha2-nistp256/384/521`, all a FIPS-restricted OpenSSH allows),
//!   then the finite-field Diffie-Hellman groups.
//! - One [`Session`] is one connection; every exec and transfer is a channel
//!   on it. [`Limits`] caps operations per host and overall, and sets the
//!   connect retries (backoff with jitter) and transport tuning.
//! - Non-root users do privileged work through `sudo -n`; a sudo that wants
//!   a password is [`SshError::SudoNeedsPassword`].
//! - Transfers stream in constant memory, create missing parent
//!   directories, land atomically (exclusive temporary name, then rename)
//!   and are skipped when the sha256 already matches. Small files are read
//!   back whole ([`Session::read_file`]); files and trees are removed with
//!   guards against system directories ([`Session::remove_tree`]).
//! - Every error names the host and the step ([`SshError`], [`Step`]).

mod auth;
mod error;
mod exec;
mod handler;
mod helper;
mod host_key;
mod known_hosts;
mod limits;
mod remove;
mod session;
pub mod shell;
mod target;
mod transfer;

pub use auth::{Auth, SSH_AUTH_SECRET_KEY};
pub use error::{SshError, Step};
pub use exec::{ExecOptions, ExecOutput, ExitStatus, OutputCallback, OutputStream};
pub use host_key::{ConnectionKeys, HostKey, HostKeyPolicy, ObservedHostKey};
pub use limits::{DEFAULT_GLOBAL, DEFAULT_PER_HOST, Limits};
pub use session::Session;
pub use target::SshTarget;
pub use tokio_util::sync::CancellationToken;
pub use transfer::{DownloadOutcome, FileSpec, TransferMethod, UploadOutcome};
