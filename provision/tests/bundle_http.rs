//! Opening and verifying a bundle served over http(s).
//!
//! Kind of test: real servers started by the test on 127.0.0.1 only —
//! Python's `http.server` (plain, and wrapped in TLS with a CA made by the
//! test), stopped by PID when the test ends; and, for failures no ordinary
//! server produces on demand (a body cut off, a stalled body), a small HTTP/1.1
//! server on a tokio `TcpListener` inside the test. Needs `python3` and GNU
//! `sha256sum`; no root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "bundle_fixture.rs"]
mod fixture;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fixture::*;
use kubeseed_provision::bundle::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

// ---- servers ---------------------------------------------------------------

/// `python3 -m http.server` (or the same handler behind TLS), killed by PID
/// on drop. Its request log (stderr) is kept to count requests.
struct PyServer {
    child: Child,
    port: u16,
    https: bool,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

const TLS_SERVER: &str = r#"
import functools, http.server, ssl, sys
port, directory, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
httpd.serve_forever()
"#;

impl PyServer {
    fn start(dir: &Path) -> Self {
        Self::spawn(dir, None)
    }

    fn start_tls(dir: &Path, cert: &Path, key: &Path) -> Self {
        Self::spawn(dir, Some((cert, key)))
    }

    fn spawn(dir: &Path, tls: Option<(&Path, &Path)>) -> Self {
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("requests.log");
        for _ in 0..5 {
            let port = free_port();
            let mut cmd = Command::new("python3");
            cmd.arg("-u");
            match tls {
                None => cmd
                    .args(["-m", "http.server", "--bind", "127.0.0.1"])
                    .arg(port.to_string())
                    .arg("--directory")
                    .arg(dir),
                Some((cert, key)) => cmd
                    .args(["-c", TLS_SERVER])
                    .arg(port.to_string())
                    .arg(dir)
                    .arg(cert)
                    .arg(key),
            };
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            if wait_ready(&mut child, port) {
                return Self {
                    child,
                    port,
                    https: tls.is_some(),
                    log,
                    _log_dir: log_dir,
                };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "python3 http.server did not start: {}",
            std::fs::read_to_string(&log).unwrap()
        );
    }

    fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}/", self.port)
    }

    /// Paths requested so far, from the server's own log.
    fn gets(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .filter_map(|l| l.split("\"GET ").nth(1))
            .filter_map(|rest| rest.split(' ').next())
            .map(str::to_string)
            .collect()
    }

