//! The operator's HTTP endpoints: `/healthz` (liveness), `/readyz` (readiness)
//! and `/metrics` (Prometheus text format).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::controllers::StopSignal;
use crate::metrics::Metrics;

/// What readiness is judged on.
///
/// A replica is ready when it reached the API server recently, leader or not:
/// a standby that can take over is healthy, and a Deployment rollout must not
/// wait for it to win an election.
#[derive(Clone, Debug)]
pub struct Health {
    last_api_ok: Arc<Mutex<Option<Instant>>>,
    stale_after: Duration,
    stopping: Arc<std::sync::atomic::AtomicBool>,
}

impl Health {
    /// Readiness lapses when the API server was not reached for `stale_after`.
    pub fn new(stale_after: Duration) -> Self {
        Health {
            last_api_ok: Arc::new(Mutex::new(None)),
            stale_after,
            stopping: Arc::default(),
        }
    }

    /// Records a successful API round trip.
    pub fn api_ok(&self) {
        if let Ok(mut t) = self.last_api_ok.lock() {
            *t = Some(Instant::now());
        }
    }

    /// Marks the process as shutting down: not ready any more.
    pub fn stopping(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the process should receive traffic, and why not.
    pub fn ready(&self) -> Result<(), &'static str> {
        if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("shutting down");
        }
        match self.last_api_ok.lock().ok().and_then(|t| *t) {
            None => Err("the API server has not been reached yet"),
            Some(t) if t.elapsed() > self.stale_after => {
                Err("the API server has not been reached recently")
            }
            Some(_) => Ok(()),
        }
    }
}

#[derive(Clone)]
struct AppState {
    health: Health,
    metrics: Metrics,
}

/// The router of the endpoints.
pub fn router(health: Health, metrics: Metrics) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { health, metrics })
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.health.ready() {
        Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")),
    }
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    match s.metrics.encode() {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Binds `addr` now (so a port clash fails at start-up, not later) and returns
/// the bound address and the future that serves until `stop` completes.
pub async fn bind(
    addr: SocketAddr,
    health: Health,
    metrics: Metrics,
    stop: StopSignal,
) -> std::io::Result<(SocketAddr, impl Future<Output = std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(health, metrics);
    let serve = async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
    };
    Ok((local, serve))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_ready_until_the_api_answered_and_after_stopping() {
        let h = Health::new(Duration::from_secs(10));
        assert!(h.ready().is_err());
        h.api_ok();
        assert!(h.ready().is_ok());
        h.stopping();
        assert_eq!(h.ready(), Err("shutting down"));
    }

    #[test]
    fn readiness_lapses_when_the_api_is_not_reached() {
        let h = Health::new(Duration::ZERO);
        h.api_ok();
        std::thread::sleep(Duration::from_millis(2));
        assert!(h.ready().is_err());
    }

    #[tokio::test]
    async fn serves_the_three_endpoints_on_loopback() -> Result<(), Box<dyn std::error::Error>> {
        let health = Health::new(Duration::from_secs(10));
        let latch = crate::shutdown::Latch::new();
        let (addr, serve) = bind(
            "127.0.0.1:0".parse()?,
            health.clone(),
            Metrics::new(),
            latch.wait(),
        )
        .await?;
        let server = tokio::spawn(serve);
        let get = |path: &'static str| async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
                .await?;
            let mut out = String::new();
            s.read_to_string(&mut out).await?;
            Ok::<_, std::io::Error>(out)
        };
        assert!(get("/healthz").await?.contains(" 200 "));
        assert!(get("/readyz").await?.contains(" 503 "));
        health.api_ok();
        assert!(get("/readyz").await?.contains(" 200 "));
        let metrics = get("/metrics").await?;
        assert!(metrics.contains("kubeseed_leader 0"), "{metrics}");
        latch.trigger();
        server.await??;
        Ok(())
    }
}
