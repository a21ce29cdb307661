//! systemd service units: one shape for every component.

use super::error::{RenderError, Result};
use super::escape;
use super::flags::Flags;
use super::{Component, HEADER};

/// A `.service` unit that runs one program with flags.
#[derive(Debug, Clone)]
pub(crate) struct ServiceUnit {
    pub description: &'static str,
    pub documentation: &'static str,
    /// `Wants=` (also ordered `After=`).
    pub wants: Vec<&'static str>,
    /// `After=` beyond the wanted units.
    pub after: Vec<&'static str>,
    /// More `[Unit]` settings, such as `StartLimitIntervalSec=0`.
    pub unit_settings: Vec<(&'static str, String)>,
    /// `Type=`; `None` leaves systemd's default (`simple`).
    pub service_type: Option<&'static str>,
    /// `ExecStartPre=` lines, verbatim (kubeseed's own constants).
    pub exec_start_pre: Vec<&'static str>,
    /// Absolute path of the program.
    pub program: String,
    /// Its flags, one per line.
    pub flags: Flags,
    /// `[Service]` settings after `ExecStart=`.
    pub service_settings: Vec<(&'static str, String)>,
}

impl ServiceUnit {
    pub fn render(&self) -> Result<String> {
        let component = self.flags.component();
        let setting = |value: &str| {
            escape::systemd_setting(value).map_err(|reason| {
                RenderError::input(component, format!("unit setting {value:?}"), reason)
            })
        };
        let mut out = String::new();
        out.push_str(HEADER);
        out.push_str("\n[Unit]\n");
        out.push_str(&format!("Description={}\n", setting(self.description)?));
        out.push_str(&format!("Documentation={}\n", setting(self.documentation)?));
        let mut after: Vec<&str> = self.wants.clone();
        after.extend(self.after.iter().copied());
        if !self.wants.is_empty() {
            out.push_str(&format!("Wants={}\n", self.wants.join(" ")));
        }
        if !after.is_empty() {
            out.push_str(&format!("After={}\n", after.join(" ")));
        }
        for (key, value) in &self.unit_settings {
            out.push_str(&format!("{key}={}\n", setting(value)?));
        }
        out.push_str("\n[Service]\n");
        if let Some(kind) = self.service_type {
            out.push_str(&format!("Type={kind}\n"));
        }
        for pre in &self.exec_start_pre {
            out.push_str(&format!("ExecStartPre={pre}\n"));
        }
        out.push_str(&exec_start(component, &self.program, &self.flags)?);
        for (key, value) in &self.service_settings {
            out.push_str(&format!("{key}={}\n", setting(value)?));
        }
        out.push_str("\n[Install]\nWantedBy=multi-user.target\n");
        Ok(out)
    }
}

/// `ExecStart=program \` then one flag a line, so a diff shows one changed flag.
fn exec_start(component: Component, program: &str, flags: &Flags) -> Result<String> {
    let program = escape::systemd_exec_arg(program)
        .map_err(|reason| RenderError::input(component, "program path", reason))?;
    let args = flags.to_exec_args()?;
    let mut out = format!("ExecStart={program}");
    for arg in args {
        out.push_str(" \\\n  ");
        out.push_str(&arg);
    }
    out.push('\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_one_flag_a_line() {
        let mut flags = Flags::new(Component::KubeScheduler);
        flags.set("a", "1");
        flags.set("b", "x y");
        let unit = ServiceUnit {
            description: "Test 100%",
            documentation: "https://example.org",
            wants: vec!["network-online.target"],
            after: vec!["containerd.service"],
            unit_settings: vec![("StartLimitIntervalSec", "0".into())],
            service_type: Some("notify"),
            exec_start_pre: vec!["-/sbin/modprobe overlay"],
            program: "/usr/local/bin/x".into(),
            flags,
            service_settings: vec![("Restart", "always".into())],
        }
        .render()
        .unwrap();
        assert_eq!(
            unit,
            format!(
                "{HEADER}\n[Unit]\nDescription=Test 100%%\nDocumentation=https://example.org\n\
                 Wants=network-online.target\nAfter=network-online.target containerd.service\n\
                 StartLimitIntervalSec=0\n\n[Service]\nType=notify\n\
                 ExecStartPre=-/sbin/modprobe overlay\nExecStart=/usr/local/bin/x \\\n  --a=1 \\\n  \
                 \"--b=x y\"\nRestart=always\n\n[Install]\nWantedBy=multi-user.target\n"
            )
        );
    }
}
