//! Fixtures for tests that talk to real programs started by the test itself.
//!
//! - [`toolchain`]: where the real Kubernetes, etcd and Helm programs built by
//!   `e2e/toolchain/build.sh` are.
//! - [`controlplane`]: a real etcd + kube-apiserver on loopback with fresh (or
//!   supplied) certificates, stopped by PID when dropped.
//! - [`pki`]: the PEM material such a control plane runs with.
//!
//! Kinds of test, as the project counts them: the unit tests inside these
//! modules are pure; the tests in `tests/` start real programs.
//!
//! Environment:
//! - `KUBESEED_TOOLCHAIN`: the toolchain's bin directory (the last line
//!   `bash e2e/toolchain/build.sh` prints). Unset: the build script's default
//!   cache location (`$KUBESEED_CACHE`, else `$XDG_CACHE_HOME/kubeseed`, else
//!   `~/.cache/kubeseed`). Without a toolchain a control plane does not start
//!   and says how to build one: tests fail, they never skip silently.
//! - `KUBESEED_TESTENV_KEEP=1`: keep a control plane's temporary directory
//!   (logs, certificates, etcd data) after it stops.
//! - `KUBESEED_UPDATE_GOLDEN=1`: rewrite golden files instead of comparing
//!   them ([`golden`]); refused when `CI` is set.
//!
//! Processes are stopped by PID only, and are started through
//! `setpriv --pdeathsig KILL` so that even a SIGKILLed test process leaves no
//! etcd or kube-apiserver behind (its temporary directory under `$TMPDIR`,
//! named `kubeseed-testenv-*`, does stay in that case).

// Tests may unwrap: a panic is how a test fails.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod controlplane;
pub mod dropbear;
mod flags;
pub mod golden;
pub mod kubeconfig;
pub mod pki;
pub mod ports;
mod process;
pub mod sshd;
pub mod toolchain;

pub use controlplane::{ControlPlane, ControlPlaneBuilder};
pub use flags::SERVICE_ACCOUNT_ISSUER;
pub use pki::{CertKey, ControlPlanePki, FrontProxyPki};
pub use toolchain::Toolchain;
