//! HAProxy: `haproxy.cfg` and `kubeseed-haproxy.service`.
//!
//! The unit runs HAProxy in master-worker mode (`-Ws`, `Type=notify`): a
//! reload (`USR2` to the master) starts new workers with the new
//! configuration while the old ones finish their connections, for at most
//! `hard-stop-after`.
//!
//! `haproxy -c` is run without `-q`: HAProxy 2.6's quiet mode also hides
//! the alerts that say what is wrong.

use std::net::IpAddr;

use super::units::{Unit, exec};
use super::{BACKEND, Layout, LoadBalancerInput, Proxy, host_port, shell_word};
use crate::render::HEADER;
use crate::render::error::Result;

/// Connections HAProxy accepts at once (it needs about two file descriptors
/// each, so the unit raises `LimitNOFILE`).
const MAXCONN: u32 = 8000;

/// `haproxy.cfg`.
pub(super) fn config(input: &LoadBalancerInput, layout: &Layout) -> String {
    let bind = match input.vip {
        IpAddr::V4(_) => format!("*:{}", input.port),
        // `::` with v4v6 takes IPv4 too, so the health check on 127.0.0.1 works.
        IpAddr::V6(_) => format!(":::{} v4v6", input.port),
    };
    let ca_file = layout.ca_file();
    let mut servers = String::new();
    for b in &input.backends {
        servers.push_str(&format!(
            "    server {} {} check check-ssl verify required ca-file {ca_file} check-sni kubernetes \
             inter 1s fall 2 rise 2 on-marked-down shutdown-sessions\n",
            b.name,
            host_port(&b.address, b.port),
        ));
    }
    if input.backends.is_empty() {
        servers.push_str("    # No apiserver yet: connections are refused until one is added.\n");
    }
    format!(
        "{HEADER}
# kubeseed's API load balancer: TCP to every kube-apiserver, each checked
# with TLS (verified with the cluster CA, name `kubernetes`) and GET /readyz.
# Backend health: curl --unix-socket {stats} 'http://localhost/;csv'

global
    log stdout format short daemon
    maxconn {MAXCONN}
    # After a reload, old workers close their remaining connections (long
    # watches) after this; clients reconnect to the new workers.
    hard-stop-after 5m

defaults
    mode tcp
    log global
    option tcplog
    option dontlognull
    # Log failed connections and health changes, not every watch.
    option dontlog-normal
    timeout connect 5s
    # kubectl and controllers hold watches open for a long time.
    timeout client 1h
    timeout server 1h
    timeout check 2s

frontend stats
    mode http
    bind unix@{stats} mode 600
    timeout client 10s
    stats enable
    stats uri /

frontend kube_apiserver
    bind {bind}
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    # A connection that fails is retried once on another server.
    retries 1
    option redispatch
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host kubernetes
    http-check expect status 200
    # A name that does not resolve leaves its server down rather than
    # stopping HAProxy.
    default-server init-addr libc,none
{servers}",
        stats = layout.stats_socket(),
    )
}

/// The validator of a copy at `{}`.
pub(super) fn validate(program: &str) -> String {
    format!("{} -c -f {{}}", shell_word(program))
}

/// `kubeseed-haproxy.service`.
pub(super) fn unit(program: &str, layout: &Layout) -> Result<String> {
    let config = layout.proxy_config(Proxy::HaProxy);
    let check = exec(program, &["-c", "-f", &config])?;
    let pid = format!("{}/haproxy.pid", layout.proxy_runtime_dir(Proxy::HaProxy));
    Ok(Unit {
        description: "kubeseed: the API load balancer (HAProxy)",
        documentation: &["man:haproxy(1)"],
        after: vec![],
        service: vec![
            ("Type", "notify".into()),
            ("ExecStartPre", check.clone()),
            (
                "ExecStart",
                exec(program, &["-Ws", "-f", &config, "-p", &pid])?,
            ),
            ("ExecReload", check),
            // The master starts new workers; the old ones finish.
            ("ExecReload", "/bin/kill -USR2 $MAINPID".into()),
            ("KillMode", "mixed".into()),
            ("Restart", "always".into()),
            ("RestartSec", "2s".into()),
            // 128 + SIGTERM: how the master ends on stop.
            ("SuccessExitStatus", "143".into()),
            ("RuntimeDirectory", Proxy::HaProxy.runtime_dir_name().into()),
            ("LimitNOFILE", "65536".into()),
        ],
    }
    .render())
}
