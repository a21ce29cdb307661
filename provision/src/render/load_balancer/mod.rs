//! The API load balancer: an L4 proxy (HAProxy or nginx `stream`) in front
//! of every kube-apiserver, and keepalived holding the VIP (VRRPv3) on
//! whichever load-balancer host has a working proxy.
//!
//! | file | mode | what |
//! |---|---|---|
//! | [`LB_DIR`]`/ca.crt` | 0644 | the cluster CA: HAProxy verifies each apiserver's certificate with it |
//! | [`LB_DIR`]`/haproxy.cfg` or `nginx.conf` | 0644 | the proxy ([`RenderedLoadBalancer::proxy_config`]) |
//! | [`LB_DIR`]`/keepalived.conf` | 0644 | the VRRP instance ([`RenderedLoadBalancer::keepalived_config`]) |
//! | [`LB_DIR`]`/check-proxy.sh` | 0755 | keepalived's health check: proxy unit active and its port accepting |
//! | [`LB_DIR`]`/vrrp-notify.sh` | 0755 | records each VRRP transition ([`VRRP_STATE_FILE`], [`TRANSITIONS_LOG`]) |
//! | `/etc/systemd/system/kubeseed-{haproxy,nginx,keepalived}.service` | 0644 | kubeseed's own units |
//!
//! kubeseed runs its own units with its own files, so it never edits the
//! distribution's `/etc/haproxy`, `/etc/nginx` or `/etc/keepalived`, nor
//! their units; pid files live in each unit's own runtime directory, so the
//! distribution's services could run beside them.
//!
//! The proxy listens on [`LoadBalancerInput::port`] on every address of the
//! host, so the VIP works on whichever host it lands.
//!
//! **Health of the backends.** HAProxy checks each apiserver itself: TLS to
//! the apiserver, verified with the cluster CA and the name `kubernetes`
//! (which every apiserver certificate carries), then `GET /readyz` must
//! answer 200; a server marked down has its sessions cut so clients
//! reconnect to a live one. Its stats page, on the Unix socket
//! [`HAPROXY_STATS_SOCKET`], shows each server's state
//! (`curl --unix-socket SOCKET 'http://localhost/;csv'`). Open-source nginx
//! has no active health checks (only passive ones: a server that refuses a
//! connection is skipped for a while): with nginx the operator probes
//! `/readyz` itself and renders only the healthy backends.
//!
//! **The configurations are checked by their programs** before they are
//! used: each is a [`CheckedFile`] whose [`CheckedFile::validate_command`]
//! runs `haproxy -c`, `nginx -t` or `keepalived -t` on a copy, and the units
//! validate again before every start and reload.
//!
//! Every value that reaches a file is either parsed (addresses, ports,
//! numbers) or admitted only from a small set of characters (names,
//! interface names, paths), and refused otherwise with an error naming the
//! field: none of these formats then needs quoting.

mod haproxy;
mod keepalived;
mod nginx;
mod scripts;
mod units;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::files::HostFiles;
use crate::ssh::shell::quote;

use super::Component;
use super::error::{RenderError, Result};
use super::paths;

const COMPONENT: Component = Component::LoadBalancer;

/// Default VRRP advertisement interval: a failed master is replaced after
/// about 0.6–0.8 s ([`master_down_interval`]).
pub const DEFAULT_ADVERT_INTERVAL_MS: u32 = 200;
/// Where the load balancer's files are.
pub const LB_DIR: &str = "/etc/kubeseed/lb";
/// One line per VRRP transition: `<unix seconds.nanoseconds> <instance> <state>`.
pub const TRANSITIONS_LOG: &str = "/var/lib/kubeseed/lb/vrrp-transitions.log";
/// This host's current VRRP state (`MASTER`, `BACKUP`, `FAULT`, `STOP`).
pub const VRRP_STATE_FILE: &str = "/run/kubeseed-keepalived/state";
/// HAProxy's stats page (HTTP on a Unix socket, root only).
pub const HAPROXY_STATS_SOCKET: &str = "/run/kubeseed-haproxy/stats.sock";
/// The HAProxy backend (and nginx upstream) holding the apiservers: the
/// `pxname` of their rows in the stats CSV.
pub const BACKEND: &str = "kube_apiservers";

