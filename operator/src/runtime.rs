//! Wires the pieces into a process: endpoints, election, controllers, and an
//! orderly shutdown.
//!
//! Order on SIGTERM: readiness goes false, the controllers get
//! [`CONTROLLER_GRACE`] to finish their in-flight reconciles (then they are
//! cancelled), the Lease is released (a standby takes over within one retry
//! period), then the endpoints close. Order on lost leadership: the
//! controllers are cancelled at once, in-flight reconciles included (a standby
//! may lead a lease duration after the last renewal, and waiting for a
//! reconcile stuck on a dead API server would overrun that), and the process
//! exits non-zero so the kubelet restarts it as a fresh candidate, as
//! client-go operators do. Reconcile steps are idempotent, so a cancelled one
//! is simply redone by the next leader.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tracing::{info, warn};

use crate::config::Config;
use crate::context::Context;
use crate::controllers;
use crate::http::{self, Health};
use crate::leader::{Held, LeaderElector, LeaseConfig, Role};
use crate::metrics::Metrics;
use crate::shutdown::{Latch, trigger_on_signals};

/// Runs the operator until SIGTERM/SIGINT or lost leadership.
pub async fn run(config: Config) -> anyhow::Result<()> {
    config.validate()?;
    let identity = config.identity();
    let shutdown = Latch::new();
    trigger_on_signals(shutdown.clone()).context("cannot install signal handlers")?;

    let kube_config = kube::Config::infer()
        .await
        .context("cannot configure a Kubernetes client (in-cluster or KUBECONFIG)")?;
    let client = kube::Client::try_from(kube_config.clone())
        .context("cannot configure a Kubernetes client (in-cluster or KUBECONFIG)")?;
    // An eviction a PodDisruptionBudget refuses answers 429, which the
    // default client retries with a backoff of up to 1000 s: a drain would
    // hang there instead of reporting DrainStuck. Evictions get no retries.
    let mut no_retry = kube_config;
    no_retry.default_retry = false;
    let eviction_client = kube::Client::try_from(no_retry)
        .context("cannot configure a Kubernetes client (in-cluster or KUBECONFIG)")?;
    let metrics = Metrics::new();
    // A standby confirms it reaches the API every retry period; three missed
    // rounds (or one lease duration) make it unready.
    let health = Health::new(config.lease_duration.max(config.retry_period * 3));
    let http_stop = Latch::new();
    let (addr, serve) = http::bind(
        config.http_addr,
        health.clone(),
        metrics.clone(),
        http_stop.wait(),
    )
    .await
    .with_context(|| format!("cannot listen on {}", config.http_addr))?;
    let server = tokio::spawn(serve);
    info!(%addr, identity = %identity, namespace = %config.namespace, "kubeseed-operator started");

    let ctx = Arc::new(
        Context::new(
            client.clone(),
            &identity,
            metrics.clone(),
            kubeseed_provision::ssh::Limits::default(),
            &config.namespace,
            config.bundle_root.clone(),
            crate::context::Whereabouts {
                pod: config.identity.clone(),
                node: config.node_name.clone(),
            },
        )
        .with_eviction_client(eviction_client),
    );

    let result = if config.leader_elect {
        let lease = LeaseConfig {
            name: config.lease_name.clone(),
            namespace: config.namespace.clone(),
            identity: identity.clone(),
            lease_duration: config.lease_duration,
            renew_deadline: config.renew_deadline,
            retry_period: config.retry_period,
        };
        run_elected(
            LeaderElector::new(client, lease),
            ctx,
            &shutdown,
            &health,
            &metrics,
        )
        .await
    } else {
        client
            .apiserver_version()
            .await
            .context("cannot reach the API server")?;
        health.api_ok();
        // Without a Lease to renew, readiness needs its own proof of contact.
        let probe = tokio::spawn(probe_api(
            client,
            health.clone(),
            config.retry_period,
            shutdown.clone(),
        ));
        metrics.leader.set(1);
        let running = tokio::spawn(controllers::run_all(ctx, shutdown.wait()));
        shutdown.wait().await;
        health.stopping();
        stop_within(running, CONTROLLER_GRACE).await;
        probe.abort();
        Ok(())
    };

    health.stopping();
    http_stop.trigger();
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "HTTP server failed"),
        Err(e) => warn!(error = %e, "HTTP server task failed"),
    }
    info!("kubeseed-operator stopped");
    result
}

