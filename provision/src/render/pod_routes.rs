//! Routes between the nodes' pod ranges, as flannel's host-gw makes them:
//! every node reaches another node's range (its `Node.spec.podCIDR`, served
//! by that node's CNI bridge) through that node's address, on a shared L2
//! segment. No encapsulation, no daemon.
//!
//! | file | mode | what |
//! |---|---|---|
//! | [`POD_ROUTES_FILE`] | 0644 | the routes, one a line: `DESTINATION via NEXT-HOP # NODE`, sorted |
//! | [`POD_ROUTES_SCRIPT`] | 0755 | makes the kernel's routes of protocol [`POD_ROUTES_PROTO`] equal to the file (`--check` only compares) |
//! | `/etc/systemd/system/`[`POD_ROUTES_UNIT`] | 0644 | runs the script at boot, so the routes survive a reboot |
//!
//! The routes carry kubeseed's own route protocol number, so the script can
//! tell its routes from everyone else's: it replaces and removes only
//! those, and never takes over a destination another route already holds.
//!
//! **The caller leaves out the host's own routes:** a node's own range (its
//! bridge routes it) and any route whose next hop is one of the host's own
//! addresses. The renderer cannot know which host it renders for; such a
//! route would point the host at itself.

use std::net::IpAddr;

use crate::cluster::Cidr;
use crate::files::{HostFiles, PUBLIC_MODE};

use super::error::{RenderError, Result};
use super::{Component, HEADER, paths};

const COMPONENT: Component = Component::PodRoutes;

/// The routes the host should have.
pub const POD_ROUTES_FILE: &str = "/etc/kubeseed/pod-routes";
/// The script that makes the kernel's routes equal to [`POD_ROUTES_FILE`].
pub const POD_ROUTES_SCRIPT: &str = "/etc/kubeseed/pod-routes.sh";
/// The unit that runs the script at boot.
pub const POD_ROUTES_UNIT: &str = "kubeseed-pod-routes.service";
/// The route protocol (`ip route ... proto N`) that marks kubeseed's pod
/// routes. 188 would be the obvious pick but is OSPF's (`RTPROT_OSPF`, and
/// FRR uses 186–198); 152 is in no iproute2 `rt_protos` list and no
/// kernel `RTPROT_*`, and Calico (80) and BIRD (12) use others. Changing it
/// orphans the routes already on hosts.
pub const POD_ROUTES_PROTO: u8 = 152;

const SCRIPT_MODE: u32 = 0o755;
const SCRIPT_TEMPLATE: &str = include_str!("pod_routes.sh");

/// One route: `cidr` (another node's pod range) through `via` (that node's
/// address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRoute {
    /// The Node whose range it is (a comment in the file; `[A-Za-z0-9._-]`).
    pub node: String,
    /// The Node's `spec.podCIDR`.
    pub cidr: Cidr,
    /// The Node's address, in the same family as `cidr`, reachable on a
    /// link of this host.
    pub via: IpAddr,
}

/// Every pod route of one host. The caller leaves out the host's own range
/// and routes through the host's own addresses (see the module's notes).
/// IPv4 and IPv6 routes may be mixed (a dual-stack cluster); each route's
/// next hop is of its range's family.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRoutesInput {
    /// The routes, in any order (they are written sorted).
    pub routes: Vec<PodRoute>,
}

impl PodRoutesInput {
    /// [`POD_ROUTES_FILE`], [`POD_ROUTES_SCRIPT`] and the unit. No routes is
    /// valid: the script then removes every route it made.
    pub fn render(&self) -> Result<HostFiles> {
        let routes = self.checked()?;
        let mut files = HostFiles::default();
        files.insert_public(POD_ROUTES_FILE, routes_file(&routes));
        files.insert(POD_ROUTES_SCRIPT, script(), SCRIPT_MODE);
        files.insert(
            paths::unit_path(POD_ROUTES_UNIT.trim_end_matches(".service")),
            unit(),
            PUBLIC_MODE,
        );
        Ok(files)
    }

