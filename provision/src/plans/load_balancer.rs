//! An API load-balancer host: the proxy (HAProxy or nginx `stream`) and
//! keepalived from the host's own packages, run by kubeseed's own units
//! with the configuration kubeseed's renderers made. Each configuration is
//! validated by its program before it replaces the one in use, and a
//! change to it only reloads the service (established connections and the
//! VIP survive); a changed unit restarts it.
//!
//! Switching implementation stops and removes the other proxy first; the
//! health-check script then fails until the new one listens, so keepalived
//! hands the VIP to another host for that moment (the operator provisions
//! the VIP's holder last).

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::render::load_balancer::{
    CheckedFile, LB_DIR, Proxy, RenderedLoadBalancer, TRANSITIONS_LOG,
};
use crate::render::paths;
use crate::ssh::shell::quote;
use crate::tasks::{Shell, SystemdService, Task, UNIT_STATE_DIR, ValidatedFile, WriteFiles};

use super::control_plane::{CLUSTER_ID_FILE, record_cluster_id};

/// keepalived's unit (stopped first on the way out, so the VIP moves before
/// the proxy goes).
pub const KEEPALIVED_UNIT: &str = "kubeseed-keepalived.service";

/// What a load-balancer host's plan is made from.
#[derive(Debug)]
pub struct LoadBalancerHostInput {
    /// Which proxy the host runs.
    pub proxy: Proxy,
    /// The host's rendered files.
    pub rendered: RenderedLoadBalancer,
    /// The cluster's id, recorded on the host for preflight.
    pub cluster_id: String,
}

/// The digest of everything a plan would put on the host: equal digests,
/// nothing to do (the operator skips the run).
pub fn load_balancer_inputs_digest(input: &LoadBalancerHostInput) -> String {
    let r = &input.rendered;
    let mut h = Sha256::new();
    h.update(r.support.digest());
    for f in [&r.proxy_config, &r.keepalived_config] {
        h.update(f.path.as_bytes());
        h.update([0]);
        h.update(f.contents.as_bytes());
        h.update([0]);
    }
    h.update(input.cluster_id.as_bytes());
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The tasks, in order: the host's cluster id, kubeseed's scripts, CA and
/// units; the other proxy removed; the proxy's configuration validated and
/// swapped in, the proxy (re)loaded; then keepalived the same way.
pub fn load_balancer_host(input: LoadBalancerHostInput) -> Vec<Box<dyn Task>> {
    let LoadBalancerHostInput {
        proxy,
        rendered,
        cluster_id,
    } = input;
    let unit_text = |unit: &str| {
        rendered
            .support
            .get(paths::unit_path(unit.trim_end_matches(".service")))
            .unwrap_or_default()
            .to_owned()
    };
    let digest = |parts: &[&str]| {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p.as_bytes());
            h.update([0]);
        }
        hex::encode(h.finalize())
    };
    let proxy_config = validated("lb/proxy-config", &rendered.proxy_config);
    let keepalived_config = validated("lb/keepalived-config", &rendered.keepalived_config);
    // What a reload applies: the proxy re-reads its configuration and CA;
    // keepalived its configuration and the scripts it calls.
    let support_digest = rendered.support.digest();
    let proxy_service = SystemdService::new(
        "lb/proxy",
        rendered.proxy_unit,
        digest(&[&unit_text(rendered.proxy_unit)]),
    )
    .reloading(digest(&[&proxy_config.digest(), &support_digest]));
    let keepalived_service = SystemdService::new(
        "lb/keepalived",
        rendered.keepalived_unit,
        digest(&[&unit_text(rendered.keepalived_unit)]),
    )
    .reloading(digest(&[&keepalived_config.digest(), &support_digest]));

    vec![
        Box::new(record_cluster_id(&cluster_id)),
        Box::new(WriteFiles::new(
            "lb/files",
            "write the cluster CA, the health-check and notify scripts, and the units",
            rendered.support,
        )),
        remove_proxy(other(proxy)),
        Box::new(proxy_config),
        Box::new(proxy_service),
        Box::new(keepalived_config),
        Box::new(keepalived_service),
    ]
}

