//! nginx `stream`: a standalone `nginx.conf` (the distribution's is not
//! included) and `kubeseed-nginx.service`.
//!
//! Open-source nginx has no active health checks: a server that refuses a
//! connection is skipped for `fail_timeout` (passive), and a server that
//! accepts but is not ready is not noticed at all. The operator therefore
//! probes each apiserver's `/readyz` itself and renders only the healthy
//! ones.
//!
//! The unit runs nginx in the foreground (`daemon off;`, `Type=exec`); a
//! reload is `HUP` to the master, which keeps the running configuration if
//! the new one is invalid and lets old workers finish for at most
//! `worker_shutdown_timeout`.

use super::units::{Unit, exec};
use super::{BACKEND, Layout, LoadBalancerInput, Proxy, host_port, shell_word};
use crate::render::HEADER;
use crate::render::error::Result;

/// nginx refuses an upstream without servers; with no backend the upstream
/// holds this one, marked `down`, so nginx starts, listens, and closes
/// every connection it cannot forward.
pub(super) const PLACEHOLDER_SERVER: &str = "127.0.0.1:9";

/// `nginx.conf`.
pub(super) fn config(input: &LoadBalancerInput, layout: &Layout) -> String {
    let mut out = format!(
        "{HEADER}
# kubeseed's API load balancer: TCP to every kube-apiserver.
# Open-source nginx has no active health checks (a server that refuses a
# connection is only skipped for fail_timeout): kubeseed's operator probes
# each apiserver's /readyz and lists only the healthy ones here.

"
    );
    if let Some(module) = &input.nginx_stream_module {
        out.push_str(&format!("load_module {module};\n"));
    }
    let mut servers = String::new();
    for b in &input.backends {
        servers.push_str(&format!(
            "        server {} max_fails=1 fail_timeout=10s;  # {}\n",
            host_port(&b.address, b.port),
            b.name
        ));
    }
    if input.backends.is_empty() {
        servers.push_str(&format!(
            "        # No healthy apiserver: nginx refuses an empty upstream, so it\n\
             \x20       # holds one that is down and every connection is closed.\n\
             \x20       server {PLACEHOLDER_SERVER} down;\n"
        ));
    }
    let mut listen = format!("        listen {};\n", input.port);
    if input.vip.is_ipv6() {
        listen.push_str(&format!("        listen [::]:{};\n", input.port));
    }
    out.push_str(&format!(
        "worker_processes auto;
pid {pid};
error_log stderr notice;
# After a reload, old workers close their remaining connections (long
# watches) after this; clients reconnect to the new workers.
worker_shutdown_timeout 5m;

events {{
    worker_connections 8192;
}}

stream {{
    upstream {BACKEND} {{
{servers}    }}

    server {{
{listen}        proxy_pass {BACKEND};
        proxy_connect_timeout 2s;
        # kubectl and controllers hold watches open for a long time.
        proxy_timeout 1h;
        proxy_next_upstream on;
    }}
}}
",
        pid = pid_file(layout),
    ));
    out
}

fn pid_file(layout: &Layout) -> String {
    format!("{}/nginx.pid", layout.proxy_runtime_dir(Proxy::Nginx))
}

/// The validator of a copy at `{}`. `nginx -t` opens the pid file's
/// directory, which exists only while the unit runs (`RuntimeDirectory=`),
/// so the validator makes it first.
pub(super) fn validate(program: &str, layout: &Layout) -> String {
    format!(
        "mkdir -p {} && {} -t -q -e stderr -c {{}}",
        shell_word(&layout.proxy_runtime_dir(Proxy::Nginx)),
        shell_word(program)
    )
}

/// `kubeseed-nginx.service`.
pub(super) fn unit(program: &str, layout: &Layout) -> Result<String> {
    let config = layout.proxy_config(Proxy::Nginx);
    // `-e stderr`: no early error log in the distribution's /var/log/nginx.
    let check = exec(program, &["-t", "-q", "-e", "stderr", "-c", &config])?;
    Ok(Unit {
        description: "kubeseed: the API load balancer (nginx)",
        documentation: &["man:nginx(8)"],
        after: vec![],
        service: vec![
            // In the foreground: systemd watches the master itself.
            ("Type", "exec".into()),
            ("ExecStartPre", check.clone()),
            (
                "ExecStart",
                exec(
                    program,
                    &["-e", "stderr", "-c", &config, "-g", "daemon off;"],
                )?,
            ),
            ("ExecReload", check),
            ("ExecReload", "/bin/kill -HUP $MAINPID".into()),
            ("KillMode", "mixed".into()),
            ("Restart", "always".into()),
            ("RestartSec", "2s".into()),
            ("RuntimeDirectory", Proxy::Nginx.runtime_dir_name().into()),
            ("LimitNOFILE", "65536".into()),
        ],
    }
    .render())
}