    /// The routes, sorted by destination, once each is usable and no two
    /// destinations overlap.
    fn checked(&self) -> Result<Vec<&PodRoute>> {
        let mut routes: Vec<&PodRoute> = self.routes.iter().collect();
        routes.sort_by_key(|r| (r.cidr.network(), r.cidr.prefix()));
        for r in &routes {
            check_route(r)?;
        }
        for (i, a) in routes.iter().enumerate() {
            for b in &routes[i + 1..] {
                if a.cidr == b.cidr {
                    return Err(invalid(
                        a,
                        format!(
                            "node {:?} has the same range; every node's range is its own",
                            b.node
                        ),
                    ));
                }
                if a.cidr.overlaps(&b.cidr) {
                    return Err(invalid(
                        a,
                        format!(
                            "it overlaps {} of node {:?}; nodes' ranges are disjoint slices of \
                             the pod range",
                            b.cidr, b.node
                        ),
                    ));
                }
            }
        }
        for r in &routes {
            if let Some(owner) = routes.iter().find(|o| o.cidr.contains(r.via)) {
                return Err(invalid(
                    r,
                    format!(
                        "the next hop {} is inside {} (node {:?}'s pod range): a node's address \
                         cannot be a pod address",
                        r.via, owner.cidr, owner.node
                    ),
                ));
            }
        }
        Ok(routes)
    }
}

fn invalid(route: &PodRoute, reason: impl Into<String>) -> RenderError {
    RenderError::input(
        COMPONENT,
        format!(
            "route to {} via {} (node {:?})",
            route.cidr, route.via, route.node
        ),
        reason,
    )
}

fn check_route(r: &PodRoute) -> Result<()> {
    let node_ok = !r.node.is_empty()
        && r.node.len() <= 253
        && r.node
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !node_ok {
        return Err(invalid(
            r,
            "the node name must be 1 to 253 letters, digits, `.`, `_` or `-`",
        ));
    }
    if r.cidr.prefix() == 0 {
        return Err(invalid(
            r,
            "a /0 is every address (a default route), not a node's pod range",
        ));
    }
    let family = |v4: bool| if v4 { "IPv4" } else { "IPv6" };
    if r.via.is_ipv4() != r.cidr.is_ipv4() {
        return Err(invalid(
            r,
            format!(
                "the range is {} but the next hop is {}: mixed families; route each range \
                 through the node's address of its own family",
                family(r.cidr.is_ipv4()),
                family(r.via.is_ipv4())
            ),
        ));
    }
    let unusable = match r.via {
        IpAddr::V4(v4) => {
            v4.is_unspecified() || v4.is_loopback() || v4.is_multicast() || v4.is_broadcast()
        }
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_loopback() || v6.is_multicast(),
    };
    if unusable {
        return Err(invalid(r, "the next hop is not a node's address"));
    }
    if let IpAddr::V6(v6) = r.via
        && v6.is_unicast_link_local()
    {
        return Err(invalid(
            r,
            "a link-local next hop needs an interface, which pod routes do not name; use the \
             node's global or unique-local address",
        ));
    }
    if r.cidr.contains(r.via) {
        return Err(invalid(
            r,
            "the next hop is inside the range it routes: the node would be routed through itself",
        ));
    }
    Ok(())
}

/// `DESTINATION via NEXT-HOP # NODE` for each route, after a header.
fn routes_file(routes: &[&PodRoute]) -> String {
    let mut out = format!(
        "{HEADER}\n# Routes to the other nodes' pod ranges: DESTINATION via NEXT-HOP # NODE.\n\
         # {POD_ROUTES_SCRIPT} makes the kernel's routes of protocol {POD_ROUTES_PROTO} equal to these.\n"
    );
    for r in routes {
        out.push_str(&format!("{} via {} # {}\n", r.cidr, r.via, r.node));
    }
    out
}

fn script() -> String {
    SCRIPT_TEMPLATE
        .replace("# @HEADER@", HEADER)
        .replace("@PROTO@", &POD_ROUTES_PROTO.to_string())
        .replace("@FILE@", POD_ROUTES_FILE)
}

