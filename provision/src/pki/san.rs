//! Subject alternative names and the names kubeseed puts in certificates.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use rcgen::SanType;

use super::error::{PkiError, Result};

/// One subject alternative name: an IP address or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectAltName {
    /// A DNS name, stored lower-case (DNS names compare case-insensitively).
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl SubjectAltName {
    /// A DNS name, checked.
    pub fn dns(name: &str) -> Result<Self> {
        check_dns_name(name).map_err(|reason| PkiError::InvalidSan {
            value: name.to_owned(),
            reason,
        })?;
        Ok(Self::Dns(name.to_ascii_lowercase()))
    }

    pub(crate) fn to_rcgen(&self) -> Result<SanType> {
        Ok(match self {
            Self::Ip(ip) => SanType::IpAddress(*ip),
            Self::Dns(name) => {
                SanType::DnsName(name.clone().try_into().map_err(|e: rcgen::Error| {
                    PkiError::InvalidSan {
                        value: name.clone(),
                        reason: e.to_string(),
                    }
                })?)
            }
        })
    }
}

impl From<IpAddr> for SubjectAltName {
    fn from(ip: IpAddr) -> Self {
        Self::Ip(ip)
    }
}

impl fmt::Display for SubjectAltName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => write!(f, "DNS:{name}"),
            Self::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

impl FromStr for SubjectAltName {
    type Err = PkiError;

    /// Parses `10.0.0.1`, `fd00::1`, `[fd00::1]`, `api.example.com` or
    /// `*.example.com`; `IP:` and `DNS:` prefixes (openssl's spelling) are accepted.
    fn from_str(s: &str) -> Result<Self> {
        let raw = s.trim();
        let invalid = |reason: &str| PkiError::InvalidSan {
            value: s.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(ip) = raw.strip_prefix("IP:") {
            return parse_ip(ip.trim())
                .map(Self::Ip)
                .ok_or_else(|| invalid("after `IP:` comes something that is not an IP address"));
        }
        if let Some(name) = raw.strip_prefix("DNS:") {
            return Self::dns(name.trim());
        }
        if let Some(ip) = parse_ip(raw) {
            return Ok(Self::Ip(ip));
        }
        if raw.contains("://") {
            return Err(invalid("it looks like a URL; give only the host part"));
        }
        if raw.contains('/') {
            return Err(invalid(
                "a CIDR or path is not a name; list each address on its own",
            ));
        }
        if raw
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
        {
            return Err(invalid("it carries a port; give only the host part"));
        }
        Self::dns(raw)
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// Checks an RFC 1123 host name (optionally with a `*.` wildcard as the whole
/// leftmost label), returning why it is unusable.
fn check_dns_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "it is {} characters long (at most 253)",
            name.len()
        ));
    }
    let body = name.strip_prefix("*.").unwrap_or(name);
    for label in body.split('.') {
        if label.is_empty() {
            return Err(
                "it has an empty label (two dots in a row, or a leading/trailing dot)".into(),
            );
        }
        if label.len() > 63 {
            return Err(format!("label {label:?} is longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!("character {c:?} is not allowed in a DNS name"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with '-'"));
        }
    }
    Ok(())
}

/// Checks a name kubeseed puts into certificate subjects and file names (a
/// node, an etcd member, the cluster): a DNS-1123 subdomain, as Kubernetes
/// requires of node names.
pub(crate) fn check_object_name(what: &'static str, name: &str) -> Result<()> {
    let lower_only = name.chars().all(|c| !c.is_ascii_uppercase());
    match check_dns_name(name) {
        Ok(()) if lower_only && !name.starts_with("*.") => Ok(()),
        Ok(()) => Err(PkiError::InvalidName {
            what,
            value: name.to_owned(),
            reason: "use lower-case letters, digits, '-' and '.' only (a DNS-1123 subdomain)"
                .into(),
        }),
        Err(reason) => Err(PkiError::InvalidName {
            what,
            value: name.to_owned(),
            reason: format!("{reason}; use a DNS-1123 subdomain such as master-1"),
        }),
    }
}