/// Which program proxies the API port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proxy {
    /// HAProxy: active TLS health checks of `/readyz`.
    HaProxy,
    /// nginx `stream`: passive checks only; the operator renders only
    /// healthy backends.
    Nginx,
}

impl Proxy {
    /// kubeseed's unit that runs it.
    pub fn unit(self) -> &'static str {
        match self {
            Proxy::HaProxy => "kubeseed-haproxy.service",
            Proxy::Nginx => "kubeseed-nginx.service",
        }
    }

    /// Its configuration file.
    pub fn config_path(self) -> &'static str {
        match self {
            Proxy::HaProxy => "/etc/kubeseed/lb/haproxy.cfg",
            Proxy::Nginx => "/etc/kubeseed/lb/nginx.conf",
        }
    }

    /// The Debian package that installs it.
    pub fn package(self) -> &'static str {
        match self {
            Proxy::HaProxy => "haproxy",
            Proxy::Nginx => "nginx",
        }
    }

    fn config_name(self) -> &'static str {
        match self {
            Proxy::HaProxy => "haproxy.cfg",
            Proxy::Nginx => "nginx.conf",
        }
    }

    fn runtime_dir_name(self) -> &'static str {
        match self {
            Proxy::HaProxy => "kubeseed-haproxy",
            Proxy::Nginx => "kubeseed-nginx",
        }
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.package())
    }
}

/// One kube-apiserver behind the proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// Its name in the configuration and the stats (`[A-Za-z0-9._-]`,
    /// unique): the member's name.
    pub name: String,
    /// IP address or DNS name.
    pub address: String,
    /// The apiserver's secure port.
    pub port: u16,
}

/// The VRRP instance of this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vrrp {
    /// The instance's name, such as `kubeseed_api` (`[A-Za-z0-9_-]`).
    pub instance: String,
    /// `virtual_router_id`, 1..=255: the same on every load-balancer host of
    /// the VIP, and unique on the network segment.
    pub router_id: u8,
    /// 1..=254; the highest healthy host holds the VIP.
    pub priority: u8,
    /// Advertisement interval: a multiple of 10 ms (VRRPv3 counts
    /// centiseconds) from 10 ms to 40.95 s; usually
    /// [`DEFAULT_ADVERT_INTERVAL_MS`].
    pub advert_interval_ms: u32,
    /// This host's address on the interface: the adverts' source.
    pub unicast_source: IpAddr,
    /// The other load-balancer hosts' addresses (adverts go to each by
    /// unicast). Empty when this is the only one: keepalived then advertises
    /// by multicast, because it refuses unicast without peers.
    pub unicast_peers: Vec<IpAddr>,
}

/// Absolute paths of the programs on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Programs {
    /// `haproxy` or `nginx`.
    pub proxy: String,
    /// `keepalived`.
    pub keepalived: String,
}

impl Programs {
    /// Where Debian's packages install them.
    pub fn default_for(proxy: Proxy) -> Self {
        Programs {
            proxy: match proxy {
                Proxy::HaProxy => "/usr/sbin/haproxy",
                Proxy::Nginx => "/usr/sbin/nginx",
            }
            .into(),
            keepalived: "/usr/sbin/keepalived".into(),
        }
    }
}

impl Default for Programs {
    /// HAProxy's.
    fn default() -> Self {
        Programs::default_for(Proxy::HaProxy)
    }
}