    fn stop(&mut self) {
        // Child::kill signals this child's PID only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `child` listens on `port` within 15 s (false if it exited, e.g.
/// because the port was taken meanwhile).
fn wait_ready(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What the in-test server does for one path.
#[derive(Clone, Copy)]
enum Misbehave {
    /// Announces the full Content-Length, sends half, closes.
    CutOff,
    /// Sends the headers and a little, then nothing.
    Stall,
}

/// A minimal HTTP/1.1 file server that misbehaves on chosen paths.
struct RawServer {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RawServer {
    async fn start(dir: &Path, misbehave: HashMap<String, Misbehave>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let (dir, log, misbehave) = (dir.to_path_buf(), hits.clone(), Arc::new(misbehave));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (dir, log, misbehave) = (dir.clone(), log.clone(), misbehave.clone());
                tokio::spawn(async move {
                    let mut stream = BufReader::new(stream);
                    let mut request = String::new();
                    stream.read_line(&mut request).await.unwrap();
                    let mut header = String::new();
                    while stream.read_line(&mut header).await.unwrap() > 2 {
                        header.clear();
                    }
                    let path = request.split(' ').nth(1).unwrap().to_string();
                    log.lock().unwrap().push(path.clone());
                    let body = std::fs::read(dir.join(path.trim_start_matches('/'))).ok();
                    let mut stream = stream.into_inner();
                    let Some(body) = body else {
                        let _ = stream
                            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                        return;
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    stream.write_all(head.as_bytes()).await.unwrap();
                    match misbehave.get(&path) {
                        None => {
                            let _ = stream.write_all(&body).await;
                        }
                        Some(Misbehave::CutOff) => {
                            let _ = stream.write_all(&body[..body.len() / 2]).await;
                        }
                        Some(Misbehave::Stall) => {
                            let _ = stream.write_all(&body[..100]).await;
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                    }
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { addr, hits, task }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// ---- helpers ---------------------------------------------------------------

fn fast() -> OpenOptions {
    let mut o = OpenOptions::default();
    o.http.retry_delay = Duration::from_millis(50);
    o.http.idle_timeout = Duration::from_secs(10);
    o
}

fn url_source(base: String, cache: &Path) -> Source {
    Source::Url {
        base,
        cache: cache.to_path_buf(),
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every `.part` file left under `dir`.
fn parts(dir: &Path) -> String {
    sh(dir, "find . -name '*.part'")
}

// ---- tests -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundle_served_over_http_is_downloaded_and_verified() {
    init_tracing();
    let f = Fixture::build();
    let server = PyServer::start(f.path());
    let t = tempfile::tempdir().unwrap();
    let cache = cache_in(&t);

    let bundle = Bundle::open(&url_source(server.url(), &cache), &fast())
        .await
        .unwrap();
    let manifest_digest = sha256sum_of(&f.path().join("SHA256SUMS"));
    assert_eq!(bundle.key(), &manifest_digest[..16]);
    assert_eq!(bundle.versions().kubernetes(), "v1.35.8");
    assert_eq!(bundle.local_root(), cache.join(bundle.key()));

    let all = bundle.verify_all().await.unwrap();
    assert_eq!(all.len(), Fixture::manifest_paths().len());
    for a in &all {
        assert_eq!(a.local_path, bundle.local_root().join(&a.path));
        assert_eq!(
            a.sha256.to_string(),
            sha256sum_of(&a.local_path),
            "{}",
            a.path
        );
        assert_eq!(a.sha256.to_string(), f.expected(&a.path), "{}", a.path);
        assert_eq!(a.size, std::fs::metadata(&a.local_path).unwrap().len());
        assert_eq!(mode(&a.local_path), 0o600, "{}", a.path);
    }
    for d in [
        &cache,
        &bundle.local_root().to_path_buf(),
        &cache.join(bundle.key()).join("bin"),
    ] {
        assert_eq!(mode(d), 0o700, "{}", d.display());
    }
    // The cache is itself a bundle directory the tool accepts.
    let (ok, out) = sha256sum_check(bundle.local_root());
    assert!(ok, "{out}");
    assert_eq!(parts(&cache), "");
    assert!(server.gets().contains(&format!("/{BIG}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_file_on_the_server_is_refused_named_and_not_cached() {
    let f = Fixture::build();
    f.flip_byte("bin/kubelet");
    let server = PyServer::start(f.path());
    let t = tempfile::tempdir().unwrap();
    let cache = cache_in(&t);
    let bundle = Bundle::open(&url_source(server.url(), &cache), &fast())
        .await
        .unwrap();

    let e = bundle
        .verify(["bin/etcd", "bin/kubelet"])
        .await
        .unwrap_err();
    let BundleError::ArtifactHashMismatch {
        path,
        location,
        expected,
        actual,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(path, "bin/kubelet");
    assert_eq!(location, &format!("{}bin/kubelet", server.url()));
    assert_eq!(expected.to_string(), f.expected("bin/kubelet"));
    assert_eq!(
        actual.to_string(),
        sha256sum_of(&f.path().join("bin/kubelet"))
    );
    assert!(e.to_string().contains(&location.to_string()), "{e}");
    // A wrong hash is a fact about the bundle, not a network blip: no retry.
    assert!(!e.is_transient());
    assert_eq!(
        server
            .gets()
            .iter()
            .filter(|p| *p == "/bin/kubelet")
            .count(),
        1
    );
    // Bytes that failed never take the file's place in the cache.
    let root = bundle.local_root();
    assert!(!root.join("bin/kubelet").exists());
    assert!(root.join("bin/etcd").exists());
    assert_eq!(parts(&cache), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_is_named_with_its_url() {
    let f = Fixture::build();
    f.remove("cni/portmap");
    let server = PyServer::start(f.path());
    let t = tempfile::tempdir().unwrap();
    let cache = cache_in(&t);
    let bundle = Bundle::open(&url_source(server.url(), &cache), &fast())
        .await
        .unwrap();
    let e = bundle.verify(CNI).await.unwrap_err();
    assert_eq!(
        (e.reason(), e.artifact()),
        ("ArtifactMissing", Some("cni/portmap"))
    );
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "{}cni/portmap (the server answered 404)",
            server.url()
        )),
        "{msg}"
    );
    assert!(!e.is_transient());

    let e = Bundle::open(
        &url_source(format!("{}elsewhere", server.url()), &cache),
        &fast(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.reason(), "BundleManifestMissing");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("{}elsewhere/SHA256SUMS", server.url())),
        "{msg}"
    );
    assert!(msg.contains("the server answered 404"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cut_off_mid_way_is_retried_then_refused() {
    init_tracing();
    let f = Fixture::build();
    let big = format!("/{BIG}");
    let server =
        RawServer::start(f.path(), HashMap::from([(big.clone(), Misbehave::CutOff)])).await;
    let t = tempfile::tempdir().unwrap();
    let cache = cache_in(&t);
    let mut options = fast();
    options.http.attempts = 2;
    let bundle = Bundle::open(&url_source(server.url(), &cache), &options)
        .await
        .unwrap();

    let e = bundle.verify([BIG, "bin/etcd"]).await.unwrap_err();
    assert_eq!(e.reason(), "BundleTransferTruncated", "{e}");
    assert!(e.is_transient());
    let msg = e.to_string();
    assert!(msg.contains(&format!("{}{BIG}", server.url())), "{msg}");
    assert!(
        msg.contains(&format!(
            "cut off after {} of {BIG_SIZE} bytes",
            BIG_SIZE / 2
        )),
        "{msg}"
    );
    assert_eq!(server.hits(&big), 2, "one retry");
    assert!(!bundle.local_root().join(BIG).exists());
    assert_eq!(parts(&cache), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_times_out() {
    let f = Fixture::build();
    let server = RawServer::start(
        f.path(),
        HashMap::from([("/bin/etcd".to_string(), Misbehave::Stall)]),
    )
    .await;
    let t = tempfile::tempdir().unwrap();
    let mut options = fast();
    options.http.attempts = 1;
    options.http.idle_timeout = Duration::from_millis(300);
    let bundle = Bundle::open(&url_source(server.url(), &cache_in(&t)), &options)
        .await
        .unwrap();
    let started = Instant::now();
    let e = bundle.verify(["bin/etcd"]).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(
            e,
            BundleError::Timeout {
                waiting_for: "the body",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.reason(), "BundleTimeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_unreachable() {
    let port = free_port(); // bound, then released: nothing listens there
    let t = tempfile::tempdir().unwrap();
    let mut options = fast();
    options.http.attempts = 3;
    let e = Bundle::open(
        &url_source(format!("http://127.0.0.1:{port}/b/"), &cache_in(&t)),
        &options,
    )
    .await
    .unwrap_err();
    assert_eq!(e.reason(), "BundleUnreachable", "{e}");
    assert!(e.is_transient());
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "cannot reach http://127.0.0.1:{port}/b/SHA256SUMS: "
        )),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("connection refused"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_open_reuses_the_cache() {
    init_tracing();
    let f = Fixture::build();
    let mut server = PyServer::start(f.path());
    let t = tempfile::tempdir().unwrap();
    let cache = cache_in(&t);
    let source = url_source(server.url(), &cache);

    let first = Bundle::open(&source, &fast()).await.unwrap();
    first.verify_all().await.unwrap();
    let fetched_first = server.gets().len();
    assert_eq!(fetched_first, Fixture::manifest_paths().len() + 1);

    // Unpinned, the manifest is asked for again (it is the source of truth),
    // nothing else is.
    let second = Bundle::open(&source, &fast()).await.unwrap();
    second.verify_all().await.unwrap();
    assert_eq!(server.gets()[fetched_first..], ["/SHA256SUMS".to_string()]);

    // A damaged copy in the cache is noticed and fetched again.
    flip_byte(&second.local_root().join("bin/etcd"));
    let again = second.verify(["bin/etcd"]).await.unwrap();
    assert_eq!(
        again[0].sha256.to_string(),
        sha256sum_of(&again[0].local_path)
    );
    assert_eq!(server.gets().last().unwrap(), "/bin/etcd");

    // Pinned, with the server gone: everything comes from the cache.
    let pin = second.manifest_sha256();
    server.stop();
    let offline = Bundle::open(&source, &{
        let mut o = fast();
        o.manifest_sha256 = Some(pin);
        o.http.attempts = 1;
        o
    })
    .await
    .unwrap();
    assert_eq!(offline.key(), first.key());
    let all = offline.verify_all().await.unwrap();
    assert_eq!(all.len(), Fixture::manifest_paths().len());
    // Without the pin the (unreachable) server is the only authority.
    let mut o = fast();
    o.http.attempts = 1;
    let e = Bundle::open(&source, &o).await.unwrap_err();
    assert_eq!(e.reason(), "BundleUnreachable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca() {
    init_tracing();
    let f = Fixture::build();
    let pki = tempfile::tempdir().unwrap();
    let (ca, cert, key) = write_test_pki(pki.path());
    let server = PyServer::start_tls(f.path(), &cert, &key);
    let t = tempfile::tempdir().unwrap();
    let cache = cache_in(&t);

    // Not trusted: the system's CAs do not know this one.
    let mut options = fast();
    options.http.attempts = 1;
    let e = Bundle::open(&url_source(server.url(), &cache), &options)
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "BundleUnreachable", "{e}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");

    options.http.extra_ca_files = vec![ca];
    let bundle = Bundle::open(&url_source(server.url(), &cache), &options)
        .await
        .unwrap();
    let got = bundle.verify(["bin/etcd", BIG]).await.unwrap();
    assert_eq!(got[1].size, BIG_SIZE as u64);
    assert_eq!(got[1].sha256.to_string(), sha256sum_of(&got[1].local_path));
}

/// A CA and a server certificate for 127.0.0.1, as PEM files.
fn write_test_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, leaf_cert.pem()).unwrap();
    std::fs::write(&paths.2, leaf_key.serialize_pem()).unwrap();
    (paths.0, paths.1, paths.2)
}
