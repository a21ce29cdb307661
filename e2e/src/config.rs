//! What a lab is made of: its name, how many hosts, and the private /24 it owns.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{LabError, Result};

/// The subnet used when neither the caller nor `KUBESEED_LAB_SUBNET` picks one.
pub const DEFAULT_SUBNET: &str = "10.213.0.0/24";
/// The lab name used when the caller does not pick one.
pub const DEFAULT_NAME: &str = "kslab";
/// Longest lab name: link names (`ks-NAME-99`) must fit Linux's 15 bytes.
pub const MAX_NAME_LEN: usize = 8;
/// Most hosts in one lab (host addresses are .11 to .99).
pub const MAX_HOSTS: usize = 89;

/// How to build a lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabConfig {
    /// Names the lab's links, namespaces and directories; several labs with
    /// different names and subnets can run side by side.
    pub name: String,
    /// How many hosts to boot.
    pub hosts: usize,
    /// The private /24 the lab owns: `.1` is the runner, `.11`.. the hosts,
    /// `.200`–`.250` are handed out by [`crate::Lab::free_address`].
    pub subnet: Subnet,
}

impl LabConfig {
    /// A lab of `hosts` hosts with the default name and the subnet from
    /// `KUBESEED_LAB_SUBNET` (or [`DEFAULT_SUBNET`]).
    pub fn new(hosts: usize) -> Result<Self> {
        let subnet = match std::env::var("KUBESEED_LAB_SUBNET") {
            Ok(text) => text.parse()?,
            Err(_) => DEFAULT_SUBNET.parse()?,
        };
        Ok(LabConfig {
            name: DEFAULT_NAME.to_owned(),
            hosts,
            subnet,
        })
    }

    /// Rejects names and sizes the lab cannot honour, before anything is made.
    pub fn validate(&self) -> Result<()> {
        validate_name(&self.name)?;
        if self.hosts == 0 || self.hosts > MAX_HOSTS {
            return Err(LabError::Config(format!(
                "hosts must be between 1 and {MAX_HOSTS}, got {}",
                self.hosts
            )));
        }
        Ok(())
    }
}

/// Checks a lab name: 1 to 8 of `a-z`, `0-9`; it becomes part of link names.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(LabError::Config(format!(
            "lab name `{name}` must be 1 to {MAX_NAME_LEN} characters of a-z and 0-9 \
             (it becomes part of network link names)"
        )))
    }
}

/// A private IPv4 /24 owned by one lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    network: Ipv4Addr,
}

impl Subnet {
    /// The network address (`x.y.z.0`).
    pub fn network(&self) -> Ipv4Addr {
        self.network
    }

    /// The address with last octet `last`.
    pub fn address(&self, last: u8) -> Ipv4Addr {
        let [a, b, c, _] = self.network.octets();
        Ipv4Addr::new(a, b, c, last)
    }

    /// The runner's address on the lab bridge.
    pub fn gateway(&self) -> Ipv4Addr {
        self.address(1)
    }

    /// The address of host number `index` (1-based).
    pub fn host(&self, index: usize) -> Ipv4Addr {
        // MAX_HOSTS keeps 10 + index within .11–.99.
        self.address(u8::try_from(10 + index).unwrap_or(u8::MAX))
    }

    /// Whether `other` (with prefix length `prefix`) overlaps this /24.
    pub fn overlaps(&self, other: Ipv4Addr, prefix: u8) -> bool {
        let prefix = prefix.min(24);
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(prefix))
        };
        (u32::from(self.network) & mask) == (u32::from(other) & mask)
    }

    /// Whether `address` lies in this /24.
    pub fn contains(&self, address: Ipv4Addr) -> bool {
        self.overlaps(address, 24)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/24", self.network)
    }
}

impl FromStr for Subnet {
    type Err = LabError;

    fn from_str(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            LabError::Config(format!(
                "subnet `{text}` {why}; give a private /24 such as {DEFAULT_SUBNET} \
                 (option --subnet or KUBESEED_LAB_SUBNET)"
            ))
        };
        let (address, prefix) = text.split_once('/').ok_or_else(|| bad("has no /24"))?;
        if prefix != "24" {
            return Err(bad("is not a /24"));
        }
        let address: Ipv4Addr = address.parse().map_err(|_| bad("is not an IPv4 network"))?;
        if address.octets()[3] != 0 {
            return Err(bad("is not a network address (last octet must be 0)"));
        }
        // Only RFC 1918 space: the lab must never claim addresses that could
        // belong to someone else.
        if !address.is_private() {
            return Err(bad(
                "is not in private address space (10/8, 172.16/12, 192.168/16)",
            ));
        }
        Ok(Subnet { network: address })
    }
}

impl TryFrom<String> for Subnet {
    type Error = LabError;
    fn try_from(text: String) -> Result<Self> {
        text.parse()
    }
}

impl From<Subnet> for String {
    fn from(subnet: Subnet) -> String {
        subnet.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_private_slash_24() {
        let subnet: Subnet = "10.213.0.0/24".parse().unwrap();
        assert_eq!(subnet.gateway(), Ipv4Addr::new(10, 213, 0, 1));
        assert_eq!(subnet.host(1), Ipv4Addr::new(10, 213, 0, 11));
        assert_eq!(subnet.to_string(), "10.213.0.0/24");
    }

    #[test]
    fn rejects_public_other_prefixes_and_host_addresses() {
        for bad in [
            "8.8.8.0/24",
            "10.213.0.0/16",
            "10.213.0.5/24",
            "10.213.0.0",
            "x/24",
        ] {
            let err = bad.parse::<Subnet>().unwrap_err().to_string();
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn overlap_uses_the_shorter_prefix() {
        let subnet: Subnet = "10.213.0.0/24".parse().unwrap();
        assert!(subnet.overlaps(Ipv4Addr::new(10, 0, 0, 0), 8));
        assert!(subnet.overlaps(Ipv4Addr::new(10, 213, 0, 77), 32));
        assert!(!subnet.overlaps(Ipv4Addr::new(10, 214, 0, 0), 24));
        assert!(!subnet.overlaps(Ipv4Addr::new(192, 0, 2, 0), 24));
    }

    #[test]
    fn names_must_fit_link_names() {
        assert!(validate_name("kslab").is_ok());
        assert!(validate_name("toolongname").is_err());
        assert!(validate_name("Bad").is_err());
        assert!(validate_name("").is_err());
    }
}