/// Everything one load-balancer host's files are rendered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadBalancerInput {
    /// HAProxy or nginx.
    pub proxy: Proxy,
    /// Where the proxy listens, on every address of the host.
    pub port: u16,
    /// The virtual IP keepalived holds.
    pub vip: IpAddr,
    /// The VIP's prefix length on the interface.
    pub prefix_len: u8,
    /// The interface the VIP and the adverts use (`[A-Za-z0-9._-]`, at most
    /// 15 characters).
    pub interface: String,
    /// The apiservers. May be empty: the proxy still starts, and refuses
    /// connections it cannot forward.
    pub backends: Vec<Backend>,
    /// This host's VRRP instance.
    pub vrrp: Vrrp,
    /// The cluster CA certificate (PEM), for HAProxy's TLS checks.
    pub ca_pem: String,
    /// Where haproxy or nginx, and keepalived, are on the host.
    pub programs: Programs,
    /// `ngx_stream_module.so` when nginx has the stream module as a dynamic
    /// module (Debian: `/usr/lib/nginx/modules/ngx_stream_module.so`);
    /// `None` when it is built in. Ignored for HAProxy.
    pub nginx_stream_module: Option<String>,
}

/// Where the files and the runtime paths they name are. [`Layout::default`]
/// is the real one; tests render into temporary directories with another
/// (the units still name the real runtime directories).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// [`LB_DIR`].
    pub lb_dir: String,
    /// `/run`: holds `kubeseed-haproxy/`, `kubeseed-nginx/` and
    /// `kubeseed-keepalived/` (the units' `RuntimeDirectory=`).
    pub run_dir: String,
    /// `/var/lib/kubeseed/lb`: holds the transitions log.
    pub state_dir: String,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            lb_dir: LB_DIR.into(),
            run_dir: "/run".into(),
            state_dir: "/var/lib/kubeseed/lb".into(),
        }
    }
}

impl Layout {
    fn lb_file(&self, name: &str) -> String {
        format!("{}/{name}", self.lb_dir)
    }

    /// The CA certificate HAProxy verifies the apiservers with.
    pub fn ca_file(&self) -> String {
        self.lb_file("ca.crt")
    }

    /// keepalived's health check of the proxy.
    pub fn check_script(&self) -> String {
        self.lb_file("check-proxy.sh")
    }

    /// keepalived's notify script.
    pub fn notify_script(&self) -> String {
        self.lb_file("vrrp-notify.sh")
    }

    /// The proxy's configuration.
    pub fn proxy_config(&self, proxy: Proxy) -> String {
        self.lb_file(proxy.config_name())
    }

    /// keepalived's configuration.
    pub fn keepalived_config(&self) -> String {
        self.lb_file("keepalived.conf")
    }

    fn runtime_dir(&self, name: &str) -> String {
        format!("{}/{name}", self.run_dir)
    }

    /// The proxy's runtime directory (its unit's `RuntimeDirectory=`).
    pub fn proxy_runtime_dir(&self, proxy: Proxy) -> String {
        self.runtime_dir(proxy.runtime_dir_name())
    }

    /// keepalived's runtime directory.
    pub fn keepalived_runtime_dir(&self) -> String {
        self.runtime_dir(keepalived::RUNTIME_DIR_NAME)
    }

    /// [`HAPROXY_STATS_SOCKET`] in this layout.
    pub fn stats_socket(&self) -> String {
        format!("{}/stats.sock", self.proxy_runtime_dir(Proxy::HaProxy))
    }

    /// [`VRRP_STATE_FILE`] in this layout.
    pub fn state_file(&self) -> String {
        format!("{}/state", self.keepalived_runtime_dir())
    }

    /// [`TRANSITIONS_LOG`] in this layout.
    pub fn transitions_log(&self) -> String {
        format!("{}/vrrp-transitions.log", self.state_dir)
    }
}

