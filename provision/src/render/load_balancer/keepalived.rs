//! keepalived: `keepalived.conf` (one VRRPv3 instance) and
//! `kubeseed-keepalived.service`.
//!
//! Every host starts as `BACKUP`; the highest priority whose proxy passes
//! `check-proxy.sh` becomes master and adds
//! the VIP. A host whose check fails twice goes to `FAULT` and gives the VIP
//! up. Adverts go by unicast to the other load-balancer hosts; a host
//! without peers advertises by multicast (keepalived refuses unicast
//! without peers: "A unicast keyword has been specified without any unicast
//! peers").
//!
//! The VRRP process runs with realtime priority (`vrrp_rt_priority`), so
//! its adverts leave on time on a loaded host: a late advert makes a backup
//! take the VIP while the master still holds it. keepalived 2.2.7 accepts
//! it (`keepalived -t`), and its VRRP process then runs `SCHED_RR`.

use std::net::IpAddr;

use super::units::{Unit, exec};
use super::{Layout, LoadBalancerInput, shell_word};
use crate::render::HEADER;
use crate::render::error::Result;

/// The unit's `RuntimeDirectory=`: pid files and the state file.
pub(super) const RUNTIME_DIR_NAME: &str = "kubeseed-keepalived";

/// The realtime (`SCHED_RR`) priority of the VRRP process (1..=99): above
/// every ordinary process, in the middle of the realtime range.
const RT_PRIORITY: u8 = 50;

/// The check script's name in the configuration.
const SCRIPT_NAME: &str = "kubeseed_proxy";

/// `advert_int` in seconds with at most two decimals (`0.2`, `1`, `1.25`).
pub(super) fn advert_int(ms: u32) -> String {
    let centis = ms / 10;
    let (s, c) = (centis / 100, centis % 100);
    match c {
        0 => s.to_string(),
        c if c % 10 == 0 => format!("{s}.{}", c / 10),
        c => format!("{s}.{c:02}"),
    }
}

/// A router id from this host's address (`kubeseed-10.213.0.31`): shown in
/// keepalived's logs.
fn router_id(source: IpAddr) -> String {
    format!("kubeseed-{source}")
}

/// `keepalived.conf`.
pub(super) fn config(input: &LoadBalancerInput, layout: &Layout) -> String {
    let v = &input.vrrp;
    let mut adverts = String::new();
    if v.unicast_peers.is_empty() {
        adverts.push_str(&format!(
            "    # No other load-balancer host: adverts by multicast.\n    mcast_src_ip {}\n",
            v.unicast_source
        ));
    } else {
        adverts.push_str(&format!(
            "    unicast_src_ip {}\n    unicast_peer {{\n",
            v.unicast_source
        ));
        for peer in &v.unicast_peers {
            adverts.push_str(&format!("        {peer}\n"));
        }
        adverts.push_str("    }\n");
    }
    format!(
        "{HEADER}
# kubeseed's API VIP: VRRPv3 between the load-balancer hosts. The VIP goes
# to the highest priority whose proxy passes {check}.

global_defs {{
    router_id {router_id}
    vrrp_version 3
    enable_script_security
    script_user root
    # Realtime scheduling for the VRRP process: adverts on time on a busy host.
    vrrp_rt_priority {RT_PRIORITY}
    # The priority is set above: no automatic increases, and no notice
    # suggesting them at every start.
    max_auto_priority -1
}}

vrrp_script {SCRIPT_NAME} {{
    script \"{check}\"
    interval 1
    timeout 1
    fall 2
    rise 2
}}

vrrp_instance {instance} {{
    state BACKUP
    interface {interface}
    virtual_router_id {router}
    priority {priority}
    advert_int {advert}
{adverts}    virtual_ipaddress {{
        {vip}/{prefix} dev {interface}
    }}
    track_script {{
        {SCRIPT_NAME}
    }}
    notify \"{notify}\"
}}
",
        check = layout.check_script(),
        router_id = router_id(v.unicast_source),
        instance = v.instance,
        interface = input.interface,
        router = v.router_id,
        priority = v.priority,
        advert = advert_int(v.advert_interval_ms),
        vip = input.vip,
        prefix = input.prefix_len,
        notify = layout.notify_script(),
    )
}

/// The validator of a copy at `{}`: it also checks that the interface
/// exists and that both scripts are there and safe (owned by root, not
/// writable by others), so run it after the scripts are written.
pub(super) fn validate(program: &str) -> String {
    format!("{} -t -f {{}}", shell_word(program))
}

/// `kubeseed-keepalived.service`.
pub(super) fn unit(program: &str, proxy: super::Proxy, layout: &Layout) -> Result<String> {
    let config = layout.keepalived_config();
    let run = layout.keepalived_runtime_dir();
    let check = exec(program, &["-t", "-f", &config])?;
    Ok(Unit {
        description: "kubeseed: the API VIP (keepalived VRRP)",
        documentation: &["man:keepalived(8)", "man:keepalived.conf(5)"],
        // The proxy first at boot: the check script looks for it.
        after: vec![proxy.unit()],
        service: vec![
            // keepalived tells systemd when it has started (--dont-fork).
            ("Type", "notify".into()),
            ("ExecStartPre", check.clone()),
            (
                "ExecStart",
                exec(
                    program,
                    &[
                        "--dont-fork",
                        "--log-console",
                        // Everything once, through the journal's stdout.
                        "--no-syslog",
                        "--vrrp",
                        "--use-file",
                        &config,
                        "--pid",
                        &format!("{run}/keepalived.pid"),
                        "--vrrp_pid",
                        &format!("{run}/vrrp.pid"),
                    ],
                )?,
            ),
            ("ExecReload", check),
            ("ExecReload", "/bin/kill -HUP $MAINPID".into()),
            ("Restart", "always".into()),
            ("RestartSec", "2s".into()),
            ("RuntimeDirectory", RUNTIME_DIR_NAME.into()),
        ],
    }
    .render())
}
