//! kubeseed's lab: real Linux hosts on one machine, for the end-to-end suite
//! and for people who want to try kubeseed.
//!
//! Each host is a systemd-nspawn machine booted (`--boot`: real systemd,
//! sshd, containerd) from an overlay of one debootstrap'd Debian tree that is
//! built once and cached ([`rootfs`]). Each has its own network namespace
//! joined by a veth pair to a bridge on a private /24 that the lab owns; the
//! runner has `.1` on that bridge, hosts have `.11`, `.12`... and no default
//! route, so traffic stays between the runner and the lab's hosts.
//!
//! Every namespace, link, mount, cgroup and process the lab makes is written
//! to a state file under /run/kubeseed-lab/NAME/ before or as it is made,
//! and [`Lab::down`] removes exactly those: processes are ended by PID (with
//! their start time checked), never by name. A state file listing anything
//! but the names and directories the lab derives from its own name is
//! refused as a whole, so an edited file cannot make `down` delete a link,
//! namespace, mount or directory that is not the lab's.
//!
//! Where the runner's firewall drops forwarded traffic (Docker sets
//! `iptables -P FORWARD DROP`) and bridged frames pass iptables
//! (br_netfilter), the lab inserts one rule accepting traffic in and out of
//! its own bridge, and `down` removes it; the runner's policy is left alone.
//!
//! The API is blocking: every step is an external program (ip, mount,
//! systemd-nspawn, nsenter) or a short poll. Async tests call it from
//! `tokio::task::spawn_blocking`.
//!
//! ```no_run
//! use kubeseed_e2e::{Lab, LabConfig};
//! let lab = Lab::up(LabConfig::new(3)?)?;
//! for host in lab.hosts() {
//!     println!("{} {} {}", host.name, host.address, host.host_key);
//! }
//! println!("{}", lab.exec_ok("host1", "hostname")?);
//! lab.down()?;
//! # Ok::<(), kubeseed_e2e::LabError>(())
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod cgroup;
mod cmd;
pub mod config;
pub mod error;
mod hostfs;
mod kernel;
mod lab;
mod machine;
mod network;
pub mod prereq;
mod process;
pub mod report;
pub mod rootfs;
mod state;

pub use config::{LabConfig, Subnet};
pub use error::{LabError, Result};
pub use lab::{DownReport, Footprint, HostExec, Lab, LabHost, UpReport, ssh_banner};
pub use network::forward_rule;
pub use process::ProcessId;
pub use state::{RUN_DIR, data_root, state_path};
