//! Processes the lab started, named by PID *and* start time so a recycled PID
//! is never mistaken for ours (and never signalled).

use std::fs;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};

/// One process the lab started (or found as the init of a machine it started).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    /// The PID in the runner's PID namespace.
    pub pid: u32,
    /// Start time in clock ticks since boot (field 22 of /proc/PID/stat).
    pub start_time: u64,
}

/// What /proc says about a PID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProcState {
    Gone,
    Zombie,
    Running,
}

impl ProcessId {
    /// Identifies a live PID now.
    pub fn of(pid: u32) -> Result<Self> {
        let (_, start_time) = stat(pid).ok_or_else(|| LabError::State {
            path: format!("/proc/{pid}/stat").into(),
            message: "process vanished while the lab was recording it".into(),
        })?;
        Ok(ProcessId { pid, start_time })
    }

    fn state(&self) -> ProcState {
        match stat(self.pid) {
            Some((state, start)) if start == self.start_time => {
                if state == 'Z' || state == 'X' {
                    ProcState::Zombie
                } else {
                    ProcState::Running
                }
            }
            _ => ProcState::Gone,
        }
    }

    /// Whether this very process still runs (a zombie does not run).
    pub fn is_running(&self) -> bool {
        self.state() == ProcState::Running
    }

    /// Whether anything of it is left in the process table, zombie included.
    pub fn exists(&self) -> bool {
        self.state() != ProcState::Gone
    }

    /// Sends `signal`, but only if the PID still names this same process.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        if !self.is_running() {
            return Ok(());
        }
        let pid = i32::try_from(self.pid).map_err(|_| LabError::State {
            path: "/proc".into(),
            message: format!("PID {} out of range", self.pid),
        })?;
        match kill(Pid::from_raw(pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(errno) => Err(LabError::io(
                "signal",
                format!("/proc/{}", self.pid),
                std::io::Error::from(errno),
            )),
        }
    }

    /// The direct children of this process.
    pub fn children(&self) -> Vec<u32> {
        let mut children = Vec::new();
        let Ok(tasks) = fs::read_dir(format!("/proc/{}/task", self.pid)) else {
            return children;
        };
        for task in tasks.flatten() {
            if let Ok(text) = fs::read_to_string(task.path().join("children")) {
                children.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<u32>().ok()),
                );
            }
        }
        children
    }
}

/// State letter and start time of a PID, if it exists.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields resume after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 overall is the 20th after the command name.
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// The PID namespace of a process, to tell a machine's init from nspawn's helpers.
pub fn pid_namespace(pid: u32) -> Option<std::path::PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_itself_and_rejects_a_wrong_start_time() {
        let me = ProcessId::of(std::process::id()).unwrap();
        assert!(me.is_running());
        let other = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!other.is_running());
        assert!(!other.exists());
    }
}
