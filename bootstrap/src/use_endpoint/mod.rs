//! `bootstrap use-endpoint`: points the workstation's admin kubeconfig at
//! the cluster's load-balanced endpoint, the last manual step of an HA setup.
//!
//! The operator publishes an `ApiLoadBalancer`'s VIP (and DNS names, and the
//! port it listens on) in the cluster's record, re-issues every apiserver's
//! certificate to name it and restarts them one at a time; it cannot reach
//! the workstation, whose `admin.conf` still names the first master. This
//! command:
//!
//! 1. reads the cluster's record (ConfigMap `kubeseed-system/kubeseed-cluster`)
//!    through whatever server `admin.conf` names now;
//! 2. computes the endpoint from it as the masters do
//!    (`ClusterSpec::server_url`), and refuses another cluster's record or one
//!    without a VIP;
//! 3. checks the endpoint serves the API: `GET /readyz` through it with the
//!    kubeconfig's own CA, client credentials and full TLS name checking,
//!    over several fresh connections (a balancer spreads them over masters);
//! 4. only then replaces, atomically, `cluster.json` (the endpoint fields
//!    merged in) and `admin.conf` (only the server of the current context's
//!    cluster entry changes).
//!
//! Any failure changes nothing; a second run finds nothing to change.

mod kubeconfig;
mod plan;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

use crate::cli::UseEndpointArgs;
use crate::seed::{CLUSTER_CONFIG_MAP, NAMESPACE, RECORD_KEY};
use crate::state::{ClusterRecord, StateDir};

use plan::describe_endpoint;

/// How long reading the record or one probe may take, all in.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Connect timeout of each connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Fresh connections the new endpoint must serve: a TCP balancer sends
/// each to a master in turn, and every master's certificate must name it.
const PROBE_CONNECTIONS: usize = 4;

/// Runs `bootstrap use-endpoint`.
pub async fn run(args: UseEndpointArgs) -> anyhow::Result<()> {
    let state_path = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => StateDir::default_for(&args.cluster_name)?,
    };
    // Never create a state directory here: it would hold no cluster.
    if !state_path.is_dir() {
        bail!(
            "there is no state directory at {}: seed the cluster first (`bootstrap seed HOST`), \
             or give its --state-dir / --cluster-name",
            state_path.display()
        );
    }
    let state = StateDir::open(&state_path)?;
    let local = state.record()?.ok_or_else(|| {
        anyhow!(
            "{} does not exist: {} holds no seeded cluster",
            state.record_path().display(),
            state.path().display()
        )
    })?;
    let admin_path = state.admin_kubeconfig();
    let admin_text = std::fs::read_to_string(&admin_path)
        .with_context(|| format!("cannot read the admin kubeconfig {}", admin_path.display()))?;
    // read_from resolves file references relative to the kubeconfig's directory.
    let admin = Kubeconfig::read_from(&admin_path)
        .with_context(|| format!("cannot read the admin kubeconfig {}", admin_path.display()))?;
    let target = kubeconfig::target(&admin)
        .with_context(|| format!("the admin kubeconfig {}", admin_path.display()))?;

    eprintln!(
        "reading the cluster's record (ConfigMap {NAMESPACE}/{CLUSTER_CONFIG_MAP}) from {}",
        target.server
    );
    let cluster = fetch_record(&admin, &target.server, &admin_path).await?;
    let plan = plan::plan(&local, &cluster)?;
    let server_changes = target.server.trim_end_matches('/') != plan.server;
    let record_changes = plan.record != local;
    if !server_changes && !record_changes {
        println!(
            "admin kubeconfig already points at {}: nothing to change\n  {}",
            plan.server,
            admin_path.display()
        );
        return Ok(());
    }

    let edited = if server_changes {
        let edited = kubeconfig::set_server(&admin_text, &target.cluster, &plan.server)
            .with_context(|| {
                format!("cannot edit the admin kubeconfig {}", admin_path.display())
            })?;
        kubeconfig::check_edit(&edited.text, &target, &plan.server)?;
        eprintln!(
            "checking that {} serves the API with this kubeconfig's CA and credentials ({} connections)",
            plan.server, PROBE_CONNECTIONS
        );
        probe(&admin, &target.cluster, &plan.server).await?;
        Some(edited)
    } else {
        None
    };

    let dry = if args.dry_run {
        "  (dry run: not written)"
    } else {
        ""
    };
    if !args.dry_run {
        // The record first: a run stopped between the two writes leaves an
        // admin.conf that still works, and the next run finishes the job.
        if record_changes {
            state.save_record(&plan.record)?;
        }
        if let Some(edited) = &edited {
            state.write("admin.conf", edited.text.as_bytes())?;
        }
    }
    if let Some(edited) = &edited {
        println!("admin kubeconfig: {} -> {}", target.server, plan.server);
        println!("  {}{dry}", admin_path.display());
        if !edited.minimal {
            println!(
                "  (its server could not be edited in place: the file was rewritten with the same \
                 content, without comments)"
            );
        }
    } else {
        println!("admin kubeconfig already points at {}", plan.server);
    }
    if record_changes {
        println!(
            "cluster record: {} -> {}",
            describe_endpoint(&local),
            plan.describe()
        );
        println!("  {}{dry}", state.record_path().display());
    }
    if edited.is_some() && !args.dry_run {
        println!(
            "\ncopies of the admin kubeconfig made earlier (such as ~/.kube/config) still name {}",
            target.server
        );
    }
    Ok(())
}

