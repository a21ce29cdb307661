//! The two scripts keepalived runs (bash, mode 0755, owned by root: with
//! `enable_script_security` keepalived refuses scripts anyone else could
//! change).

use super::{Layout, Proxy};
use crate::render::HEADER;

/// `check-proxy.sh`: keepalived's `vrrp_script`. Exits 0 only if the
/// proxy's unit is active and `127.0.0.1:port` accepts a TCP connection
/// within a second (bash's `/dev/tcp`; the proxy listens on every address,
/// IPv4 included, whatever the VIP's family).
pub(super) fn check_proxy(proxy: Proxy, port: u16) -> String {
    let unit = proxy.unit();
    format!(
        "#!/bin/bash
{HEADER}
# keepalived's check of this host's proxy: 0 only if {unit} is
# active and 127.0.0.1:{port} accepts a TCP connection within 1 s. Two
# failures in a row put the VRRP instance in FAULT, which gives the VIP up.
: \"${{PATH:=/usr/sbin:/usr/bin:/sbin:/bin}}\"
systemctl is-active --quiet {unit} || exit 1
timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null || exit 1
exit 0
"
    )
}

/// `vrrp-notify.sh`: keepalived's `notify`, called as `SCRIPT TYPE NAME
/// STATE PRIORITY` on every transition. Appends `<unix
/// seconds.nanoseconds> NAME STATE` to the transitions log and writes STATE
/// to the state file. keepalived starts these without waiting for the
/// previous one, so they take turns (`flock` on the log) and a late one
/// does not overwrite a newer state. It never fails.
pub(super) fn vrrp_notify(layout: &Layout) -> String {
    let log = layout.transitions_log();
    let state = layout.state_file();
    let state_dir = &layout.state_dir;
    let run_dir = layout.keepalived_runtime_dir();
    format!(
        "#!/bin/bash
{HEADER}
# keepalived's notify script, called as: vrrp-notify.sh TYPE NAME STATE PRIORITY
# Appends \"<unix seconds.nanoseconds> NAME STATE\" to {log}
# and writes STATE to {state}. Always exits 0.
: \"${{PATH:=/usr/sbin:/usr/bin:/sbin:/bin}}\"
name=${{2:-}}
state=${{3:-}}
now=$(date +%s.%N)
{{
  mkdir -p {state_dir}
  exec 9>>{log}
  flock -w 5 9
  last=$(tail -n 1 {log} | cut -d ' ' -f 1)
  [[ $last =~ ^[0-9]+\\.[0-9]{{9}}$ ]] || last=0.000000000
  printf '%s %s %s\\n' \"$now\" \"$name\" \"$state\" >&9
  # A transition reported late does not overwrite a newer one.
  if (( 10#${{now/./}} >= 10#${{last/./}} )); then
    mkdir -p {run_dir}
    printf '%s\\n' \"$state\" >{state}.tmp
    mv -f {state}.tmp {state}
  fi
}} 2>/dev/null
exit 0
"
    )
}
