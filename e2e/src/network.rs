//! The lab's links: one bridge with the runner's address, and per host a
//! network namespace joined to the bridge by a veth pair.
//!
//! Everything here is made with `ip`, only under names the lab derived from
//! its own name, and only after checking the name is not already taken.

use std::net::Ipv4Addr;

use crate::cmd;
use crate::config::Subnet;
use crate::error::{LabError, Result};

/// The bridge of lab `lab`.
pub fn bridge_name(lab: &str) -> String {
    format!("ks-{lab}-br")
}

/// The runner-side end of host `index`'s veth pair.
pub fn veth_name(lab: &str, index: usize) -> String {
    format!("ks-{lab}-{index}")
}

/// The network namespace of a host (a file under /run/netns).
pub fn netns_name(lab: &str, host: &str) -> String {
    format!("kubeseed-{lab}-{host}")
}

/// A locally administered MAC unique per lab subnet and host address.
pub fn mac_for(address: Ipv4Addr) -> String {
    let [_, b, c, d] = address.octets();
    format!("02:6b:73:{b:02x}:{c:02x}:{d:02x}")
}

/// Whether a link of this name exists in the runner's namespace.
pub fn link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// Whether a named network namespace exists.
pub fn netns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

/// Fails unless `subnet` is unused by every address and route on the runner,
/// so the lab never shadows a network someone else uses. Output of `ip -j`
/// that cannot be read fails the check: an unknown answer is not "free".
pub fn check_subnet_free(subnet: &Subnet) -> Result<()> {
    const ROUTES: [&str; 6] = ["-j", "-4", "route", "show", "table", "all"];
    const ADDRESSES: [&str; 3] = ["-j", "-4", "addr"];
    let routes = cmd::run("ip", ROUTES)?;
    let addresses = cmd::run("ip", ADDRESSES)?;
    check_subnet_free_in(subnet, &routes, &addresses)
}

fn unreadable(args: &[&str], error: impl std::fmt::Display) -> LabError {
    LabError::Command {
        command: format!("ip {}", args.join(" ")),
        status: "output not understood".into(),
        stderr: format!(
            "{error}; the lab cannot tell whether its subnet is free, so it does not start"
        ),
    }
}

/// [`check_subnet_free`] on the JSON of `ip -j -4 route show table all` and
/// `ip -j -4 addr`.
fn check_subnet_free_in(subnet: &Subnet, routes: &str, addresses: &str) -> Result<()> {
    let route_args = ["-j", "-4", "route", "show", "table", "all"];
    let addr_args = ["-j", "-4", "addr"];
    let routes: Vec<serde_json::Value> =
        serde_json::from_str(routes).map_err(|e| unreadable(&route_args, e))?;
    for route in &routes {
        let dst = route
            .get("dst")
            .and_then(|d| d.as_str())
            .ok_or_else(|| unreadable(&route_args, format!("a route without dst: {route}")))?;
        if dst == "default" {
            continue;
        }
        // Broadcast, local and multicast routes name single addresses too.
        let (address, prefix) = parse_cidr(dst)
            .ok_or_else(|| unreadable(&route_args, format!("route destination {dst:?}")))?;
        if subnet.overlaps(address, prefix) {
            let dev = route.get("dev").and_then(|d| d.as_str()).unwrap_or("?");
            return Err(LabError::Config(format!(
                "subnet {subnet} overlaps the runner's route {dst} (dev {dev}); \
                 pick another private /24 with --subnet or KUBESEED_LAB_SUBNET"
            )));
        }
    }
    let links: Vec<serde_json::Value> =
        serde_json::from_str(addresses).map_err(|e| unreadable(&addr_args, e))?;
    for link in &links {
        let name = link.get("ifname").and_then(|n| n.as_str()).unwrap_or("?");
        for info in link
            .get("addr_info")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
        {
            let local = info.get("local").and_then(|l| l.as_str());
            let prefix = info.get("prefixlen").and_then(|p| p.as_u64());
            let (Some(local), Some(prefix)) = (local, prefix) else {
                return Err(unreadable(
                    &addr_args,
                    format!("an address of {name} without local or prefixlen: {info}"),
                ));
            };
            let address = local
                .parse::<Ipv4Addr>()
                .map_err(|_| unreadable(&addr_args, format!("address {local:?} on {name}")))?;
            if subnet.overlaps(address, u8::try_from(prefix).unwrap_or(32)) {
                return Err(LabError::Config(format!(
                    "subnet {subnet} overlaps address {local}/{prefix} on {name}; \
                     pick another private /24 with --subnet or KUBESEED_LAB_SUBNET"
                )));
            }
        }
    }
    Ok(())
}

fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    match text.split_once('/') {
        Some((address, prefix)) => Some((address.parse().ok()?, prefix.parse().ok()?)),
        None => Some((text.parse().ok()?, 32)),
    }
}

