//! The load balancer's systemd units: programs with short option lists
//! (`-f CONFIG`), so not the components' one-flag-a-line `ServiceUnit`.
//! Every argument goes through
//! [`escape::systemd_exec_arg`]; only kubeseed's own constant lines
//! (`/bin/kill -USR2 $MAINPID`) are written as they are.

use crate::render::error::{RenderError, Result};
use crate::render::{HEADER, escape};

use super::COMPONENT;

/// A `.service` unit of the load balancer.
#[derive(Debug, Clone)]
pub(super) struct Unit {
    pub description: &'static str,
    pub documentation: &'static [&'static str],
    /// `After=` beyond `network-online.target` (which is also wanted).
    pub after: Vec<&'static str>,
    /// `[Service]` settings in order; values are written as they are.
    pub service: Vec<(&'static str, String)>,
}

impl Unit {
    pub fn render(&self) -> String {
        let mut out = format!("{HEADER}\n[Unit]\nDescription={}\n", self.description);
        for doc in self.documentation {
            out.push_str(&format!("Documentation={doc}\n"));
        }
        let mut after = vec!["network-online.target"];
        after.extend(self.after.iter().copied());
        out.push_str("Wants=network-online.target\n");
        out.push_str(&format!("After={}\n", after.join(" ")));
        out.push_str("\n[Service]\n");
        for (key, value) in &self.service {
            out.push_str(&format!("{key}={value}\n"));
        }
        out.push_str("\n[Install]\nWantedBy=multi-user.target\n");
        out
    }
}

/// `program args...` for an `Exec*=` line, each escaped for systemd.
pub(super) fn exec(program: &str, args: &[&str]) -> Result<String> {
    let word = |arg: &str| {
        escape::systemd_exec_arg(arg).map_err(|reason| {
            RenderError::input(COMPONENT, format!("unit argument {arg:?}"), reason)
        })
    };
    let mut line = word(program)?;
    for arg in args {
        line.push(' ');
        line.push_str(&word(arg)?);
    }
    Ok(line)
}