/// A configuration file that its program checks before it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedFile {
    /// Absolute path on the host.
    pub path: String,
    /// Its text.
    pub contents: String,
    /// Its mode (0644).
    pub mode: u32,
    /// The shell command line that validates a copy of the file at `{}`
    /// (the placeholder appears once); see [`CheckedFile::validate_command`].
    pub validate: String,
}

impl CheckedFile {
    /// The command line that validates a copy of this file at `path`: exits
    /// 0 when the program accepts it, and otherwise non-zero with the
    /// program's message on stderr. `path` is shell-quoted.
    pub fn validate_command(&self, path: &str) -> String {
        self.validate.replacen("{}", &shell_word(path), 1)
    }
}

/// Every file of one load-balancer host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedLoadBalancer {
    /// `ca.crt`, the two scripts, the proxy's and keepalived's units: files
    /// no program validates (write them first: the validators read them).
    pub support: HostFiles,
    /// `haproxy.cfg` or `nginx.conf`.
    pub proxy_config: CheckedFile,
    /// `keepalived.conf`.
    pub keepalived_config: CheckedFile,
    /// `kubeseed-haproxy.service` or `kubeseed-nginx.service`.
    pub proxy_unit: &'static str,
    /// `kubeseed-keepalived.service`.
    pub keepalived_unit: &'static str,
}

impl RenderedLoadBalancer {
    /// Every file, the checked ones included (for golden files and
    /// comparisons).
    pub fn all_files(&self) -> HostFiles {
        let mut files = self.support.clone();
        for f in [&self.proxy_config, &self.keepalived_config] {
            files.insert(f.path.clone(), f.contents.clone(), f.mode);
        }
        files
    }
}

/// kubeseed's keepalived unit.
pub const KEEPALIVED_UNIT: &str = "kubeseed-keepalived.service";

impl LoadBalancerInput {
    /// Every file, at their real paths ([`Layout::default`]).
    pub fn render(&self) -> Result<RenderedLoadBalancer> {
        self.render_in(&Layout::default())
    }

    /// Every file, with the paths of `layout`.
    pub fn render_in(&self, layout: &Layout) -> Result<RenderedLoadBalancer> {
        self.check(layout)?;
        let mut support = HostFiles::default();
        let mut ca = self.ca_pem.trim_end().to_owned();
        ca.push('\n');
        support.insert_public(layout.ca_file(), ca);
        support.insert(
            layout.check_script(),
            scripts::check_proxy(self.proxy, self.port),
            EXECUTABLE_MODE,
        );
        support.insert(
            layout.notify_script(),
            scripts::vrrp_notify(layout),
            EXECUTABLE_MODE,
        );
        let (proxy_config, proxy_unit) = match self.proxy {
            Proxy::HaProxy => (
                haproxy::config(self, layout),
                haproxy::unit(&self.programs.proxy, layout)?,
            ),
            Proxy::Nginx => (
                nginx::config(self, layout),
                nginx::unit(&self.programs.proxy, layout)?,
            ),
        };
        support.insert_public(unit_path(self.proxy.unit()), proxy_unit);
        support.insert_public(
            unit_path(KEEPALIVED_UNIT),
            keepalived::unit(&self.programs.keepalived, self.proxy, layout)?,
        );
        let proxy_validate = match self.proxy {
            Proxy::HaProxy => haproxy::validate(&self.programs.proxy),
            Proxy::Nginx => nginx::validate(&self.programs.proxy, layout),
        };
        Ok(RenderedLoadBalancer {
            support,
            proxy_config: CheckedFile {
                path: layout.proxy_config(self.proxy),
                contents: proxy_config,
                mode: crate::files::PUBLIC_MODE,
                validate: proxy_validate,
            },
            keepalived_config: CheckedFile {
                path: layout.keepalived_config(),
                contents: keepalived::config(self, layout),
                mode: crate::files::PUBLIC_MODE,
                validate: keepalived::validate(&self.programs.keepalived),
            },
            proxy_unit: self.proxy.unit(),
            keepalived_unit: KEEPALIVED_UNIT,
        })
    }