/// A client for `kubeconfig`'s current context, with timeouts.
async fn client(kubeconfig: Kubeconfig) -> anyhow::Result<Client> {
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .context("cannot use the kubeconfig")?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(CALL_TIMEOUT);
    Client::try_from(config).context("cannot build a Kubernetes client")
}

/// The cluster's record, read through `server`.
async fn fetch_record(
    admin: &Kubeconfig,
    server: &str,
    admin_path: &Path,
) -> anyhow::Result<ClusterRecord> {
    let source = format!("ConfigMap {NAMESPACE}/{CLUSTER_CONFIG_MAP}");
    let unreachable = || {
        format!(
            "cannot read {source} from {server} with {} (if that server is gone, point the \
             kubeconfig's server at a live master and run this again; nothing was changed)",
            admin_path.display()
        )
    };
    let client = client(admin.clone()).await.with_context(unreachable)?;
    let maps: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    let map = tokio::time::timeout(CALL_TIMEOUT, maps.get_opt(CLUSTER_CONFIG_MAP))
        .await
        .map_err(|_| anyhow!("no answer within {} s", CALL_TIMEOUT.as_secs()))
        .with_context(unreachable)?
        .map_err(|e| anyhow!(cause(&e)))
        .with_context(unreachable)?
        .ok_or_else(|| {
            anyhow!(
                "{server} has no {source}: `bootstrap seed` writes it; is this a kubeseed \
                 cluster, and the one seeded from {}? Nothing was changed",
                admin_path.parent().unwrap_or(admin_path).display()
            )
        })?;
    let text = map
        .data
        .as_ref()
        .and_then(|d| d.get(RECORD_KEY))
        .ok_or_else(|| {
            anyhow!("{source} at {server} has no {RECORD_KEY:?}; nothing was changed")
        })?;
    serde_json::from_str(text).with_context(|| {
        format!("{source} at {server}: {RECORD_KEY} is not a kubeseed cluster record")
    })
}

