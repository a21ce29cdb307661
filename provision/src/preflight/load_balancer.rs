//! Preflight of an API load-balancer host: not a Kubernetes node, so none of
//! the node checks (swap, cgroups, kernel modules) apply. What matters is
//! whether the proxy and keepalived are installed (the host's own
//! packages), whether the VIP can live on the chosen interface (in one of
//! its subnets, not already somebody's address), whether the proxy's port
//! is free, and whether the host belongs to another cluster.
//!
//! Same two halves as the node preflight: [`gather_load_balancer`] runs one
//! read-only script, [`evaluate_load_balancer`] judges its output (pure,
//! tested here). Nothing is changed on the host.

use std::net::IpAddr;

use serde::Deserialize;

use super::error::PreflightError;
use super::facts::{OsFamily, Process};
use super::listeners::parse_ss_users;
use super::packages::install_command;
use super::parse::{Sections, parse_os_release};
use super::report::{Check, Report};
use crate::cluster::Cidr;
use crate::host::Host;
use crate::render::load_balancer::{Programs, Proxy};
use crate::ssh::ExecOptions;
use crate::ssh::shell::quote;

/// Programs every load-balancer host needs besides the proxy.
const BASE_PROGRAMS: [&str; 8] = [
    "keepalived",
    "bash",
    "ip",
    "systemctl",
    "sha256sum",
    "stat",
    "install",
    "timeout",
];

/// Where distributions put nginx's dynamic stream module.
const STREAM_MODULES: [&str; 3] = [
    "/usr/lib/nginx/modules/ngx_stream_module.so",
    "/usr/lib64/nginx/modules/ngx_stream_module.so",
    "/usr/share/nginx/modules/ngx_stream_module.so",
];

/// What the load balancer asks of its host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerExpectations {
    /// Which proxy runs.
    pub proxy: Proxy,
    /// Its port.
    pub port: u16,
    /// The VIP and its prefix length.
    pub vip: IpAddr,
    /// Prefix length of the VIP's network.
    pub prefix_len: u8,
    /// The interface the spec names, if it names one.
    pub interface: Option<String>,
    /// This cluster's id (`/var/lib/kubeseed/cluster-id`).
    pub cluster_id: String,
}

/// One address of a link, as `ip -j addr` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAddress {
    /// The link's name.
    pub link: String,
    /// The address.
    pub address: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
}

/// What the script found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerFacts {
    /// `address:port` of the host, for the report.
    pub host: String,
    /// The uid commands run as (0 when root or through sudo).
    pub uid: Option<u32>,
    /// systemd is the init system.
    pub systemd: bool,
    /// The distribution's family, for install commands.
    pub family: OsFamily,
    /// Each program looked for and its path, `None` when missing.
    pub programs: Vec<(String, Option<String>)>,
    /// `nginx -V`: whether the stream module is built in.
    pub nginx_stream_builtin: bool,
    /// A dynamic stream module found on disk.
    pub nginx_stream_module: Option<String>,
    /// Every link's name.
    pub links: Vec<String>,
    /// Every address on every link.
    pub addresses: Vec<LinkAddress>,
    /// The link the kernel routes the VIP through.
    pub route_dev: Option<String>,
    /// The processes listening on the proxy's port.
    pub port_holders: Vec<Process>,
    /// `/var/lib/kubeseed/cluster-id`.
    pub cluster_id: Option<String>,
    /// Whether kubeseed's keepalived runs (then the VIP may be here).
    pub keepalived_active: bool,
    /// Whether one of kubeseed's proxy units runs (either implementation:
    /// a switch replaces one with the other on the same port).
    pub proxy_active: bool,
    /// The first line of each program's version output.
    pub versions: Vec<(String, String)>,
}

/// What the renderers need from a host that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerHostProfile {
    /// Where keepalived puts the VIP.
    pub interface: String,
    /// The host's address on that link, in the VIP's subnet (VRRP's
    /// unicast source).
    pub source: IpAddr,
    /// Paths of the proxy and keepalived.
    pub programs: Programs,
    /// nginx's dynamic stream module, to load.
    pub nginx_stream_module: Option<String>,
    /// Versions of the proxy and keepalived (first lines).
    pub proxy_version: Option<String>,
    /// keepalived's version line.
    pub keepalived_version: Option<String>,
}