/// The task that validates `file` beside the live one and swaps it in.
fn validated(id: &str, file: &CheckedFile) -> ValidatedFile {
    ValidatedFile::new(
        id,
        file.path.clone(),
        file.contents.clone(),
        file.mode,
        file.validate_command(&ValidatedFile::staging_path(&file.path)),
    )
}

fn other(proxy: Proxy) -> Proxy {
    match proxy {
        Proxy::HaProxy => Proxy::Nginx,
        Proxy::Nginx => Proxy::HaProxy,
    }
}

/// Stops and removes kubeseed's unit and configuration of `proxy` (the
/// implementation the host no longer runs).
fn remove_proxy(proxy: Proxy) -> Box<dyn Task> {
    let unit = proxy.unit();
    let files = [
        quote(proxy.config_path()),
        quote(&paths::unit_path(unit.trim_end_matches(".service"))),
        quote(&format!("{UNIT_STATE_DIR}/{unit}.sha256")),
        quote(&format!("{UNIT_STATE_DIR}/{unit}.reload.sha256")),
    ]
    .join(" ");
    let unit = quote(unit);
    Box::new(
        Shell::new(
            format!("lb/remove-{}", proxy.package()),
            format!("stop and remove kubeseed's {}", proxy.package()),
            format!(
                "systemctl disable --now {unit} 2>/dev/null; rm -f {files}; systemctl daemon-reload; true"
            ),
        )
        .unless(
            format!(
                "! systemctl is-active --quiet {unit} && for f in {files}; do [ ! -e \"$f\" ] || exit 1; done"
            ),
            "present",
        )
        .timeout(Duration::from_secs(120)),
    )
}

/// A load-balancer host's way out: keepalived stopped first (it gives the
/// VIP up at once, so another host takes it without waiting for the
/// master-down interval), then the proxies; kubeseed's files removed. The
/// cluster id stays when the host is also a master (its own teardown
/// removes it).
pub fn teardown_load_balancer() -> Vec<Box<dyn Task>> {
    let units = [KEEPALIVED_UNIT, Proxy::HaProxy.unit(), Proxy::Nginx.unit()];
    let unit_list = units.join(" ");
    let mut files: Vec<String> = vec![quote(LB_DIR)];
    if let Some(dir) = std::path::Path::new(TRANSITIONS_LOG).parent() {
        files.push(quote(&dir.display().to_string()));
    }
    for unit in units {
        files.push(quote(&paths::unit_path(unit.trim_end_matches(".service"))));
        files.push(quote(&format!("{UNIT_STATE_DIR}/{unit}.sha256")));
        files.push(quote(&format!("{UNIT_STATE_DIR}/{unit}.reload.sha256")));
    }
    let files = files.join(" ");
    let cluster_id = quote(CLUSTER_ID_FILE);
    vec![
        Box::new(
            Shell::new(
                "leave/stop-units",
                "stop keepalived (the VIP moves at once), then the proxy",
                format!(
                    "for u in {unit_list}; do systemctl disable --now \"$u\" 2>/dev/null; systemctl reset-failed \"$u\" 2>/dev/null; done; true"
                ),
            )
            .unless(
                format!("for u in {unit_list}; do ! systemctl is-active --quiet \"$u\" || exit 1; done"),
                "units running",
            )
            .timeout(Duration::from_secs(120)),
        ),
        Box::new(
            Shell::new(
                "leave/files",
                "remove the load balancer's configuration, scripts and units",
                format!(
                    "rm -rf {files}; [ -d /etc/kubernetes ] || rm -f {cluster_id}; systemctl daemon-reload"
                ),
            )
            .unless(
                format!(
                    "for p in {files}; do [ ! -e \"$p\" ] || exit 1; done; [ -d /etc/kubernetes ] || [ ! -e {cluster_id} ]"
                ),
                "files present",
            ),
        ),
    ]
}
