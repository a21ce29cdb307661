//! Command-line flags (each with an environment variable, as the chart sets them).

use std::net::SocketAddr;
use std::time::Duration;

use crate::telemetry::LogFormat;

/// The operator's settings.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "kubeseed-operator", version, about)]
pub struct Config {
    /// Namespace the operator runs in: its Lease and its Secrets live there.
    #[arg(long, env = "POD_NAMESPACE", default_value = "kubeseed-system")]
    pub namespace: String,

    /// Identity in the leader election and in Events; the Pod name in-cluster.
    /// Defaults to `<hostname>-<pid>`.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,

    /// The Node this replica runs on (the chart sets it from `spec.nodeName`):
    /// a leave of that Node's member hands over to a replica elsewhere first.
    #[arg(long, env = "NODE_NAME")]
    pub node_name: Option<String>,

    /// Address of the `/healthz`, `/readyz` and `/metrics` endpoints.
    #[arg(long, env = "KUBESEED_HTTP_ADDR", default_value = "0.0.0.0:8481")]
    pub http_addr: SocketAddr,

    /// Log format.
    #[arg(long, env = "KUBESEED_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Run the controllers only while holding the leader Lease. Turn off only
    /// when a single replica runs.
    #[arg(long, env = "KUBESEED_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,

    /// Name of the leader Lease.
    #[arg(long, env = "KUBESEED_LEASE_NAME", default_value = "kubeseed-operator")]
    pub lease_name: String,

    /// How long a standby waits for an unrenewed Lease before taking it over
    /// (such as `15s`).
    #[arg(long, env = "KUBESEED_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub lease_duration: Duration,

    /// How long the leader keeps failing to renew before it steps down.
    #[arg(long, env = "KUBESEED_RENEW_DEADLINE", default_value = "10s", value_parser = parse_duration)]
    pub renew_deadline: Duration,

    /// Pause between attempts to acquire or renew the Lease.
    #[arg(long, env = "KUBESEED_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration)]
    pub retry_period: Duration,

    /// Where the bundles staged on this node are (the chart mounts the
    /// host's directory read-only): joining hosts are installed from the
    /// one the cluster was seeded with, every file checked by sha256.
    #[arg(
        long,
        env = "KUBESEED_BUNDLE_ROOT",
        default_value = "/var/lib/kubeseed/bundle"
    )]
    pub bundle_root: std::path::PathBuf,
}

/// Why the settings cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The timings of the election contradict each other.
    #[error(
        "leader election needs retry-period < renew-deadline < lease-duration (got {retry:?}, {renew:?}, {lease:?})"
    )]
    Timings {
        /// `--retry-period`
        retry: Duration,
        /// `--renew-deadline`
        renew: Duration,
        /// `--lease-duration`
        lease: Duration,
    },
}

impl Config {
    /// Checks what clap cannot: the relation between the election timings.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // A leader must give up before a standby may take over, or both would
        // run controllers at once.
        if !(self.retry_period < self.renew_deadline && self.renew_deadline < self.lease_duration) {
            return Err(ConfigError::Timings {
                retry: self.retry_period,
                renew: self.renew_deadline,
                lease: self.lease_duration,
            });
        }
        Ok(())
    }

    /// The identity, defaulted to `<hostname>-<pid>`.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_else(|_| "kubeseed-operator".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

/// Parses `500ms`, `15s`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 500ms, 15s or 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!(
            "{s:?}: unknown unit {unit:?}; use ms, s or m (such as 15s)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn defaults_are_consistent() -> Result<(), Box<dyn std::error::Error>> {
        let c = Config::try_parse_from(["kubeseed-operator"])?;
        c.validate()?;
        assert!(c.leader_elect);
        Ok(())
    }

    #[test]
    fn contradictory_timings_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let c = Config::try_parse_from([
            "kubeseed-operator",
            "--lease-duration=5s",
            "--renew-deadline=10s",
        ])?;
        assert!(c.validate().is_err());
        Ok(())
    }

    #[test]
    fn leader_election_can_be_turned_off() -> Result<(), Box<dyn std::error::Error>> {
        let c = Config::try_parse_from(["kubeseed-operator", "--leader-elect=false"])?;
        assert!(!c.leader_elect);
        Ok(())
    }
}
