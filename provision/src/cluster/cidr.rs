//! IP ranges: parsing, overlap, and the n-th address of a range.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP network: address (host bits cleared) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.244.0.0/16` or `fd00::/64`; host bits must be zero, so a
    /// typo such as `10.244.1.0/16` is caught instead of silently widened.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (addr, len) = text
            .split_once('/')
            .ok_or_else(|| "it has no prefix length (/N)".to_owned())?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let prefix: u8 = len
            .parse()
            .map_err(|_| format!("{len:?} is not a prefix length"))?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        if u32::from(prefix) > bits {
            return Err(format!("/{prefix} is longer than an address ({bits} bits)"));
        }
        let cidr = Cidr {
            network: mask(addr, prefix),
            prefix,
        };
        if cidr.network != addr {
            return Err(format!(
                "host bits are set (the network is {}/{prefix})",
                cidr.network
            ));
        }
        Ok(cidr)
    }

    /// The network `addr/prefix` belongs to (host bits cleared): an
    /// interface address and its prefix length name its subnet.
    pub fn containing(addr: IpAddr, prefix: u8) -> Result<Self, String> {
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        if u32::from(prefix) > bits {
            return Err(format!("/{prefix} is longer than an address ({bits} bits)"));
        }
        Ok(Cidr {
            network: mask(addr, prefix),
            prefix,
        })
    }

    /// Whether it is an IPv4 range.
    pub fn is_ipv4(&self) -> bool {
        self.network.is_ipv4()
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// The network address.
    pub fn network(&self) -> IpAddr {
        self.network
    }

    /// Whether `ip` lies in the range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.is_ipv4() && mask(ip, self.prefix) == self.network
    }

    /// Whether the two ranges share any address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        if self.is_ipv4() != other.is_ipv4() {
            return false;
        }
        let shorter = self.prefix.min(other.prefix);
        mask(self.network, shorter) == mask(other.network, shorter)
    }

    /// The address `n` after the network address (wrapping inside the family).
    pub fn nth(&self, n: u128) -> IpAddr {
        match self.network {
            IpAddr::V4(v4) => {
                let n = u32::try_from(n).unwrap_or(u32::MAX);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4).wrapping_add(n)))
            }
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6).wrapping_add(n))),
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix.min(32)))
            };
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & m))
        }
        IpAddr::V6(v6) => {
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix.min(128)))
            };
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & m))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        Cidr::parse(s).unwrap()
    }

    #[test]
    fn parses_and_refuses() {
        assert_eq!(c("10.244.0.0/16").to_string(), "10.244.0.0/16");
        assert_eq!(c("fd00::/64").to_string(), "fd00::/64");
        assert!(
            Cidr::parse("10.244.1.0/16")
                .unwrap_err()
                .contains("host bits")
        );
        assert!(Cidr::parse("10.244.0.0").unwrap_err().contains("prefix"));
        assert!(Cidr::parse("10.244.0.0/33").is_err());
        assert!(Cidr::parse("ten/8").is_err());
    }

    #[test]
    fn overlap_and_membership() {
        assert!(c("10.96.0.0/12").overlaps(&c("10.96.0.0/16")));
        assert!(!c("10.96.0.0/12").overlaps(&c("10.244.0.0/16")));
        assert!(!c("10.0.0.0/8").overlaps(&c("fd00::/8")));
        assert!(c("10.244.0.0/16").contains("10.244.3.7".parse().unwrap()));
        assert!(!c("10.244.0.0/16").contains("10.245.0.1".parse().unwrap()));
        assert_eq!(
            c("10.96.0.0/12").nth(10),
            "10.96.0.10".parse::<IpAddr>().unwrap()
        );
    }
}