/// The read-only script for `expect`.
pub fn load_balancer_script(expect: &LoadBalancerExpectations) -> String {
    let proxy = expect.proxy.package();
    let mut programs = vec![proxy.to_owned()];
    programs.extend(BASE_PROGRAMS.iter().map(|p| (*p).to_owned()));
    if expect.proxy == Proxy::HaProxy {
        programs.push("curl".into());
    }
    format!(
        r#"export LC_ALL=C
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
s() {{ printf '\n@@kubeseed:%s\n' "$1"; }}
s uid; id -u
s systemd; [ -d /run/systemd/system ] && echo yes
s os-release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
s programs
for p in {programs}; do echo "$p $(command -v "$p" 2>/dev/null || echo -)"; done
s nginx-v; command -v nginx >/dev/null 2>&1 && nginx -V 2>&1 | tr ' ' '\n' | grep -e '^--with-stream'
s stream-modules; for f in {modules}; do [ -f "$f" ] && echo "$f"; done
s links; ip -j link show 2>/dev/null
s addresses; ip -j addr show 2>/dev/null
s route; ip -j route get {vip} 2>/dev/null
s port; ss -Htlnp 'sport = :{port}' 2>/dev/null
s cluster-id; cat /var/lib/kubeseed/cluster-id 2>/dev/null
s keepalived-active; systemctl is-active kubeseed-keepalived.service 2>/dev/null
s proxy-active; systemctl is-active kubeseed-haproxy.service kubeseed-nginx.service 2>/dev/null
s versions
command -v haproxy >/dev/null 2>&1 && echo "haproxy $(haproxy -v 2>&1 | head -n 1)"
command -v nginx >/dev/null 2>&1 && echo "nginx $(nginx -v 2>&1 | head -n 1)"
command -v keepalived >/dev/null 2>&1 && echo "keepalived $(keepalived -v 2>&1 | head -n 1)"
true
"#,
        programs = programs.join(" "),
        modules = STREAM_MODULES.join(" "),
        vip = quote(&expect.vip.to_string()),
        port = expect.port,
    )
}

/// Runs the script on `host` (as root) and parses what it printed.
pub async fn gather_load_balancer(
    host: &dyn Host,
    expect: &LoadBalancerExpectations,
) -> Result<LoadBalancerFacts, PreflightError> {
    let out = host
        .exec(
            &load_balancer_script(expect),
            ExecOptions::sudo().with_timeout(super::GATHER_TIMEOUT),
        )
        .await?;
    if !out.status.success() {
        let stderr = out.stderr_text().trim().chars().take(2000).collect();
        return Err(PreflightError::ScriptFailed {
            host: host.name().to_owned(),
            status: out.status,
            stderr,
        });
    }
    Ok(parse_load_balancer(host.name(), &out.stdout_text()))
}

#[derive(Deserialize)]
struct JsonLink {
    ifname: String,
}

#[derive(Deserialize)]
struct JsonAddrLink {
    ifname: String,
    #[serde(default)]
    addr_info: Vec<JsonAddr>,
}

#[derive(Deserialize)]
struct JsonAddr {
    local: String,
    prefixlen: u8,
}

#[derive(Deserialize)]
struct JsonRoute {
    dev: Option<String>,
}

