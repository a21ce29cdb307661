//! An operator process started by a test, and stopped by its PID.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kubeseed_testenv::ports::free_port;

use super::run_ok;

/// Namespace the chart is installed into by the tests.
pub const NS: &str = "kubeseed-system";

/// One operator process, a child of this test; killed by PID if still running
/// when dropped.
pub struct Operator {
    pub identity: String,
    pub child: Child,
    port: u16,
    log: PathBuf,
}

impl Operator {
    pub fn start(identity: &str, kubeconfig: &Path, dir: &Path) -> Operator {
        Self::start_with(identity, kubeconfig, dir, &[])
    }

    pub fn start_with(identity: &str, kubeconfig: &Path, dir: &Path, extra: &[&str]) -> Operator {
        let port = free_port().unwrap();
        let log = dir.join(format!("{identity}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_kubeseed-operator"))
            .args([
                "--identity",
                identity,
                "--http-addr",
                &format!("127.0.0.1:{port}"),
                "--log-format",
                "json",
                "--lease-duration=3s",
                "--renew-deadline=2s",
                "--retry-period=500ms",
            ])
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAMESPACE", NS)
            .env("RUST_LOG", "warn,kubeseed_operator=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Operator {
            identity: identity.into(),
            child,
            port,
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        let code = out.split(' ').nth(1)?.parse().ok()?;
        let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
        Some((code, body))
    }

    pub async fn metrics(&self) -> String {
        self.get("/metrics")
            .await
            .map(|(_, b)| b)
            .unwrap_or_default()
    }

    pub async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some((200, _)) = self.get("/readyz").await {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited ({status}):\n{}", self.identity, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "{} never ready:\n{}",
                self.identity,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn sigterm(&self) {
        let pid = self.child.id().to_string();
        run_ok(Command::new("kill").args(["-TERM", &pid]));
    }

    pub fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit:\n{}",
                self.identity,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // Child::kill sends SIGKILL to this child's PID only.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Installs the chart with Helm 4 into [`NS`], as a user would.
pub fn install_chart(cp: &kubeseed_testenv::controlplane::ControlPlane) {
    run_ok(
        cp.helm()
            .args(["install", "kubeseed"])
            .arg(super::chart())
            .args(["--namespace", NS, "--create-namespace"]),
    );
}

/// A kubeconfig that authenticates as the chart's ServiceAccount (a
/// TokenRequest token), so the operator runs with the chart's RBAC, not admin.
pub async fn service_account_kubeconfig(
    cp: &kubeseed_testenv::controlplane::ControlPlane,
) -> PathBuf {
    let token = cp
        .service_account_token(NS, "kubeseed", 3600)
        .await
        .unwrap();
    cp.kubeconfig_for_token("operator", &token).unwrap()
}
