//! `VERSIONS`: what the bundle's artifacts are, as `KEY=VALUE` lines.
//!
//! Blank lines and `#` comments are allowed, a value may be wrapped in one
//! pair of single or double quotes (so the file can also be `source`d by a
//! shell), keys are `[A-Z0-9_]+` and appear once. Every key in
//! [`Versions::REQUIRED`] must be present; others are kept and can be looked
//! up with [`Versions::get`].

use std::collections::BTreeMap;

use super::manifest::LineError;

/// The file's name in the bundle.
pub const VERSIONS: &str = "VERSIONS";

/// The parsed `VERSIONS` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versions {
    values: BTreeMap<String, String>,
}

macro_rules! accessors {
    ($($(#[$doc:meta])* $name:ident => $key:literal,)*) => {
        impl Versions {
            /// The keys a bundle must define.
            pub const REQUIRED: &'static [&'static str] = &[$($key),*];
            $(
                $(#[$doc])*
                pub fn $name(&self) -> &str {
                    self.values.get($key).map(String::as_str).unwrap_or_default()
                }
            )*
        }
    };
}

accessors! {
    /// `KUBERNETES_VERSION`, e.g. `v1.35.8`.
    kubernetes => "KUBERNETES_VERSION",
    /// `ETCD_VERSION`.
    etcd => "ETCD_VERSION",
    /// `CONTAINERD_VERSION`.
    containerd => "CONTAINERD_VERSION",
    /// `RUNC_VERSION`.
    runc => "RUNC_VERSION",
    /// `CNI_PLUGINS_VERSION`.
    cni_plugins => "CNI_PLUGINS_VERSION",
    /// `HELM_VERSION`.
    helm => "HELM_VERSION",
    /// `PAUSE_IMAGE`: the reference the pause image archive is tagged with.
    pause_image => "PAUSE_IMAGE",
    /// `COREDNS_IMAGE`: the reference the CoreDNS image archive is tagged with.
    coredns_image => "COREDNS_IMAGE",
    /// `OPERATOR_IMAGE`: the reference the operator image archive is tagged with.
    operator_image => "OPERATOR_IMAGE",
    /// `OPERATOR_VERSION`.
    operator_version => "OPERATOR_VERSION",
}

impl Versions {
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, LineError> {
        let text = std::str::from_utf8(bytes).map_err(|e| LineError {
            line: bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1,
            problem: "the line is not valid UTF-8".into(),
        })?;
        let mut values = BTreeMap::new();
        let mut lines_of = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |problem: String| LineError { line, problem };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (key, value) = trimmed
                .split_once('=')
                .ok_or_else(|| err(format!("expected KEY=VALUE, found {trimmed:?}")))?;
            let key_ok = !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !key_ok {
                return Err(err(format!("{key:?} is not a key ([A-Z0-9_]+)")));
            }
            let value =
                unquote(value).ok_or_else(|| err(format!("unbalanced quotes in {value:?}")))?;
            if let Some(first) = lines_of.insert(key.to_string(), line) {
                return Err(err(format!("{key} is set twice (first on line {first})")));
            }
            values.insert(key.to_string(), value.to_string());
        }
        let missing: Vec<_> = Self::REQUIRED
            .iter()
            .filter(|k| values.get(**k).is_none_or(String::is_empty))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(LineError {
                line: text.lines().count(),
                problem: format!("no value for {}", missing.join(", ")),
            });
        }
        Ok(Self { values })
    }

    /// The value of any key in the file.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    /// Every key and value, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

fn unquote(value: &str) -> Option<&str> {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q) {
            return inner.strip_suffix(q).filter(|i| !i.contains(q));
        }
    }
    (!value.contains(['"', '\''])).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
# written by e2e/toolchain/bundle.sh
KUBERNETES_VERSION=v1.35.8
ETCD_VERSION=v3.6.5
CONTAINERD_VERSION=v2.1.4
RUNC_VERSION=v1.3.0
CNI_PLUGINS_VERSION=v1.8.0

HELM_VERSION=v3.19.0
PAUSE_IMAGE=\"registry.k8s.io/pause:3.10.1\"
COREDNS_IMAGE=localhost/kubeseed/coredns:1.15.0
OPERATOR_IMAGE='kubeseed.io/operator:0.1.0'
OPERATOR_VERSION=0.1.0
EXTRA_THING=x
";

    #[test]
    fn parses_every_required_key_and_extras() {
        let v = Versions::parse(GOOD.as_bytes()).unwrap();
        assert_eq!(v.kubernetes(), "v1.35.8");
        assert_eq!(v.etcd(), "v3.6.5");
        assert_eq!(v.pause_image(), "registry.k8s.io/pause:3.10.1");
        assert_eq!(v.operator_image(), "kubeseed.io/operator:0.1.0");
        assert_eq!(v.get("EXTRA_THING"), Some("x"));
        assert_eq!(v.get("NOPE"), None);
        assert_eq!(v.iter().count(), 11);
    }

    #[test]
    fn refuses_a_missing_key_naming_it() {
        let text = GOOD.replace("RUNC_VERSION=v1.3.0\n", "");
        let e = Versions::parse(text.as_bytes()).unwrap_err();
        assert!(e.problem.contains("RUNC_VERSION"), "{e:?}");
    }

    #[test]
    fn refuses_malformed_lines_with_their_number() {
        for (text, line, words) in [
            (format!("{GOOD}NOEQUALS\n"), 14, "KEY=VALUE"),
            (format!("{GOOD}lower=x\n"), 14, "not a key"),
            (format!("{GOOD}ETCD_VERSION=v3\n"), 14, "first on line 3"),
            (format!("{GOOD}Q=\"x\n"), 14, "unbalanced"),
        ] {
            let e = Versions::parse(text.as_bytes()).unwrap_err();
            assert_eq!((e.line, e.problem.contains(words)), (line, true), "{e:?}");
        }
    }
}