/// Fails if `name` is already a link: it is not ours to reuse or remove.
pub fn ensure_link_free(name: &str) -> Result<()> {
    if link_exists(name) {
        return Err(LabError::Config(format!(
            "a network link named {name} already exists and this lab did not record it; \
             the lab will not touch it: remove it yourself or use another --name"
        )));
    }
    Ok(())
}

/// Fails if a network namespace `name` already exists.
pub fn ensure_netns_free(name: &str) -> Result<()> {
    if netns_exists(name) {
        return Err(LabError::Config(format!(
            "network namespace {name} already exists and this lab did not record it; \
             the lab will not touch it: remove it yourself or use another --name"
        )));
    }
    Ok(())
}

/// Adds the bridge. Only this step can fail on a name someone else holds, so
/// callers record the bridge as theirs only once it has succeeded.
pub fn add_bridge(name: &str) -> Result<()> {
    cmd::run("ip", ["link", "add", name, "type", "bridge"])?;
    Ok(())
}

/// Gives the lab's bridge the runner's address; it forwards nothing off the lab.
pub fn configure_bridge(name: &str, subnet: &Subnet) -> Result<()> {
    quiet_link(name);
    let gateway = format!("{}/24", subnet.gateway());
    cmd::run("ip", ["addr", "add", gateway.as_str(), "dev", name])?;
    cmd::run("ip", ["link", "set", name, "up"])?;
    Ok(())
}

/// Adds a named network namespace (see [`add_bridge`] on recording).
pub fn add_netns(name: &str) -> Result<()> {
    cmd::run("ip", ["netns", "add", name])?;
    Ok(())
}

/// Adds the veth pair `veth` (runner side) / `eth0` with `mac` inside `netns`.
pub fn add_veth(veth: &str, netns: &str, mac: &str) -> Result<()> {
    cmd::run(
        "ip",
        [
            "link", "add", veth, "type", "veth", "peer", "name", "eth0", "address", mac, "netns",
            netns,
        ],
    )?;
    Ok(())
}

/// Joins the host to `bridge` and gives its eth0 `address/24`. No default
/// route: a host can reach only the lab's own addresses.
pub fn configure_veth(veth: &str, netns: &str, bridge: &str, address: Ipv4Addr) -> Result<()> {
    quiet_link(veth);
    cmd::run("ip", ["link", "set", veth, "master", bridge, "up"])?;
    cmd::run("ip", ["-n", netns, "link", "set", "lo", "up"])?;
    let cidr = format!("{address}/24");
    cmd::run(
        "ip",
        ["-n", netns, "addr", "add", cidr.as_str(), "dev", "eth0"],
    )?;
    cmd::run("ip", ["-n", netns, "link", "set", "eth0", "up"])?;
    Ok(())
}

/// Brings a link of ours up or down.
pub fn set_link(name: &str, up: bool) -> Result<()> {
    cmd::run("ip", ["link", "set", name, if up { "up" } else { "down" }])?;
    Ok(())
}

/// Whether a link is administratively up.
pub fn link_is_up(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/flags"))
        .ok()
        .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok())
        .is_some_and(|flags| flags & 1 == 1)
}

/// Deletes a link of ours if it still exists.
pub fn delete_link(name: &str) -> Result<()> {
    if link_exists(name) {
        cmd::run("ip", ["link", "del", name])?;
    }
    Ok(())
}

/// Deletes a namespace of ours if it still exists.
pub fn delete_netns(name: &str) -> Result<()> {
    if netns_exists(name) {
        cmd::run("ip", ["netns", "del", name])?;
    }
    Ok(())
}

/// The comment that marks the lab's rule in the runner's FORWARD chain.
fn forward_comment(bridge: &str) -> String {
    format!("kubeseed-lab {bridge}: traffic between the lab's hosts")
}