/// The address of the `kubernetes` Service: the first host address of the
/// (primary) service CIDR, which kube-apiserver allocates to it.
///
/// Accepts a dual-stack value (`10.96.0.0/12,fd00::/108`); the first range is
/// the primary one.
pub fn first_service_ip(service_cidr: &str) -> Result<IpAddr> {
    let invalid = |reason: String| PkiError::InvalidServiceCidr {
        value: service_cidr.to_owned(),
        reason,
    };
    let primary = service_cidr.split(',').next().unwrap_or_default().trim();
    let (addr, len) = primary
        .split_once('/')
        .ok_or_else(|| invalid("it has no prefix length (/N)".into()))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| invalid(format!("{addr:?} is not an IP address")))?;
    let len: u32 = len
        .parse()
        .map_err(|_| invalid(format!("{len:?} is not a prefix length")))?;
    match addr {
        IpAddr::V4(v4) => {
            if len > 30 {
                return Err(invalid(format!(
                    "/{len} leaves no room for Services (at most /30)"
                )));
            }
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let network = u32::from(v4) & mask;
            Ok(IpAddr::V4(Ipv4Addr::from(network + 1)))
        }
        IpAddr::V6(v6) => {
            if len > 126 {
                return Err(invalid(format!(
                    "/{len} leaves no room for Services (at most /126)"
                )));
            }
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            let network = u128::from(v6) & mask;
            Ok(IpAddr::V6(Ipv6Addr::from(network + 1)))
        }
    }
}

/// Appends `san` unless it is already present (order is kept so certificates
/// read the same way every time).
pub(crate) fn push_unique(list: &mut Vec<SubjectAltName>, san: SubjectAltName) {
    if !list.contains(&san) {
        list.push(san);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<SubjectAltName> {
        s.parse()
    }

    #[test]
    fn ips_and_names_parse() {
        assert_eq!(
            parse("10.0.0.1").unwrap(),
            SubjectAltName::Ip("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            parse("[fd00::1]").unwrap(),
            SubjectAltName::Ip("fd00::1".parse().unwrap())
        );
        assert_eq!(
            parse("IP:192.168.1.1").unwrap().to_string(),
            "IP:192.168.1.1"
        );
        assert_eq!(
            parse("API.Example.com").unwrap(),
            SubjectAltName::Dns("api.example.com".into())
        );
        assert_eq!(
            parse("DNS:*.example.com").unwrap().to_string(),
            "DNS:*.example.com"
        );
    }

    #[test]
    fn bad_sans_say_what_is_wrong() {
        for (bad, why) in [
            ("", "empty"),
            ("https://api.example.com", "URL"),
            ("api.example.com:6443", "port"),
            ("10.0.0.0/24", "CIDR"),
            ("bad_name.example", "'_'"),
            ("a..b", "empty label"),
            ("-a.example", "starts or ends"),
            ("IP:not-an-ip", "not an IP"),
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad:?}: {err}");
            assert!(err.contains("invalid subject alternative name"), "{err}");
        }
        let long = format!("{}.example", "a".repeat(64));
        assert!(parse(&long).unwrap_err().to_string().contains("63"));
    }

    #[test]
    fn first_service_ip_of_common_ranges() {
        assert_eq!(
            first_service_ip("10.96.0.0/12").unwrap().to_string(),
            "10.96.0.1"
        );
        assert_eq!(
            first_service_ip("10.254.0.0/16").unwrap().to_string(),
            "10.254.0.1"
        );
        // A host address inside the range still means the range.
        assert_eq!(
            first_service_ip("10.0.0.7/24").unwrap().to_string(),
            "10.0.0.1"
        );
        assert_eq!(
            first_service_ip("10.96.0.0/12,fd00:10:96::/108")
                .unwrap()
                .to_string(),
            "10.96.0.1"
        );
        assert_eq!(
            first_service_ip("fd00:10:96::/108").unwrap().to_string(),
            "fd00:10:96::1"
        );
    }

    #[test]
    fn bad_service_cidrs_are_refused() {
        for (bad, why) in [
            ("10.96.0.0", "prefix length"),
            ("10.96.0.0/33", "no room"),
            ("banana/12", "not an IP"),
            ("10.96.0.0/x", "not a prefix"),
        ] {
            let err = first_service_ip(bad).unwrap_err().to_string();
            assert!(
                err.contains(why) && err.contains("--service-cluster-ip-range"),
                "{err}"
            );
        }
    }

    #[test]
    fn object_names_must_be_dns_1123() {
        check_object_name("node name", "master-1").unwrap();
        let err = check_object_name("node name", "Master_1")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("node name") && err.contains("DNS-1123"),
            "{err}"
        );
    }
}