/// Parses the script's output (pure).
pub fn parse_load_balancer(host: &str, text: &str) -> LoadBalancerFacts {
    let s = Sections::split(text);
    let word = |name: &str| s.text(name);
    let programs = s
        .lines("programs")
        .iter()
        .filter_map(|l| l.split_once(' '))
        .map(|(p, path)| {
            let path = path.trim();
            (p.to_owned(), (path != "-").then(|| path.to_owned()))
        })
        .collect();
    let links = serde_json::from_str::<Vec<JsonLink>>(&word("links"))
        .map(|v| v.into_iter().map(|l| l.ifname).collect())
        .unwrap_or_default();
    let addresses = serde_json::from_str::<Vec<JsonAddrLink>>(&word("addresses"))
        .map(|v| {
            v.into_iter()
                .flat_map(|l| {
                    let link = l.ifname;
                    l.addr_info.into_iter().filter_map(move |a| {
                        Some(LinkAddress {
                            link: link.clone(),
                            address: a.local.parse().ok()?,
                            prefix_len: a.prefixlen,
                        })
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let route_dev = serde_json::from_str::<Vec<JsonRoute>>(&word("route"))
        .ok()
        .and_then(|r| r.into_iter().next())
        .and_then(|r| r.dev);
    let port_holders = parse_ss_users(&word("port"));
    let versions = s
        .lines("versions")
        .iter()
        .filter_map(|l| l.split_once(' '))
        .map(|(p, v)| (p.to_owned(), v.trim().to_owned()))
        .collect();
    LoadBalancerFacts {
        host: host.to_owned(),
        uid: word("uid").parse().ok(),
        systemd: word("systemd") == "yes",
        family: parse_os_release(s.lines("os-release")).family(),
        programs,
        nginx_stream_builtin: s
            .lines("nginx-v")
            .iter()
            .any(|l| l.trim() == "--with-stream"),
        nginx_stream_module: s
            .lines("stream-modules")
            .first()
            .map(|l| l.trim().to_owned()),
        links,
        addresses,
        route_dev,
        port_holders,
        cluster_id: Some(word("cluster-id")).filter(|c| !c.is_empty()),
        keepalived_active: word("keepalived-active") == "active",
        proxy_active: s.lines("proxy-active").iter().any(|l| l.trim() == "active"),
        versions,
    }
}

impl LoadBalancerFacts {
    fn program(&self, name: &str) -> Option<&str> {
        self.programs
            .iter()
            .find(|(p, _)| p == name)
            .and_then(|(_, path)| path.as_deref())
    }

    fn version(&self, name: &str) -> Option<String> {
        self.versions
            .iter()
            .find(|(p, _)| p == name)
            .map(|(_, v)| v.clone())
    }
}

/// Judges `facts`: a report, and the profile the renderers need when every
/// check passed.
pub fn evaluate_load_balancer(
    facts: &LoadBalancerFacts,
    expect: &LoadBalancerExpectations,
) -> (Report, Option<LoadBalancerHostProfile>) {
    let mut checks = Vec::new();
    checks.push(match facts.uid {
        Some(0) => Check::pass("privileges", "root"),
        other => Check::fail(
            "privileges",
            format!("commands run as uid {other:?}, not root"),
            "log in as root, or give the user passwordless sudo",
        ),
    });
    checks.push(if facts.systemd {
        Check::pass("init", "systemd")
    } else {
        Check::fail(
            "init",
            "systemd is not the init system",
            "kubeseed runs the proxy and keepalived as systemd units: use a host with systemd",
        )
    });
    checks.push(programs_check(facts, expect));
    if expect.proxy == Proxy::Nginx {
        checks.push(stream_check(facts));
    }
    let (link_check, interface) = interface_check(facts, expect);
    checks.push(link_check);
    let (subnet_check, source) = match &interface {
        Some(link) => subnet_check(facts, expect, link),
        None => (
            Check::fail(
                "vip-subnet",
                "no interface to judge",
                "fix the interface check first",
            ),
            None,
        ),
    };
    checks.push(subnet_check);
    checks.push(vip_free_check(facts, expect));
    checks.push(port_check(facts, expect));
    checks.push(cluster_check(facts, expect));
    let report = Report::new(&facts.host, checks);
    let profile = match (report.is_ok(), interface, source) {
        (true, Some(interface), Some(source)) => Some(LoadBalancerHostProfile {
            interface,
            source,
            programs: Programs {
                proxy: facts
                    .program(expect.proxy.package())
                    .unwrap_or_default()
                    .to_owned(),
                keepalived: facts.program("keepalived").unwrap_or_default().to_owned(),
            },
            nginx_stream_module: (expect.proxy == Proxy::Nginx && !facts.nginx_stream_builtin)
                .then(|| facts.nginx_stream_module.clone())
                .flatten(),
            proxy_version: facts.version(expect.proxy.package()),
            keepalived_version: facts.version("keepalived"),
        }),
        _ => None,
    };
    (report, profile)
}

fn programs_check(facts: &LoadBalancerFacts, expect: &LoadBalancerExpectations) -> Check {
    let missing: Vec<&str> = facts
        .programs
        .iter()
        .filter(|(_, path)| path.is_none())
        .map(|(p, _)| p.as_str())
        .collect();
    if facts.programs.is_empty() {
        return Check::fail(
            "programs",
            "the host listed no programs",
            "run the preflight again",
        );
    }
    if missing.is_empty() {
        return Check::pass(
            "programs",
            format!("{} and keepalived found", expect.proxy.package()),
        );
    }
    Check::fail(
        "programs",
        format!("missing: {}", missing.join(", ")),
        install_command(facts.family, &missing),
    )
}

fn stream_check(facts: &LoadBalancerFacts) -> Check {
    if facts.nginx_stream_builtin {
        Check::pass("nginx-stream", "built in")
    } else if let Some(m) = &facts.nginx_stream_module {
        Check::pass("nginx-stream", format!("dynamic module {m}"))
    } else {
        let fix = match facts.family {
            OsFamily::Debian => "apt-get install -y libnginx-mod-stream".to_owned(),
            OsFamily::RedHat => "dnf install -y nginx-mod-stream".to_owned(),
            _ => "install nginx's stream module".to_owned(),
        };
        Check::fail(
            "nginx-stream",
            "nginx has no stream module (neither built in nor a dynamic module)",
            fix,
        )
    }
}

fn interface_check(
    facts: &LoadBalancerFacts,
    expect: &LoadBalancerExpectations,
) -> (Check, Option<String>) {
    match &expect.interface {
        Some(name) if facts.links.iter().any(|l| l == name) => (
            Check::pass("interface", format!("{name} exists")),
            Some(name.clone()),
        ),
        Some(name) => (
            Check::fail(
                "interface",
                format!(
                    "interface {name} does not exist on the host (it has {})",
                    facts.links.join(", ")
                ),
                "set spec.interface to one of the host's interfaces, or leave it out to use the one routing to the VIP",
            ),
            None,
        ),
        None => match held_on(facts, expect.vip).or(facts.route_dev.as_deref()) {
            // The holder's kernel routes its own VIP through `lo`: the link
            // that carries the address is the one to keep.
            Some(dev) if dev != "lo" => (
                Check::pass("interface", format!("{dev} routes to {}", expect.vip)),
                Some(dev.to_owned()),
            ),
            _ => {
                let have: Vec<String> = facts
                    .addresses
                    .iter()
                    .filter(|a| !a.address.is_loopback())
                    .map(|a| format!("{}/{} on {}", a.address, a.prefix_len, a.link))
                    .collect();
                (
                    Check::fail(
                        "interface",
                        format!(
                            "the VIP {}/{} is outside every subnet of the host, which has no route to it ({})",
                            expect.vip,
                            expect.prefix_len,
                            have.join(", ")
                        ),
                        "choose a VIP in the subnet the load-balancer hosts share, or set spec.interface",
                    ),
                    None,
                )
            }
        },
    }
}

/// The link that carries `vip` as an address, if one does (keepalived put
/// it there).
fn held_on(facts: &LoadBalancerFacts, vip: IpAddr) -> Option<&str> {
    facts
        .addresses
        .iter()
        .find(|a| a.address == vip && a.link != "lo")
        .map(|a| a.link.as_str())
}

fn subnet_check(
    facts: &LoadBalancerFacts,
    expect: &LoadBalancerExpectations,
    link: &str,
) -> (Check, Option<IpAddr>) {
    let on_link: Vec<&LinkAddress> = facts.addresses.iter().filter(|a| a.link == link).collect();
    let containing = on_link.iter().find(|a| {
        a.address != expect.vip
            && Cidr::containing(a.address, a.prefix_len).is_ok_and(|c| c.contains(expect.vip))
    });
    match containing {
        Some(a) => (
            Check::pass(
                "vip-subnet",
                format!(
                    "{}/{} is in {link}'s subnet of {}/{}",
                    expect.vip, expect.prefix_len, a.address, a.prefix_len
                ),
            ),
            Some(a.address),
        ),
        None => {
            let have: Vec<String> = on_link
                .iter()
                .map(|a| format!("{}/{}", a.address, a.prefix_len))
                .collect();
            (
                Check::fail(
                    "vip-subnet",
                    format!(
                        "the VIP {}/{} is outside every subnet of {link} ({})",
                        expect.vip,
                        expect.prefix_len,
                        if have.is_empty() {
                            "no addresses".to_owned()
                        } else {
                            have.join(", ")
                        }
                    ),
                    "choose a VIP in the subnet the load-balancer hosts share, or set spec.interface to the link that has that subnet",
                ),
                None,
            )
        }
    }
}

fn vip_free_check(facts: &LoadBalancerFacts, expect: &LoadBalancerExpectations) -> Check {
    let holder = facts.addresses.iter().find(|a| a.address == expect.vip);
    match holder {
        None => Check::pass(
            "vip-free",
            format!("{} is not an address of the host", expect.vip),
        ),
        Some(_) if facts.keepalived_active => Check::pass(
            "vip-free",
            format!("{} is held by kubeseed's keepalived", expect.vip),
        ),
        Some(a) => Check::fail(
            "vip-free",
            format!(
                "{} is already an address of this host (on {}), not one keepalived holds",
                expect.vip, a.link
            ),
            "choose a VIP no host uses, or remove that address from the host",
        ),
    }
}

fn port_check(facts: &LoadBalancerFacts, expect: &LoadBalancerExpectations) -> Check {
    let name = format!("port {}", expect.port);
    if facts.port_holders.is_empty() {
        return Check::pass(name, "free");
    }
    let kubeseeds = [Proxy::HaProxy.package(), Proxy::Nginx.package()];
    if facts.proxy_active
        && facts
            .port_holders
            .iter()
            .all(|p| kubeseeds.contains(&p.name.as_str()))
    {
        let holder = &facts.port_holders[0].name;
        return Check::pass(name, format!("held by kubeseed's {holder}"));
    }
    let holders: Vec<String> = facts
        .port_holders
        .iter()
        .map(|p| format!("{} (pid {})", p.name, p.pid))
        .collect();
    Check::fail(
        name,
        format!("in use by {}", holders.join(", ")),
        if facts
            .port_holders
            .iter()
            .any(|p| p.name.starts_with("kube-apiserver"))
        {
            "this host runs a kube-apiserver on that port: give the load balancer another spec.port (such as 8443), or use another host".to_owned()
        } else {
            format!(
                "stop what holds port {}, or give the load balancer another spec.port",
                expect.port
            )
        },
    )
}

fn cluster_check(facts: &LoadBalancerFacts, expect: &LoadBalancerExpectations) -> Check {
    match &facts.cluster_id {
        None => Check::pass("cluster", "the host belongs to no cluster"),
        Some(id) if *id == expect.cluster_id => Check::pass("cluster", "this cluster's host"),
        Some(id) => Check::fail(
            "cluster",
            format!("the host belongs to another kubeseed cluster (id {id})"),
            "remove it from that cluster first, or use another host",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(interface: Option<&str>) -> LoadBalancerExpectations {
        LoadBalancerExpectations {
            proxy: Proxy::HaProxy,
            port: 6443,
            vip: "10.0.0.100".parse().unwrap(),
            prefix_len: 24,
            interface: interface.map(str::to_owned),
            cluster_id: "c1".into(),
        }
    }

    const OUTPUT: &str = r#"
@@kubeseed:uid
0
@@kubeseed:systemd
yes
@@kubeseed:os-release
ID=debian
@@kubeseed:programs
haproxy /usr/sbin/haproxy
keepalived /usr/sbin/keepalived
bash /usr/bin/bash
ip /usr/sbin/ip
systemctl /usr/bin/systemctl
sha256sum /usr/bin/sha256sum
stat /usr/bin/stat
install /usr/bin/install
timeout /usr/bin/timeout
curl /usr/bin/curl
@@kubeseed:nginx-v
@@kubeseed:stream-modules
@@kubeseed:links
[{"ifindex":1,"ifname":"lo"},{"ifindex":2,"ifname":"eth0"}]
@@kubeseed:addresses
[{"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},{"ifname":"eth0","addr_info":[{"family":"inet","local":"10.0.0.21","prefixlen":24},{"family":"inet6","local":"fe80::1","prefixlen":64}]}]
@@kubeseed:route
[{"dst":"10.0.0.100","dev":"eth0","prefsrc":"10.0.0.21"}]
@@kubeseed:port
@@kubeseed:cluster-id
@@kubeseed:keepalived-active
inactive
@@kubeseed:proxy-active
inactive
@@kubeseed:versions
haproxy HAProxy version 2.6.12-1+deb12u2 2025/01/01
keepalived Keepalived v2.2.7 (01/16,2022)
"#;

    fn facts() -> LoadBalancerFacts {
        parse_load_balancer("lb1:22", OUTPUT)
    }

    #[test]
    fn a_fit_host_gives_the_interface_and_the_unicast_source() {
        let (report, profile) = evaluate_load_balancer(&facts(), &expect(None));
        assert!(report.is_ok(), "{}", report.table());
        let profile = profile.unwrap();
        assert_eq!(profile.interface, "eth0");
        assert_eq!(profile.source, "10.0.0.21".parse::<IpAddr>().unwrap());
        assert_eq!(profile.programs.proxy, "/usr/sbin/haproxy");
        assert!(profile.proxy_version.unwrap().contains("2.6.12"));
    }

    #[test]
    fn a_vip_outside_the_subnet_is_refused() {
        let mut e = expect(None);
        e.vip = "10.9.0.100".parse().unwrap();
        let mut f = facts();
        f.route_dev = Some("eth0".into());
        let (report, profile) = evaluate_load_balancer(&f, &e);
        assert!(profile.is_none());
        let c = report.check("vip-subnet").unwrap();
        assert!(
            c.detail.contains("outside every subnet of eth0"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn an_interface_the_host_lacks_is_refused() {
        let (report, _) = evaluate_load_balancer(&facts(), &expect(Some("bond7")));
        let c = report.check("interface").unwrap();
        assert!(c.detail.contains("bond7 does not exist"), "{}", c.detail);
    }

    #[test]
    fn the_vip_as_an_address_of_the_host_is_refused_unless_keepalived_holds_it() {
        let mut f = facts();
        f.addresses.push(LinkAddress {
            link: "eth0".into(),
            address: "10.0.0.100".parse().unwrap(),
            prefix_len: 24,
        });
        let (report, _) = evaluate_load_balancer(&f, &expect(None));
        assert!(!report.is_ok());
        assert!(
            report
                .check("vip-free")
                .unwrap()
                .detail
                .contains("already an address")
        );
        f.keepalived_active = true;
        let (report, _) = evaluate_load_balancer(&f, &expect(None));
        assert!(report.is_ok(), "{}", report.table());
        // On the holder the kernel routes the VIP through lo.
        f.route_dev = Some("lo".into());
        let (report, profile) = evaluate_load_balancer(&f, &expect(None));
        assert!(report.is_ok(), "{}", report.table());
        assert_eq!(profile.unwrap().interface, "eth0");
    }

    #[test]
    fn a_port_held_by_an_apiserver_says_to_pick_another_port() {
        let mut f = facts();
        f.port_holders = vec![Process {
            name: "kube-apiserver".into(),
            pid: 42,
        }];
        let (report, _) = evaluate_load_balancer(&f, &expect(None));
        let c = report.check("port 6443").unwrap();
        assert!(
            c.fix.as_deref().unwrap().contains("another spec.port"),
            "{c:?}"
        );
        f.port_holders = vec![Process {
            name: "haproxy".into(),
            pid: 7,
        }];
        f.proxy_active = true;
        let (report, _) = evaluate_load_balancer(&f, &expect(None));
        assert!(report.is_ok(), "{}", report.table());
        // Switching to nginx: kubeseed's haproxy holds the port until then.
        let mut e = expect(None);
        e.proxy = Proxy::Nginx;
        let (report, _) = evaluate_load_balancer(&f, &e);
        assert_eq!(
            report.check("port 6443").unwrap().status,
            crate::preflight::Status::Pass
        );
    }

    #[test]
    fn missing_packages_are_named_with_the_install_command() {
        let mut f = facts();
        for (p, path) in &mut f.programs {
            if p == "keepalived" {
                *path = None;
            }
        }
        let (report, _) = evaluate_load_balancer(&f, &expect(None));
        let c = report.check("programs").unwrap();
        assert!(c.detail.contains("keepalived"), "{c:?}");
        assert!(
            c.fix
                .as_deref()
                .unwrap()
                .contains("apt-get install -y keepalived"),
            "{c:?}"
        );
    }

    #[test]
    fn another_clusters_host_is_refused() {
        let mut f = facts();
        f.cluster_id = Some("other".into());
        let (report, _) = evaluate_load_balancer(&f, &expect(None));
        assert!(!report.is_ok());
    }

    #[test]
    fn nginx_needs_its_stream_module() {
        let mut e = expect(None);
        e.proxy = Proxy::Nginx;
        let mut f = facts();
        f.programs
            .push(("nginx".into(), Some("/usr/sbin/nginx".into())));
        f.programs.retain(|(p, _)| p != "haproxy" && p != "curl");
        let (report, _) = evaluate_load_balancer(&f, &e);
        assert!(
            report
                .check("nginx-stream")
                .unwrap()
                .fix
                .as_deref()
                .unwrap()
                .contains("libnginx-mod-stream")
        );
        f.nginx_stream_module = Some(STREAM_MODULES[0].into());
        let (report, profile) = evaluate_load_balancer(&f, &e);
        assert!(report.is_ok(), "{}", report.table());
        assert_eq!(
            profile.unwrap().nginx_stream_module.as_deref(),
            Some(STREAM_MODULES[0])
        );
    }
}
