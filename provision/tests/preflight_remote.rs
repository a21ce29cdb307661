//! Preflight of a host you name, through the real SSH engine: prints the
//! report as a table and as JSON. Ignored by default (it needs a host).
//!
//! ```sh
//! KUBESEED_PREFLIGHT_HOST=10.213.8.11 \
//! KUBESEED_PREFLIGHT_KEY=/var/lib/kubeseed-lab/pfcheck/id_ed25519 \
//! KUBESEED_PREFLIGHT_KNOWN_HOSTS=/var/lib/kubeseed-lab/pfcheck/known_hosts \
//! cargo test -p kubeseed-provision --test preflight_remote -- --ignored --nocapture
//! ```
//!
//! Optional: `KUBESEED_PREFLIGHT_USER` (root), `KUBESEED_PREFLIGHT_PORT`
//! (22), `KUBESEED_PREFLIGHT_ROLE` (`master`, `worker` or `etcd`).
//!
//! Kind of test: a real remote host the caller provides; read-only there.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use kubeseed_provision::preflight::{self, Expectations};
use kubeseed_provision::ssh::*;

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::test]
#[ignore = "needs a host: set KUBESEED_PREFLIGHT_HOST, _KEY and _KNOWN_HOSTS"]
async fn preflight_of_a_named_host() {
    let host = var("KUBESEED_PREFLIGHT_HOST").expect("KUBESEED_PREFLIGHT_HOST");
    let key = var("KUBESEED_PREFLIGHT_KEY").expect("KUBESEED_PREFLIGHT_KEY");
    let known = var("KUBESEED_PREFLIGHT_KNOWN_HOSTS").expect("KUBESEED_PREFLIGHT_KNOWN_HOSTS");
    let user = var("KUBESEED_PREFLIGHT_USER").unwrap_or_else(|| "root".into());
    let port: u16 = var("KUBESEED_PREFLIGHT_PORT").map_or(22, |p| p.parse().unwrap());
    let target = SshTarget::new(
        &host,
        &user,
        Auth::key_file(key),
        HostKeyPolicy::KnownHosts(PathBuf::from(known)),
    )
    .with_port(port);
    let (session, _) = Session::connect(&target, &Limits::default()).await.unwrap();
    let facts = preflight::gather(&session).await.unwrap();
    let mut expect = match var("KUBESEED_PREFLIGHT_ROLE").as_deref() {
        Some("worker") => Expectations::worker(),
        Some("etcd") => Expectations::etcd(),
        _ => Expectations::control_plane(),
    };
    expect.advertise_address = host.parse().ok();
    let report = preflight::evaluate(&facts, &expect);
    println!("{report}");
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    println!("{:?}", facts.host_profile());
    if let Some(sys) = &facts.system {
        let (lo, hi) = sys.clock.skew_bounds().unwrap();
        println!("clock skew in [{lo:+.4}, {hi:+.4}] s");
    }
}