/// `GET /readyz` through `server` over [`PROBE_CONNECTIONS`] fresh
/// connections, each a client of its own.
async fn probe(admin: &Kubeconfig, cluster: &str, server: &str) -> anyhow::Result<()> {
    let copy = kubeconfig::probing(admin, cluster, server)?;
    for _ in 0..PROBE_CONNECTIONS {
        let client = client(copy.clone())
            .await
            .with_context(|| format!("cannot check {server}; nothing was changed"))?;
        let request = http::Request::get("/readyz")
            .body(Vec::new())
            .context("cannot build the /readyz request")?;
        let answer = match tokio::time::timeout(CALL_TIMEOUT, client.request_text(request)).await {
            Ok(answer) => answer,
            Err(_) => bail!(
                "{server} does not serve the API: no answer to /readyz within {} s; nothing was \
                 changed",
                CALL_TIMEOUT.as_secs()
            ),
        };
        match answer {
            Ok(body) if body.trim() == "ok" => {}
            Ok(body) => bail!(
                "{server} is not ready: /readyz answered {:?}; nothing was changed",
                body.trim()
            ),
            Err(error) => return Err(probe_failure(server, error)),
        }
    }
    Ok(())
}

/// What a failed probe of `server` means, with what to do.
fn probe_failure(server: &str, error: kube::Error) -> anyhow::Error {
    let host = host_of(server);
    match tls_failure(&error) {
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. },
        )) => anyhow!(
            "the apiservers' certificates do not name {host} yet: wait until every \
             ControlPlaneMember shows Provisioned=True (kubectl get controlplanemembers) and run \
             this again; nothing was changed"
        )
        .context(format!("cannot switch to {server}")),
        Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) => {
            anyhow!(cause(&error)).context(format!(
                "{server} presents a certificate this cluster's CA did not sign: is {host} this \
                 cluster's endpoint? Nothing was changed"
            ))
        }
        _ => anyhow!(cause(&error)).context(format!(
            "{server} does not serve the API; nothing was changed"
        )),
    }
}

/// `error: cause: cause…`, skipping a cause whose text the message already
/// ends with (kube's and hyper's wrappers repeat it).
fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(inner) = next {
        let inner_text = inner.to_string();
        if !text.ends_with(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        next = inner.source();
    }
    text
}

/// The host of `https://host:port`, without brackets.
fn host_of(server: &str) -> &str {
    let rest = server.split_once("://").map_or(server, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// The TLS error somewhere in `error`'s chain, looking inside `io::Error`s
/// too (whose `source` skips the error they wrap).
fn tls_failure<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(io) = error.downcast_ref::<std::io::Error>()
        && let Some(inner) = io.get_ref()
        && let Some(tls) = tls_failure(inner)
    {
        return Some(tls);
    }
    error.source().and_then(tls_failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stands for hyper's client error, which wraps the connector's.
    #[derive(Debug)]
    struct Outer(Box<dyn std::error::Error + Send + Sync>);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("client error (Connect)")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn a_name_mismatch_deep_in_the_chain_says_what_to_do() {
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let error = kube::Error::Service(Box::new(Outer(Box::new(io))));
        let text = format!("{:#}", probe_failure("https://10.213.0.100:8443", error));
        assert!(
            text.contains(
                "the apiservers' certificates do not name 10.213.0.100 yet: wait until every \
                 ControlPlaneMember shows Provisioned=True (kubectl get controlplanemembers) and \
                 run this again"
            ),
            "{text}"
        );
    }

    #[test]
    fn other_failures_name_the_url_and_the_cause() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = kube::Error::Service(Box::new(Outer(Box::new(io))));
        let text = format!("{:#}", probe_failure("https://api.lab.example:6443", error));
        assert!(
            text.starts_with("https://api.lab.example:6443 does not serve the API"),
            "{text}"
        );
        assert!(text.contains("connection refused"), "{text}");
        // kube's wrapper repeats its cause: once is enough.
        assert_eq!(text.matches("client error (Connect)").count(), 1, "{text}");
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(host_of("https://10.0.0.1:6443"), "10.0.0.1");
        assert_eq!(host_of("https://[fd00::1]:6443"), "fd00::1");
        assert_eq!(host_of("https://api.example:6443/"), "api.example");
        assert_eq!(host_of("https://api.example"), "api.example");
    }
}