    /// Refuses every input that would make a broken or unsafe file.
    fn check(&self, layout: &Layout) -> Result<()> {
        if self.port == 0 {
            return Err(invalid("port", "0 is not a port"));
        }
        check_interface(&self.interface)?;
        let max_prefix = if self.vip.is_ipv4() { 32 } else { 128 };
        if self.prefix_len == 0 || self.prefix_len > max_prefix {
            return Err(invalid(
                "prefix length",
                format!(
                    "{} for {}: give 1 to {max_prefix}",
                    self.prefix_len, self.vip
                ),
            ));
        }
        if self.vip.is_unspecified() || self.vip.is_loopback() || self.vip.is_multicast() {
            return Err(invalid(
                "VIP",
                format!("{} cannot be a virtual IP", self.vip),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for b in &self.backends {
            check_chars(
                &format!("backend name {:?}", b.name),
                &b.name,
                |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
                "letters, digits, `.`, `_` and `-`",
            )?;
            if !names.insert(b.name.as_str()) {
                return Err(invalid(
                    format!("backend name {:?}", b.name),
                    "two backends have it; names must be unique",
                ));
            }
            check_address(&b.name, &b.address)?;
            if b.port == 0 {
                return Err(invalid(
                    format!("port of backend {:?}", b.name),
                    "0 is not a port",
                ));
            }
        }
        self.check_vrrp()?;
        if !self.ca_pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(invalid(
                "CA certificate",
                "it is not a PEM certificate (no `-----BEGIN CERTIFICATE-----`)",
            ));
        }
        check_path("proxy program path", &self.programs.proxy)?;
        check_path("keepalived program path", &self.programs.keepalived)?;
        if let Some(module) = &self.nginx_stream_module {
            check_path("nginx stream module path", module)?;
        }
        check_path("layout lb_dir", &layout.lb_dir)?;
        check_path("layout run_dir", &layout.run_dir)?;
        check_path("layout state_dir", &layout.state_dir)?;
        Ok(())
    }

    fn check_vrrp(&self) -> Result<()> {
        let v = &self.vrrp;
        check_chars(
            &format!("VRRP instance name {:?}", v.instance),
            &v.instance,
            |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'),
            "letters, digits, `_` and `-`",
        )?;
        if v.router_id == 0 {
            return Err(invalid("VRRP router id", "0: give 1 to 255"));
        }
        if v.priority == 0 || v.priority == 255 {
            return Err(invalid(
                "VRRP priority",
                format!(
                    "{}: give 1 to 254 (255 is for the owner of the address, which a VIP has not)",
                    v.priority
                ),
            ));
        }
        if !(10..=40_950).contains(&v.advert_interval_ms)
            || !v.advert_interval_ms.is_multiple_of(10)
        {
            return Err(invalid(
                "VRRP advert interval",
                format!(
                    "{} ms: give a multiple of 10 ms from 10 ms to 40950 ms (VRRPv3 counts centiseconds)",
                    v.advert_interval_ms
                ),
            ));
        }
        let family = |a: &IpAddr| if a.is_ipv4() { "IPv4" } else { "IPv6" };
        let want = family(&self.vip);
        for (what, addr) in std::iter::once(("VRRP unicast source", &v.unicast_source))
            .chain(v.unicast_peers.iter().map(|p| ("VRRP unicast peer", p)))
        {
            if family(addr) != want {
                return Err(invalid(
                    what,
                    format!(
                        "{addr} is {} but the VIP {} is {want}: one VRRP instance speaks one family",
                        family(addr),
                        self.vip
                    ),
                ));
            }
            if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
                return Err(invalid(what, format!("{addr} is not a host's address")));
            }
        }
        if v.unicast_peers.contains(&v.unicast_source) {
            return Err(invalid(
                "VRRP unicast peers",
                format!("they contain this host's own address {}", v.unicast_source),
            ));
        }
        Ok(())
    }
}

/// Scripts' mode.
const EXECUTABLE_MODE: u32 = 0o755;

fn unit_path(unit: &str) -> String {
    format!("{}/{unit}", paths::SYSTEMD_DIR)
}

fn invalid(what: impl Into<String>, reason: impl Into<String>) -> RenderError {
    RenderError::input(COMPONENT, what, reason)
}

fn check_chars(
    what: &str,
    value: &str,
    allowed: impl Fn(char) -> bool,
    allowed_text: &str,
) -> Result<()> {
    if value.is_empty() {
        return Err(invalid(what, "it is empty"));
    }
    if let Some(c) = value.chars().find(|c| !allowed(*c)) {
        return Err(invalid(
            what,
            format!("{c:?} is not allowed; use only {allowed_text}"),
        ));
    }
    Ok(())
}

/// A network interface name: what the kernel accepts (at most 15 bytes),
/// from `[A-Za-z0-9._-]`.
fn check_interface(name: &str) -> Result<()> {
    let what = format!("interface name {name:?}");
    check_chars(
        &what,
        name,
        |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
        "letters, digits, `.`, `_` and `-`",
    )?;
    if name.len() > 15 {
        return Err(invalid(what, "longer than the kernel's 15 characters"));
    }
    if name == "." || name == ".." {
        return Err(invalid(what, "not a usable name"));
    }
    Ok(())
}

/// An IP address, or a DNS name (RFC 1123 labels).
fn check_address(backend: &str, address: &str) -> Result<()> {
    if address.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let what = format!("address of backend {backend:?}");
    if address.is_empty() {
        return Err(invalid(what, "it is empty"));
    }
    let name = address.strip_suffix('.').unwrap_or(address);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(invalid(
            what,
            format!(
                "{address:?} is neither an IP address nor a DNS name (labels of letters, digits \
                 and `-`, separated by `.`)"
            ),
        ));
    }
    Ok(())
}

