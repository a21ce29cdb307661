//! A real etcd and kube-apiserver on loopback, started by a test.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use kubeseed_testenv::controlplane::ControlPlane;
//! let cp = ControlPlane::start().await?;
//! let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(cp.client());
//! let listed = namespaces.list(&Default::default()).await?;
//! let status = cp.kubectl().args(["get", "ns"]).status()?;
//! # Ok(()) }
//! ```
//!
//! Dropping the [`ControlPlane`] stops kube-apiserver and then etcd by PID
//! (SIGTERM, then SIGKILL after a grace period), reaps them and removes the
//! temporary directory, also when the test panics. Set
//! `KUBESEED_TESTENV_KEEP=1` to keep the directory (logs, certificates, etcd
//! data) for debugging.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use tracing::Instrument as _;

use crate::flags::{self, Layout, Ports};
use crate::kubeconfig::{self, Credentials};
use crate::pki::ControlPlanePki;
use crate::ports::free_port;
use crate::process::Supervised;
use crate::toolchain::{Toolchain, ToolchainError};

const STOP_GRACE: Duration = Duration::from_secs(5);
const PORT_ATTEMPTS: usize = 3;
const KEEP_ENV: &str = "KUBESEED_TESTENV_KEEP";

/// Why a control plane could not be started or used.
///
/// `Debug` prints the same text as `Display`, so a test's `.unwrap()` shows
/// the whole explanation (what failed, the log tail, what to do).
#[derive(thiserror::Error)]
pub enum Error {
    /// The toolchain is not built.
    #[error(transparent)]
    Toolchain(#[from] ToolchainError),
    /// Generating certificates failed.
    #[error("cannot generate test certificates: {0}")]
    Pki(#[from] rcgen::Error),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: io::Error,
    },
    /// A program exited while the control plane was starting.
    #[error("{program} exited during start-up ({status}); last lines of {log}:\n{tail}")]
    Exited {
        /// `etcd` or `kube-apiserver`.
        program: String,
        /// Its exit status.
        status: String,
        /// Its log file (removed with the temporary directory).
        log: PathBuf,
        /// The end of its log.
        tail: String,
    },
    /// /readyz did not answer `ok` in time.
    #[error(
        "kube-apiserver was not ready within {timeout:?} (last /readyz answer: {last}); \
         last lines of its log:\n{tail}"
    )]
    NotReady {
        /// The start timeout.
        timeout: Duration,
        /// The last error or body /readyz gave.
        last: String,
        /// The end of the apiserver log.
        tail: String,
    },
    /// A kubeconfig could not be turned into a client.
    #[error("cannot build a Kubernetes client: {0}")]
    Config(#[from] kube::config::KubeconfigError),
    /// An API call failed.
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Options for [`ControlPlane`]; start with [`ControlPlane::builder`].
#[derive(Debug, Clone)]
pub struct ControlPlaneBuilder {
    toolchain: Option<Toolchain>,
    pki: Option<ControlPlanePki>,
    apiserver_args: Vec<String>,
    etcd_args: Vec<String>,
    start_timeout: Duration,
}

impl Default for ControlPlaneBuilder {
    fn default() -> Self {
        Self {
            toolchain: None,
            pki: None,
            apiserver_args: Vec::new(),
            etcd_args: Vec::new(),
            // Generous: on a busy 2-core machine the first start (page cache
            // cold, other builds running) can take many seconds.
            start_timeout: Duration::from_secs(90),
        }
    }
}

impl ControlPlaneBuilder {
    /// Uses this toolchain instead of [`Toolchain::locate`].
    pub fn toolchain(mut self, toolchain: Toolchain) -> Self {
        self.toolchain = Some(toolchain);
        self
    }

    /// Uses this PEM material instead of freshly generated certificates, e.g.
    /// certificates made by kubeseed's own PKI. The serving certificates must
    /// cover 127.0.0.1; `admin` must be a `system:masters` client certificate
    /// signed by `ca_cert_pem`.
    pub fn pki(mut self, pki: ControlPlanePki) -> Self {
        self.pki = Some(pki);
        self
    }

    /// Adds a kube-apiserver flag (`--name=value`); it overrides a default.
    pub fn apiserver_arg(mut self, arg: impl Into<String>) -> Self {
        self.apiserver_args.push(arg.into());
        self
    }

    /// Adds an etcd flag (`--name=value`); it overrides a default.
    pub fn etcd_arg(mut self, arg: impl Into<String>) -> Self {
        self.etcd_args.push(arg.into());
        self
    }

    /// How long to wait for `/readyz` (default 90 s).
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// Starts etcd and kube-apiserver and waits until `/readyz` says ok.
    pub async fn start(self) -> Result<ControlPlane, Error> {
        let span = tracing::info_span!("testenv_start");
        self.start_inner().instrument(span).await
    }

    async fn start_inner(self) -> Result<ControlPlane, Error> {
        let started = Instant::now();
        let toolchain = match &self.toolchain {
            Some(t) => t.clone(),
            None => Toolchain::locate()?,
        };
        let pki = match &self.pki {
            Some(p) => p.clone(),
            None => ControlPlanePki::generate()?,
        };
        let dir = tempfile::Builder::new()
            .prefix("kubeseed-testenv-")
            .tempdir()
            .map_err(io_err(
                "cannot create the control plane's temporary directory",
            ))?;
        let layout = Layout {
            root: dir.path().to_path_buf(),
        };
        write_pki(&layout, &pki)?;

        let mut attempt = 0;
        loop {
            attempt += 1;
            let ports = Ports {
                etcd_client: free_port().map_err(io_err("cannot pick a port"))?,
                etcd_peer: free_port().map_err(io_err("cannot pick a port"))?,
                apiserver: free_port().map_err(io_err("cannot pick a port"))?,
            };
            match start_once(&toolchain, &layout, &pki, ports, &self, attempt).await {
                Ok((etcd, apiserver, client)) => {
                    let server_url = flags::apiserver_url(ports);
                    let kubeconfig = layout.root.join("admin.kubeconfig");
                    write_private(
                        &kubeconfig,
                        &admin_kubeconfig(&server_url, &pki).to_string(),
                    )?;
                    tracing::info!(
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        %server_url,
                        etcd_pid = etcd.pid(),
                        apiserver_pid = apiserver.pid(),
                        "control plane ready"
                    );
                    return Ok(ControlPlane {
                        apiserver,
                        etcd,
                        client,
                        server_url,
                        etcd_url: flags::etcd_url(ports),
                        kubeconfig,
                        layout,
                        toolchain,
                        pki,
                        startup: started.elapsed(),
                        dir: Some(dir),
                    });
                }
                Err(e) if attempt < PORT_ATTEMPTS && is_port_clash(&e) => {
                    tracing::warn!(attempt, "port taken between choosing and binding; retrying");
                    // etcd may have written part of a data dir before failing.
                    let _ = std::fs::remove_dir_all(layout.etcd_data());
                }
                Err(e) => return Err(e),
            }
        }
    }
}

fn is_port_clash(e: &Error) -> bool {
    match e {
        Error::Exited { tail, .. } | Error::NotReady { tail, .. } => {
            tail.contains("address already in use")
        }
        _ => false,
    }
}

fn admin_kubeconfig(server_url: &str, pki: &ControlPlanePki) -> serde_json::Value {
    kubeconfig::render(
        "kubeseed-testenv",
        server_url,
        &pki.ca_cert_pem,
        Credentials::ClientCert {
            cert_pem: &pki.admin.cert_pem,
            key_pem: &pki.admin.key_pem,
        },
    )
}

async fn client_from(doc: serde_json::Value) -> Result<Client, Error> {
    let kc: Kubeconfig = serde_json::from_value(doc).map_err(|e| Error::Io {
        what: "cannot read the generated kubeconfig".into(),
        source: io::Error::other(e),
    })?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

async fn start_once(
    toolchain: &Toolchain,
    layout: &Layout,
    pki: &ControlPlanePki,
    ports: Ports,
    opts: &ControlPlaneBuilder,
    attempt: usize,
) -> Result<(Supervised, Supervised, Client), Error> {
    let log_suffix = if attempt == 1 {
        String::new()
    } else {
        format!("-{attempt}")
    };
    let mut etcd = Supervised::spawn(
        "etcd",
        &toolchain.etcd(),
        &flags::etcd(layout, ports, &opts.etcd_args),
        layout.log(&format!("etcd{log_suffix}")),
    )
    .map_err(io_err("cannot start etcd"))?;
    let apiserver_args: Vec<OsString> = flags::apiserver(
        layout,
        ports,
        pki.front_proxy.is_some(),
        &opts.apiserver_args,
    );
    let mut apiserver = Supervised::spawn(
        "kube-apiserver",
        &toolchain.kube_apiserver(),
        &apiserver_args,
        layout.log(&format!("kube-apiserver{log_suffix}")),
    )
    .map_err(io_err("cannot start kube-apiserver"))?;

    let client = client_from(admin_kubeconfig(&flags::apiserver_url(ports), pki)).await?;
    let deadline = Instant::now() + opts.start_timeout;
    let mut last;
    loop {
        for child in [&mut etcd, &mut apiserver] {
            if let Some(status) = child.exited() {
                return Err(Error::Exited {
                    program: child.name().to_owned(),
                    status: status.to_string(),
                    log: child.log().to_path_buf(),
                    tail: child.log_tail(30),
                });
            }
        }
        match readyz(&client).await {
            Ok(body) if body.trim() == "ok" => return Ok((etcd, apiserver, client)),
            Ok(body) => last = body,
            Err(e) => last = e.to_string(),
        }
        if Instant::now() >= deadline {
            return Err(Error::NotReady {
                timeout: opts.start_timeout,
                last,
                tail: apiserver.log_tail(30),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn readyz(client: &Client) -> Result<String, kube::Error> {
    let req = http::Request::get("/readyz")
        .body(Vec::new())
        .map_err(kube::Error::HttpError)?;
    client.request_text(req).await
}

fn write_pki(layout: &Layout, pki: &ControlPlanePki) -> Result<(), Error> {
    let dir = layout.root.join("pki");
    std::fs::create_dir_all(&dir).map_err(io_err(format!("cannot create {}", dir.display())))?;
    let mut files: Vec<(&str, &str)> = vec![
        ("ca.crt", &pki.ca_cert_pem),
        ("apiserver.crt", &pki.apiserver.cert_pem),
        ("apiserver.key", &pki.apiserver.key_pem),
        ("admin.crt", &pki.admin.cert_pem),
        ("admin.key", &pki.admin.key_pem),
        ("etcd-ca.crt", &pki.etcd_ca_cert_pem),
        ("etcd-server.crt", &pki.etcd_server.cert_pem),
        ("etcd-server.key", &pki.etcd_server.key_pem),
        (
            "apiserver-etcd-client.crt",
            &pki.apiserver_etcd_client.cert_pem,
        ),
        (
            "apiserver-etcd-client.key",
            &pki.apiserver_etcd_client.key_pem,
        ),
        ("sa.key", &pki.service_account_key_pem),
        ("sa.pub", &pki.service_account_pub_pem),
    ];
    if let Some(fp) = &pki.front_proxy {
        files.push(("front-proxy-ca.crt", &fp.ca_cert_pem));
        files.push(("front-proxy-client.crt", &fp.client.cert_pem));
        files.push(("front-proxy-client.key", &fp.client.key_pem));
    }
    for (name, pem) in files {
        write_private(&layout.pki(name), pem)?;
    }
    Ok(())
}

/// Writes a file readable by its owner only (keys, kubeconfigs).
fn write_private(path: &Path, contents: &str) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let what = format!("cannot write {}", path.display());
    let mut f = std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(what.clone()))?;
    f.write_all(contents.as_bytes()).map_err(io_err(what))
}

/// A running etcd + kube-apiserver pair; see the module docs.
pub struct ControlPlane {
    apiserver: Supervised,
    etcd: Supervised,
    client: Client,
    server_url: String,
    etcd_url: String,
    kubeconfig: PathBuf,
    layout: Layout,
    toolchain: Toolchain,
    pki: ControlPlanePki,
    startup: Duration,
    // Dropped after the processes are stopped (see `Drop`).
    dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for ControlPlane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlane")
            .field("server_url", &self.server_url)
            .field("etcd_url", &self.etcd_url)
            .field("dir", &self.layout.root)
            .field("apiserver", &self.apiserver)
            .field("etcd", &self.etcd)
            .finish_non_exhaustive()
    }
}

impl ControlPlane {
    /// Starts one with fresh certificates and default flags.
    pub async fn start() -> Result<Self, Error> {
        Self::builder().start().await
    }

    /// Options: external PEM material, extra flags, timeout.
    pub fn builder() -> ControlPlaneBuilder {
        ControlPlaneBuilder::default()
    }

    /// A client with cluster-admin rights (`system:masters`).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The admin kubeconfig (certificates embedded; owner-only file).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// `https://127.0.0.1:PORT`.
    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// etcd's client URL (`https://127.0.0.1:PORT`, client certificates required).
    pub fn etcd_url(&self) -> &str {
        &self.etcd_url
    }

    /// The certificates and keys in use.
    pub fn pki(&self) -> &ControlPlanePki {
        &self.pki
    }

    /// The toolchain the programs came from.
    pub fn toolchain(&self) -> &Toolchain {
        &self.toolchain
    }

    /// The temporary directory (PEM files under `pki/`, logs, etcd data).
    pub fn dir(&self) -> &Path {
        &self.layout.root
    }

    /// The kube-apiserver log file.
    pub fn apiserver_log(&self) -> &Path {
        self.apiserver.log()
    }

    /// The etcd log file.
    pub fn etcd_log(&self) -> &Path {
        self.etcd.log()
    }

    /// PIDs of kube-apiserver and etcd, in that order.
    pub fn pids(&self) -> (u32, u32) {
        (self.apiserver.pid(), self.etcd.pid())
    }

    /// How long [`ControlPlaneBuilder::start`] took until `/readyz` said ok.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Issues a token for ServiceAccount `namespace/name` through the
    /// TokenRequest API (the account must exist).
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        expiration_seconds: i64,
    ) -> Result<String, Error> {
        let api: Api<ServiceAccount> = Api::namespaced(self.client(), namespace);
        let req = TokenRequest {
            spec: TokenRequestSpec {
                audiences: vec![flags::SERVICE_ACCOUNT_ISSUER.to_owned()],
                expiration_seconds: Some(expiration_seconds),
                ..Default::default()
            },
            ..Default::default()
        };
        let issued = api
            .create_token_request(name, &PostParams::default(), &req)
            .await?;
        Ok(issued.status.map(|s| s.token).unwrap_or_default())
    }

    /// A client that authenticates with `token` only (e.g. a ServiceAccount
    /// token, to test RBAC as that account).
    pub async fn client_for_token(&self, token: &str) -> Result<Client, Error> {
        client_from(self.token_kubeconfig(token)).await
    }

    /// Writes a kubeconfig authenticating with `token` into the temporary
    /// directory as `<name>.kubeconfig` and returns its path.
    pub fn kubeconfig_for_token(&self, name: &str, token: &str) -> Result<PathBuf, Error> {
        let path = self.layout.root.join(format!("{name}.kubeconfig"));
        write_private(&path, &self.token_kubeconfig(token).to_string())?;
        Ok(path)
    }

    fn token_kubeconfig(&self, token: &str) -> serde_json::Value {
        kubeconfig::render(
            "kubeseed-testenv-token",
            &self.server_url,
            &self.pki.ca_cert_pem,
            Credentials::Token(token),
        )
    }

    /// The toolchain's kubectl, with `KUBECONFIG` set to the admin
    /// kubeconfig and its discovery cache inside the temporary directory.
    /// (Wrap in `tokio::process::Command::from` for async use.)
    pub fn kubectl(&self) -> Command {
        let mut cmd = Command::new(self.toolchain.kubectl());
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.layout.root.join("kube-cache"));
        cmd
    }

    /// Helm 4 against this control plane (its cache, config and data under
    /// the temporary directory).
    pub fn helm(&self) -> Command {
        self.helm_command(self.toolchain.helm(), "helm4")
    }

    /// Helm 3 against this control plane.
    pub fn helm3(&self) -> Command {
        self.helm_command(self.toolchain.helm3(), "helm3")
    }

    fn helm_command(&self, program: PathBuf, home: &str) -> Command {
        let home = self.layout.root.join(home);
        let mut cmd = Command::new(program);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"));
        cmd
    }

    /// The toolchain's etcdctl, pointed at this etcd with the apiserver's
    /// etcd client certificate.
    pub fn etcdctl(&self) -> Command {
        let mut cmd = Command::new(self.toolchain.etcdctl());
        cmd.env("ETCDCTL_ENDPOINTS", &self.etcd_url)
            .env("ETCDCTL_CACERT", self.layout.pki("etcd-ca.crt"))
            .env("ETCDCTL_CERT", self.layout.pki("apiserver-etcd-client.crt"))
            .env("ETCDCTL_KEY", self.layout.pki("apiserver-etcd-client.key"));
        cmd
    }

    /// Stops both programs and removes the directory now (same as dropping).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // The directory (and with it the logs) is about to go; show what
            // the programs said so the failure can be understood.
            eprintln!(
                "kubeseed-testenv: test panicked; last lines of kube-apiserver log:\n{}\n\
                 kubeseed-testenv: last lines of etcd log:\n{}",
                self.apiserver.log_tail(20),
                self.etcd.log_tail(20)
            );
        }
        // The apiserver first, so it never sees its storage vanish.
        self.apiserver.stop(STOP_GRACE);
        self.etcd.stop(STOP_GRACE);
        if std::env::var_os(KEEP_ENV).is_some_and(|v| v == "1")
            && let Some(dir) = self.dir.take()
        {
            eprintln!("kubeseed-testenv: kept {}", dir.keep().display());
        }
    }
}