/// A oneshot that stays "active" once the routes are made, so `systemctl
/// restart` re-runs the script when the files change. No `ExecStop=`: a
/// restart must not drop the routes in between (removing them is the
/// teardown's job). It retries on failure because at boot a next hop's
/// link may come up after `network-online.target`.
fn unit() -> String {
    format!(
        "{HEADER}
[Unit]
Description=kubeseed: routes to the other nodes' pod ranges
Documentation=man:ip-route(8)
Wants=network-online.target
After=network-online.target
StartLimitIntervalSec=0

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart={POD_ROUTES_SCRIPT} {POD_ROUTES_FILE}
Restart=on-failure
RestartSec=15s

[Install]
WantedBy=multi-user.target
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(node: &str, cidr: &str, via: &str) -> PodRoute {
        PodRoute {
            node: node.into(),
            cidr: Cidr::parse(cidr).unwrap(),
            via: via.parse().unwrap(),
        }
    }

    fn input(routes: &[(&str, &str, &str)]) -> PodRoutesInput {
        PodRoutesInput {
            routes: routes.iter().map(|(n, c, v)| route(n, c, v)).collect(),
        }
    }

    fn lines(files: &HostFiles) -> Vec<String> {
        files
            .get(POD_ROUTES_FILE)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect()
    }

    fn refusal(routes: &[(&str, &str, &str)]) -> String {
        let err = input(routes).render().unwrap_err();
        assert_eq!(err.reason(), "InvalidInput");
        err.to_string()
    }

    #[test]
    fn routes_are_sorted_whatever_the_order_given() {
        let a = input(&[
            ("w2", "fd00:10:244:2::/64", "fd00:10::22"),
            ("w10", "10.244.10.0/24", "10.0.0.30"),
            ("w2", "10.244.2.0/24", "10.0.0.22"),
            ("m1", "10.244.0.0/24", "10.0.0.11"),
        ]);
        let mut b = a.clone();
        b.routes.reverse();
        let files = a.render().unwrap();
        assert_eq!(files, b.render().unwrap());
        assert_eq!(
            lines(&files),
            [
                "10.244.0.0/24 via 10.0.0.11 # m1",
                "10.244.2.0/24 via 10.0.0.22 # w2",
                "10.244.10.0/24 via 10.0.0.30 # w10",
                "fd00:10:244:2::/64 via fd00:10::22 # w2",
            ]
        );
    }

    #[test]
    fn files_modes_and_unit() {
        let files = input(&[("w1", "10.244.1.0/24", "10.0.0.21")])
            .render()
            .unwrap();
        let modes: Vec<(String, u32)> = files
            .iter()
            .map(|(p, f)| (p.display().to_string(), f.mode))
            .collect();
        assert_eq!(
            modes,
            [
                (POD_ROUTES_FILE.to_owned(), 0o644),
                (POD_ROUTES_SCRIPT.to_owned(), 0o755),
                (
                    "/etc/systemd/system/kubeseed-pod-routes.service".to_owned(),
                    0o644
                ),
            ]
        );
        let unit = files
            .get("/etc/systemd/system/kubeseed-pod-routes.service")
            .unwrap();
        for line in [
            "Type=oneshot",
            "RemainAfterExit=yes",
            "After=network-online.target",
            "Wants=network-online.target",
            "WantedBy=multi-user.target",
            "ExecStart=/etc/kubeseed/pod-routes.sh /etc/kubeseed/pod-routes",
        ] {
            assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
        }
        assert!(!unit.contains("ExecStop"), "{unit}");
    }

    #[test]
    fn the_script_is_posix_sh_with_kubeseeds_protocol_and_no_placeholder() {
        let text = script();
        assert!(text.starts_with("#!/bin/sh\n"));
        assert!(text.contains(HEADER));
        assert!(text.contains("proto=152\n"), "{text}");
        assert!(text.contains("file=${1:-/etc/kubeseed/pod-routes}"));
        assert!(!text.contains('@'), "a placeholder is left");
        // Every route change names the protocol, so no other route is touched.
        for line in text.lines().map(str::trim) {
            if line.starts_with("ip ") && (line.contains(" replace ") || line.contains(" del ")) {
                assert!(line.contains("proto \"$proto\""), "{line}");
            }
        }
        assert!(!text.contains("flush"), "the script removes route by route");
    }

    #[test]
    fn no_routes_is_a_file_without_routes() {
        let files = PodRoutesInput::default().render().unwrap();
        assert!(lines(&files).is_empty());
        assert_eq!(files.len(), 3);
    }

    #[test]
    fn a_next_hop_inside_its_own_range_is_refused() {
        let msg = refusal(&[("w1", "10.244.1.0/24", "10.244.1.1")]);
        assert!(
            msg.starts_with("pod-routes: invalid route to 10.244.1.0/24"),
            "{msg}"
        );
        assert!(msg.contains("inside the range it routes"), "{msg}");
    }

    #[test]
    fn a_next_hop_inside_another_range_is_refused() {
        let msg = refusal(&[
            ("w1", "10.244.1.0/24", "10.0.0.21"),
            ("w2", "10.244.2.0/24", "10.244.1.7"),
        ]);
        assert!(msg.contains("node \"w1\"'s pod range"), "{msg}");
    }

    #[test]
    fn duplicate_and_overlapping_ranges_are_refused() {
        let msg = refusal(&[
            ("w1", "10.244.1.0/24", "10.0.0.21"),
            ("w2", "10.244.1.0/24", "10.0.0.22"),
        ]);
        assert!(msg.contains("same range"), "{msg}");
        assert!(msg.contains("w1") && msg.contains("w2"), "{msg}");
        let msg = refusal(&[
            ("w1", "10.244.1.0/24", "10.0.0.21"),
            ("big", "10.244.0.0/16", "10.0.0.22"),
        ]);
        assert!(
            msg.contains("overlaps 10.244.1.0/24 of node \"w1\""),
            "{msg}"
        );
    }

    #[test]
    fn mixed_families_are_refused() {
        let msg = refusal(&[("w1", "fd00:10:244:1::/64", "10.0.0.21")]);
        assert!(msg.contains("mixed families"), "{msg}");
        assert!(msg.contains("IPv6") && msg.contains("IPv4"), "{msg}");
        let msg = refusal(&[("w1", "10.244.1.0/24", "fd00::21")]);
        assert!(msg.contains("mixed families"), "{msg}");
    }

    #[test]
    fn unusable_next_hops_ranges_and_names_are_refused() {
        for (node, cidr, via, says) in [
            ("w1", "10.244.1.0/24", "0.0.0.0", "not a node's address"),
            ("w1", "10.244.1.0/24", "127.0.0.1", "not a node's address"),
            ("w1", "10.244.1.0/24", "224.0.0.1", "not a node's address"),
            (
                "w1",
                "10.244.1.0/24",
                "255.255.255.255",
                "not a node's address",
            ),
            ("w1", "fd00:1::/64", "::1", "not a node's address"),
            ("w1", "fd00:1::/64", "fe80::1", "link-local"),
            ("w1", "0.0.0.0/0", "10.0.0.1", "default route"),
            ("", "10.244.1.0/24", "10.0.0.21", "node name"),
            (
                "w1\n10.0.0.0/8 via 1.2.3.4",
                "10.244.1.0/24",
                "10.0.0.21",
                "node name",
            ),
            ("w 1", "10.244.1.0/24", "10.0.0.21", "node name"),
        ] {
            let msg = refusal(&[(node, cidr, via)]);
            assert!(msg.contains(says), "{node} {cidr} {via}: {msg}");
        }
    }

    #[test]
    fn ipv4_and_ipv6_routes_live_in_one_file() {
        let files = input(&[
            ("w1", "10.244.1.0/24", "10.0.0.21"),
            ("w1", "fd00:10:244:1::/64", "fd00:10::21"),
        ])
        .render()
        .unwrap();
        assert_eq!(lines(&files).len(), 2);
    }
}