/// The lab's rule in the runner's FORWARD chain, as `iptables` arguments
/// after the command (`-I`, `-C`, `-D`) and chain: accept what enters *and*
/// leaves the lab's own bridge, nothing else.
///
/// With `bridge-nf-call-iptables=1` (br_netfilter, which Docker and
/// Kubernetes load) frames bridged between two lab hosts pass the runner's
/// FORWARD chain; where its policy is DROP (Docker sets `iptables -P FORWARD
/// DROP`) VRRP adverts, etcd peers and everything else between hosts would
/// be dropped. This rule opens the lab's bridge and only that: the runner's
/// policy and every other rule stay as they are.
pub fn forward_rule(bridge: &str) -> Vec<String> {
    [
        "-i",
        bridge,
        "-o",
        bridge,
        "-m",
        "comment",
        "--comment",
        &forward_comment(bridge),
        "-j",
        "ACCEPT",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn iptables(op: &str, bridge: &str) -> std::process::Command {
    let mut c = std::process::Command::new("iptables");
    c.args(["-w", op, "FORWARD"]);
    if op == "-I" {
        c.arg("1");
    }
    c.args(forward_rule(bridge));
    c
}

/// Whether the runner has iptables at all (no iptables, no FORWARD policy
/// of iptables' to get past).
pub fn have_iptables() -> bool {
    cmd::which("iptables").is_some()
}

/// Whether the lab's FORWARD rule for `bridge` is in place.
pub fn forwarding_allowed(bridge: &str) -> bool {
    have_iptables() && cmd::output(&mut iptables("-C", bridge)).is_ok_and(|o| o.status.success())
}

/// Inserts the lab's FORWARD rule for `bridge` at the top of the chain
/// (before any jump of Docker's). Callers record it as soon as this returns.
pub fn allow_forwarding(bridge: &str) -> Result<()> {
    if !forwarding_allowed(bridge) {
        cmd::run_command(&mut iptables("-I", bridge))?;
    }
    Ok(())
}

/// Deletes the lab's FORWARD rule for `bridge` (every copy) if present.
pub fn remove_forwarding(bridge: &str) -> Result<()> {
    while forwarding_allowed(bridge) {
        cmd::run_command(&mut iptables("-D", bridge))?;
    }
    Ok(())
}

/// Keeps the runner side of the lab silent and closed: no IPv6 autoconfiguration
/// chatter and no forwarding of anything a host sends towards other networks.
fn quiet_link(name: &str) {
    for (path, value) in [
        (format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1"),
        (format!("/proc/sys/net/ipv4/conf/{name}/forwarding"), "0"),
    ] {
        if let Err(error) = std::fs::write(&path, value) {
            tracing::debug!(%path, %error, "could not set");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_link_names() {
        assert!(bridge_name("abcdefgh").len() <= 15);
        assert!(veth_name("abcdefgh", 89).len() <= 15);
    }

    #[test]
    fn macs_are_local_and_unique_per_address() {
        let a = mac_for(Ipv4Addr::new(10, 213, 0, 11));
        assert_eq!(a, "02:6b:73:d5:00:0b");
        assert_ne!(a, mac_for(Ipv4Addr::new(10, 213, 0, 12)));
    }

    #[test]
    fn unreadable_ip_output_fails_the_subnet_check() {
        let subnet: Subnet = "10.213.9.0/24".parse().unwrap();
        let ok_routes =
            r#"[{"dst":"default","dev":"eth0"},{"dst":"172.17.0.0/16","dev":"docker0"}]"#;
        let ok_addrs = r#"[{"ifname":"eth0","addr_info":[{"local":"192.0.2.5","prefixlen":24}]}]"#;
        check_subnet_free_in(&subnet, ok_routes, ok_addrs).unwrap();
        for (routes, addrs) in [
            ("", ok_addrs),
            ("not json", ok_addrs),
            (r#"{"dst":"default"}"#, ok_addrs),
            (r#"[{"dev":"eth0"}]"#, ok_addrs),
            (r#"[{"dst":"10.213.x.0/24"}]"#, ok_addrs),
            (ok_routes, ""),
            (
                ok_routes,
                r#"[{"ifname":"eth0","addr_info":[{"local":"10.213.9.7"}]}]"#,
            ),
            (
                ok_routes,
                r#"[{"ifname":"eth0","addr_info":[{"local":"nope","prefixlen":8}]}]"#,
            ),
        ] {
            let err = check_subnet_free_in(&subnet, routes, addrs).unwrap_err();
            assert!(
                err.to_string().contains("output not understood"),
                "{routes} / {addrs}: {err}"
            );
        }
        let taken = r#"[{"ifname":"br0","addr_info":[{"local":"10.213.9.1","prefixlen":24}]}]"#;
        let err = check_subnet_free_in(&subnet, ok_routes, taken).unwrap_err();
        assert!(err.to_string().contains("overlaps address"), "{err}");
    }

    #[test]
    fn the_forward_rule_names_the_bridge_both_ways() {
        let rule = forward_rule("ks-labtest-br");
        assert_eq!(&rule[..4], ["-i", "ks-labtest-br", "-o", "ks-labtest-br"]);
        assert_eq!(&rule[rule.len() - 2..], ["-j", "ACCEPT"]);
    }

    #[test]
    fn parses_routes_with_and_without_prefix() {
        assert_eq!(
            parse_cidr("10.0.0.0/8"),
            Some((Ipv4Addr::new(10, 0, 0, 0), 8))
        );
        assert_eq!(
            parse_cidr("192.0.2.2"),
            Some((Ipv4Addr::new(192, 0, 2, 2), 32))
        );
    }
}
