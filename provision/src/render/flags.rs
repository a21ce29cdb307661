//! A component's command-line flags: kubeseed's own, in the order it sets
//! them, then the object's `extra_args` on top.

use std::collections::BTreeMap;

use super::Component;
use super::error::{RenderError, Result};
use super::escape;

/// Extra flags from a member's object, without `--`: name → value.
pub type ExtraArgs = BTreeMap<String, String>;

/// An ordered set of `--name=value` flags.
///
/// An extra argument with the name of one of kubeseed's flags replaces its
/// value in place (so the order, and the golden files, stay stable); new
/// names follow in name order. There is no way to remove one of kubeseed's
/// flags: give it the component's default value instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    component: Component,
    entries: Vec<(String, String)>,
}

impl Flags {
    /// No flags yet.
    pub fn new(component: Component) -> Self {
        Self {
            component,
            entries: Vec::new(),
        }
    }

    /// Sets `--name=value`, replacing an earlier value in place.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.entries.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((name.to_owned(), value)),
        }
    }

    /// Applies the object's extra arguments after checking every name and
    /// value; nothing is applied when one is refused.
    pub fn apply_extra(&mut self, extra: &ExtraArgs) -> Result<()> {
        for (name, value) in extra {
            check_name(self.component, name)?;
            check_value(self.component, name, value)?;
        }
        for (name, value) in extra {
            self.set(name, value.clone());
        }
        Ok(())
    }

    /// The value of `--name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The arguments as the program receives them: `--name=value`.
    pub fn to_args(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(n, v)| format!("--{n}={v}"))
            .collect()
    }

    /// Every argument escaped for `ExecStart=`; refuses a name or value
    /// that cannot be written there.
    pub(crate) fn to_exec_args(&self) -> Result<Vec<String>> {
        self.entries
            .iter()
            .map(|(name, value)| {
                check_name(self.component, name)?;
                check_value(self.component, name, value)?;
                escape::systemd_exec_arg(&format!("--{name}={value}")).map_err(|reason| {
                    RenderError::InvalidFlagValue {
                        component: self.component,
                        flag: name.clone(),
                        reason,
                    }
                })
            })
            .collect()
    }

    /// The component the flags are for.
    pub fn component(&self) -> Component {
        self.component
    }
}

/// Flag names are compared as given, so one spelling is accepted: lower
/// case, digits and `-` (every flag of etcd and the Kubernetes components
/// is spelt so; pflag would also accept `_`, which would then fail to
/// override kubeseed's `-` spelling of the same flag).
fn check_name(component: Component, name: &str) -> Result<()> {
    let bad = |reason: &str| RenderError::InvalidFlagName {
        component,
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.starts_with('-') {
        return Err(bad("it starts with `-`"));
    }
    if name.contains('=') {
        return Err(bad("it contains `=`; put the value in the value"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err(bad("it has characters other than a-z, 0-9 and `-`"));
    }
    Ok(())
}

fn check_value(component: Component, name: &str, value: &str) -> Result<()> {
    escape::systemd_exec_arg(value)
        .map(|_| ())
        .map_err(|reason| RenderError::InvalidFlagValue {
            component,
            flag: name.to_owned(),
            reason,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extra(pairs: &[(&str, &str)]) -> ExtraArgs {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn extra_args_override_in_place_and_append_in_name_order() {
        let mut flags = Flags::new(Component::KubeApiserver);
        flags.set("advertise-address", "10.0.0.1");
        flags.set("audit-log-maxage", "30");
        flags.set("secure-port", "6443");
        flags
            .apply_extra(&extra(&[
                ("profiling", "false"),
                ("audit-log-maxage", "7"),
                ("feature-gates", "A=true"),
            ]))
            .unwrap();
        assert_eq!(
            flags.to_args(),
            [
                "--advertise-address=10.0.0.1",
                "--audit-log-maxage=7",
                "--secure-port=6443",
                "--feature-gates=A=true",
                "--profiling=false",
            ]
        );
        assert_eq!(flags.get("audit-log-maxage"), Some("7"));
    }

    #[test]
    fn bad_names_are_refused_and_nothing_is_applied() {
        for name in ["--v", "", "Foo", "a_b", "a=b", "a b", "v\n"] {
            let mut flags = Flags::new(Component::Etcd);
            flags.set("name", "m1");
            let err = flags
                .apply_extra(&extra(&[("aaa", "1"), (name, "2")]))
                .unwrap_err();
            assert_eq!(err.reason(), "InvalidFlagName", "{name:?}: {err}");
            assert!(err.to_string().starts_with("etcd: "), "{err}");
            assert_eq!(flags.to_args(), ["--name=m1"], "{name:?} applied partly");
        }
    }

    #[test]
    fn values_that_break_a_unit_are_refused_without_echoing_them() {
        let mut flags = Flags::new(Component::Kubelet);
        let err = flags
            .apply_extra(&extra(&[("token", "secret\nExecStartPre=/bin/evil")]))
            .unwrap_err();
        assert_eq!(err.reason(), "InvalidFlagValue");
        let text = err.to_string();
        assert!(
            text.contains("--token") && text.contains("line break"),
            "{text}"
        );
        assert!(!text.contains("evil"), "value echoed: {text}");
        assert!(
            flags
                .apply_extra(&extra(&[("x", "nul\0")]))
                .unwrap_err()
                .to_string()
                .contains("NUL")
        );
    }

    #[test]
    fn values_with_specials_are_escaped_for_exec_start() {
        let mut flags = Flags::new(Component::Kubelet);
        flags
            .apply_extra(&extra(&[("x", "100% $HOME a b")]))
            .unwrap();
        assert_eq!(flags.to_exec_args().unwrap(), ["\"--x=100%% $$HOME a b\""]);
    }
}
