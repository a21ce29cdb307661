//! File transfer: streaming, atomic, idempotent.
//!
//! An upload first asks the host for the size, mode and owner of the
//! destination, creating its missing parent directories in the same script.
//! Same size: both sides are hashed, and for the same sha256 nothing is sent
//! (mode and owner are fixed if they differ). Otherwise the bytes stream into
//! a new hidden temporary file beside the destination, whose size is checked
//! before it gets its mode and owner and is renamed over the destination, so
//! readers never see a half written file. The content itself is protected in
//! transit by the SSH MAC, which is why the received file is not hashed
//! again.
//!
//! Two ways to move the bytes ([`TransferMethod`]): a plain exec channel
//! (`dd` on the host, under `sudo -n` for non-root users), or SFTP (the
//! `sftp` subsystem for root, `sudo -n sftp-server` otherwise). Both stream
//! in constant memory. Measured on loopback, the exec channel is faster and
//! is the default; see `benches/transfer.rs`.

mod download;
mod hashing;
mod read;
mod remote_file;
mod sftp_session;
mod spec;
mod upload;
mod upload_exec;
mod upload_sftp;

pub use spec::{DownloadOutcome, FileSpec, TransferMethod, UploadOutcome};

/// Read buffer for local files: large enough to keep the channel busy.
const CHUNK: usize = 1024 * 1024;