/// An absolute path from `[A-Za-z0-9._+/-]`, without `..`.
fn check_path(what: &str, path: &str) -> Result<()> {
    let what = format!("{what} {path:?}");
    check_chars(
        &what,
        path,
        |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '/'),
        "letters, digits, `.`, `_`, `-`, `+` and `/`",
    )?;
    if !path.starts_with('/') {
        return Err(invalid(what, "not an absolute path"));
    }
    if path.split('/').any(|p| p == "..") {
        return Err(invalid(what, "it contains `..`"));
    }
    Ok(())
}

/// `word` for a shell command line: as it is when it holds nothing a shell
/// interprets, single-quoted otherwise.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '/' | ':'));
    if plain { word.to_owned() } else { quote(word) }
}

/// `address:port` as HAProxy and nginx write it (IPv6 in brackets).
fn host_port(address: &str, port: u16) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]:{port}"),
        Ok(IpAddr::V4(v4)) => format!("{v4}:{port}"),
        Err(_) => format!("{address}:{port}"),
    }
}

/// The master-down interval keepalived derives for a backup of `priority`
/// (VRRPv3, RFC 5798 §6.1): 3 × advert + skew, skew = (256 − priority) ×
/// advert / 256, computed as keepalived 2.2 does (the advert in whole
/// centiseconds, the skew rounded down to a microsecond). How long the VIP
/// is unanswered after its master dies without a word (a clean stop sends
/// a priority-0 advert and is quicker).
pub fn master_down_interval(advert_interval_ms: u32, priority: u8) -> Duration {
    let centis = u64::from(advert_interval_ms) / 10;
    let advert_us = centis * 10_000;
    // keepalived: ((256 - prio) * centis * 625) / 16, 625/16 = 10000/256.
    let skew_us = ((256 - u64::from(priority)) * centis * 625) / 16;
    Duration::from_micros(3 * advert_us + skew_us)
}

#[cfg(test)]
mod tests;
