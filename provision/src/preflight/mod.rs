//! Preflight: is this host fit to become a master, worker or etcd member,
//! and what will kubeseed have to adapt to?
//!
//! Two halves, so the judging is pure and tested without any host:
//!
//! 1. [`gather`] runs ONE read-only POSIX `sh` script ([`SCRIPT`]) as root
//!    over the [`Host`] interface and parses its output into [`Facts`]: one
//!    round trip per host. The script needs coreutils-level tools only and
//!    falls back to /proc and /sys where an optional program (`ss`, `ip`,
//!    `nproc`, `stat`) is missing. A login whose `sudo -n` wants a password
//!    is not an error: the facts say so and [`evaluate`] fails the
//!    `privileges` check with the fix.
//! 2. [`evaluate`] judges the facts against [`Expectations`] (the role's
//!    ports and minimums, the cluster the host should belong to, the peers
//!    it must not duplicate) and returns a [`Report`]: one [`Check`] per
//!    concern with a [`Status`], what was observed, the exact fix for a
//!    person, and what kubeseed will do itself (sysctls and modules it sets
//!    where the host allows).
//!
//! [`Facts::host_profile`] turns the facts into the
//! [`crate::cluster::HostProfile`] the renderers adapt to (cgroup version
//! and driver, writable kernel tunables, OOM score adjustment).
//!
//! ```no_run
//! # async fn demo(session: &kubeseed_provision::ssh::Session) -> Result<(), Box<dyn std::error::Error>> {
//! use kubeseed_provision::preflight::{self, Expectations};
//! let facts = preflight::gather(session).await?;
//! let report = preflight::evaluate(&facts, &Expectations::control_plane());
//! print!("{}", report.table());
//! if !report.is_ok() {
//!     return Err(report.summary().into());
//! }
//! let profile = facts.host_profile();
//! # Ok(()) }
//! ```
//!
//! Existing state: /etc/kubernetes, /var/lib/etcd and /var/lib/kubeseed
//! (and the ports of etcd and the control plane) that belong to THIS
//! cluster — its cluster-id in /var/lib/kubeseed/cluster-id, its CAs'
//! [`certificate_fingerprint`]s — pass as a resumed run; anything else
//! fails with "reset it or pick another host".

mod error;
mod evaluate;
mod expect;
mod facts;
mod listeners;
mod load_balancer;
mod ownership;
mod packages;
mod parse;
mod report;
#[cfg(test)]
mod tests;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::Instrument as _;

use crate::host::Host;
use crate::ssh::{ExecOptions, SshError};

pub use error::PreflightError;
pub use evaluate::evaluate;
pub use expect::{
    APISERVER_PORT, CONTROL_PLANE_PORTS, CONTROLLER_MANAGER_PORT, ClusterIdentity, Expectations,
    KUBELET_PORT, PeerIdentity, SCHEDULER_PORT, component_for_port,
};
pub use facts::{
    Access, CAP_SYS_MODULE, CAP_SYS_RESOURCE, Capabilities, CgroupHierarchy, Cgroups, ClockSample,
    ExistingState, Facts, Init, KUBELET_TUNABLES, Kernel, Link, Listener, Module, OsFamily,
    OsRelease, Process, Swap, Sysctl, SystemFacts,
};
pub use load_balancer::{
    LinkAddress, LoadBalancerExpectations, LoadBalancerFacts, LoadBalancerHostProfile,
    evaluate_load_balancer, gather_load_balancer, load_balancer_script, parse_load_balancer,
};
pub use ownership::{Ownership, ownership};
pub use packages::{OPTIONAL_PROGRAMS, REQUIRED_PROGRAMS, install_command};
pub use parse::certificate_fingerprint;
pub use report::{Check, Report, Status};

/// The script [`gather`] runs (as root, read-only). Public so a person can
/// run it by hand when the output cannot be read.
pub const SCRIPT: &str = include_str!("gather.sh");

/// How long the script may take (it reads /proc; seconds even on a busy host).
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(60);

/// Gathers the facts of `host` in one round trip (see the module docs).
pub async fn gather(host: &dyn Host) -> Result<Facts, PreflightError> {
    let span = tracing::info_span!("preflight", host = %host.name());
    gather_in_span(host).instrument(span).await
}

async fn gather_in_span(host: &dyn Host) -> Result<Facts, PreflightError> {
    let name = host.name().to_owned();
    let before = now_ns();
    let result = host
        .exec(SCRIPT, ExecOptions::sudo().with_timeout(GATHER_TIMEOUT))
        .await;
    let after = now_ns();
    let out = match result {
        Ok(out) => out,
        Err(SshError::SudoNeedsPassword { user, .. }) => {
            tracing::warn!(host = %name, %user, "sudo wants a password: preflight cannot run as root");
            return Ok(Facts {
                host: name,
                access: Access::SudoNeedsPassword { user },
                system: None,
            });
        }
        // The SSH engine's wording for a non-root login without sudo.
        Err(e @ SshError::Remote { .. }) if e.to_string().contains("sudo is not installed") => {
            tracing::warn!(host = %name, error = %e, "no sudo: preflight cannot run as root");
            return Ok(Facts {
                host: name,
                access: Access::SudoMissing {
                    message: e.to_string(),
                },
                system: None,
            });
        }
        Err(e) => return Err(e.into()),
    };
    if !out.status.success() {
        let stderr = out.stderr_text();
        let stderr = stderr.trim();
        let start = stderr.char_indices().rev().nth(1999).map_or(0, |(i, _)| i);
        return Err(PreflightError::ScriptFailed {
            host: name,
            status: out.status,
            stderr: stderr[start..].to_owned(),
        });
    }
    let stdout = out.stdout_text();
    let system =
        parse::parse(&stdout, before, after).map_err(|e| PreflightError::UnexpectedOutput {
            host: name.clone(),
            reason: e.0,
        })?;
    let (uid, user) = parse::parse_identity(&stdout);
    let access = match uid {
        Some(0) => Access::Root {
            sudo_user: user.filter(|u| u != "root"),
        },
        Some(uid) => Access::NotRoot { uid },
        None => {
            return Err(PreflightError::UnexpectedOutput {
                host: name,
                reason: "no uid in the output".into(),
            });
        }
    };
    let system = matches!(access, Access::Root { .. }).then_some(system);
    tracing::debug!(elapsed_ms = (after - before) / 1_000_000, "facts gathered");
    Ok(Facts {
        host: name,
        access,
        system,
    })
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