/// How long in-flight reconciles may run on after SIGTERM; below the chart's
/// terminationGracePeriodSeconds (30), leaving time to release the Lease.
pub const CONTROLLER_GRACE: Duration = Duration::from_secs(20);

/// Lets the controllers stop on their own within `grace`, then cancels them.
async fn stop_within(mut running: tokio::task::JoinHandle<()>, grace: Duration) {
    match tokio::time::timeout(grace, &mut running).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(error = %e, "controller task failed"),
        Err(_) => {
            warn!(
                ?grace,
                "cancelling the controllers and their in-flight reconciles"
            );
            running.abort();
            // Wait for the cancellation itself, so nothing runs on after.
            let _ = running.await;
        }
    }
    info!("controllers stopped");
}

/// Asks the API server for its version every `period` until `shutdown`,
/// recording each answer for `/readyz`.
async fn probe_api(client: kube::Client, health: Health, period: Duration, shutdown: Latch) {
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(period) => {}
        }
        match client.apiserver_version().await {
            Ok(_) => health.api_ok(),
            Err(e) => warn!(error = %e, "cannot reach the API server"),
        }
    }
}

/// Waits for leadership, runs the controllers while it lasts, and releases it
/// on shutdown.
async fn run_elected(
    mut elector: LeaderElector,
    ctx: Arc<Context>,
    shutdown: &Latch,
    health: &Health,
    metrics: &Metrics,
) -> anyhow::Result<()> {
    let retry = elector.config().retry_period;
    let attempt_timeout = elector.config().renew_deadline;
    let mut last_holder: Option<String> = None;
    let acquired_at = loop {
        let started = Instant::now();
        let attempt = tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            r = tokio::time::timeout(attempt_timeout, elector.try_acquire_or_renew()) => r,
        };
        match attempt {
            Ok(Ok(Role::Leader)) => {
                health.api_ok();
                break started;
            }
            Ok(Ok(Role::Follower(holder))) => {
                health.api_ok();
                if holder.is_some() && holder != last_holder {
                    info!(holder = ?holder, "standing by: another replica leads");
                    last_holder = holder;
                }
            }
            Ok(Err(e)) => warn!(error = %e, "cannot read the leader Lease"),
            Err(_) => warn!("reading the leader Lease timed out"),
        }
        tokio::select! {
            _ = shutdown.wait() => return Ok(()),
            _ = tokio::time::sleep(retry) => {}
        }
    };
    info!("became the leader; starting the controllers");
    metrics.leader.set(1);
    metrics.leader_acquisitions.inc();

    let stop_controllers = Latch::new();
    let running = tokio::spawn(controllers::run_all(ctx, stop_controllers.wait()));
    let h = health.clone();
    let held = elector
        .hold(shutdown.wait(), acquired_at, move || h.api_ok())
        .await;
    health.stopping();
    stop_controllers.trigger();
    let grace = match held {
        Held::Stopped => CONTROLLER_GRACE,
        Held::Lost => Duration::ZERO,
    };
    stop_within(running, grace).await;
    metrics.leader.set(0);
    match held {
        Held::Stopped => {
            // Bounded: a shutdown must not hang on an API server that is gone.
            match tokio::time::timeout(Duration::from_secs(5), elector.release()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(error = %e, "cannot release the leader Lease"),
                Err(_) => warn!("timed out releasing the leader Lease"),
            }
            Ok(())
        }
        Held::Lost => anyhow::bail!("lost the leader Lease; exiting so a fresh candidate starts"),
    }
}
