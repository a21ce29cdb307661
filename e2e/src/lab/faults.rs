//! The faults a test injects, each in one place: a clean power-off, a crash,
//! a cut cable, a killed process, a stopped service; and booting a host back.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::Lab;
use crate::error::{LabError, Result};
use crate::machine;
use crate::network;
use crate::process::ProcessId;

impl Lab {
    /// Cleanly powers a host off (`systemctl poweroff` inside) and waits for
    /// its machine to end. Its disk and links stay, for [`Lab::start`].
    pub fn power_off(&mut self, host: &str) -> Result<()> {
        let span = tracing::info_span!("host", host = %host);
        let _entered = span.enter();
        if !self.is_running(host) {
            return Ok(());
        }
        // The command may be cut short by its own shutdown; the exit is what counts.
        let _ = self.exec(host, "systemctl poweroff --no-block");
        self.wait_stopped(host, Duration::from_secs(120))
    }

    /// Crashes a host: SIGKILL to its init, the way a power cut looks to its peers.
    pub fn crash(&mut self, host: &str) -> Result<()> {
        let span = tracing::info_span!("host", host = %host);
        let _entered = span.enter();
        let nspawn = self.state.host(host)?.nspawn.filter(ProcessId::is_running);
        let Some(nspawn) = nspawn else {
            return Ok(());
        };
        if let Some(init) = machine::find_init(&nspawn) {
            init.signal(Signal::SIGKILL)?;
        }
        self.wait_stopped(host, Duration::from_secs(30))
    }

    fn wait_stopped(&mut self, host: &str, limit: Duration) -> Result<()> {
        let deadline = Instant::now() + limit;
        while self.is_running(host) {
            if Instant::now() > deadline {
                return Err(LabError::Timeout {
                    what: format!("{host} to stop"),
                    seconds: limit.as_secs_f64(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.children.remove(host);
        self.state.host_mut(host)?.nspawn = None;
        self.state.save()
    }

    /// Boots a host that was powered off or crashed and waits until it answers SSH.
    pub fn start(&mut self, host: &str) -> Result<()> {
        if self.is_running(host) {
            return Ok(());
        }
        self.state.host_mut(host)?.nspawn = None;
        self.boot(host)?;
        self.wait_ready(host)
    }

    /// Cuts the host's cable: its bridge port goes down, its eth0 loses carrier.
    pub fn cut_link(&self, host: &str) -> Result<()> {
        network::set_link(&self.veth(host)?, false)
    }

    /// Plugs the host's cable back in.
    pub fn restore_link(&self, host: &str) -> Result<()> {
        network::set_link(&self.veth(host)?, true)
    }

    /// Whether the host's cable is plugged in.
    pub fn link_is_up(&self, host: &str) -> Result<bool> {
        Ok(network::link_is_up(&self.veth(host)?))
    }

    fn veth(&self, host: &str) -> Result<String> {
        self.state
            .host(host)?
            .veth
            .clone()
            .ok_or_else(|| LabError::HostDown(host.to_owned()))
    }

    /// SIGKILLs the one process on `host` whose command name (`/proc/PID/comm`,
    /// at most 15 bytes) is `comm`, by its PID: a crash of that program, no
    /// graceful shutdown. Returns the PID. More or fewer than one match is an
    /// error, so a test never kills something it did not mean to.
    pub fn kill_process(&self, host: &str, comm: &str) -> Result<u32> {
        let listing = self.exec_ok(
            host,
            &format!(
                "for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = '{comm}' ] && echo ${{p#/proc/}}; done; true"
            ),
        )?;
        let pids: Vec<u32> = listing
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        let [pid] = pids[..] else {
            return Err(LabError::Config(format!(
                "expected one process named {comm} on {host}, found {pids:?}"
            )));
        };
        self.exec_ok(host, &format!("kill -9 {pid}"))?;
        tracing::info!(host, comm, pid, "process killed");
        Ok(pid)
    }

    /// Stops systemd units on `host` cleanly (`systemctl stop`), e.g. one
    /// etcd member while its host stays up.
    pub fn stop_services(&self, host: &str, units: &[&str]) -> Result<()> {
        self.exec_ok(host, &format!("systemctl stop {}", units.join(" ")))?;
        tracing::info!(host, ?units, "services stopped");
        Ok(())
    }
}
