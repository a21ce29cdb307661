//! A real two-member etcd cluster on loopback running on kubeseed's
//! certificates: client and peer traffic both over mutual TLS, replication
//! between the members, and a client from another CA refused.
//!
//! Needs the toolchain (`bash e2e/toolchain/build.sh`); fails with
//! instructions when it is missing rather than skipping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kubeseed_provision::cluster::{ClusterSpec, EtcdMember, Member};
use kubeseed_provision::pki::{ClusterCas, ClusterPki, KeyAlgorithm};
use kubeseed_testenv::Toolchain;

/// An etcd started by this test, stopped by its PID when dropped.
struct Etcd {
    child: Child,
    log: PathBuf,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            eprintln!(
                "etcd log {} (last lines, newest first):\n{}",
                self.log.display(),
                tail.join("\n")
            );
        }
        // Child::kill signals exactly this PID; then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Four distinct free ports: all listeners are held until every port is
/// chosen, so the kernel cannot hand out one port twice.
fn free_ports(ip: IpAddr) -> [u16; 4] {
    let held: Vec<TcpListener> = (0..4)
        .map(|_| TcpListener::bind((ip, 0)).unwrap())
        .collect();
    let ports: Vec<u16> = held
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    [ports[0], ports[1], ports[2], ports[3]]
}

fn write_host(files: &kubeseed_provision::files::HostFiles, root: &Path) -> PathBuf {
    for (path, file) in files.iter() {
        let dest = root.join(path.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, &file.contents).unwrap();
    }
    root.join("etc/kubernetes/pki/etcd")
}

fn etcdctl(tc: &Toolchain, endpoints: &str, pki: &Path, client: &str, args: &[&str]) -> Output {
    Command::new(tc.etcdctl())
        .arg(format!("--endpoints={endpoints}"))
        .arg(format!("--cacert={}", pki.join("ca.crt").display()))
        .arg(format!(
            "--cert={}",
            pki.join(format!("{client}.crt")).display()
        ))
        .arg(format!(
            "--key={}",
            pki.join(format!("{client}.key")).display()
        ))
        .arg("--dial-timeout=3s")
        .arg("--command-timeout=5s")
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn two_etcd_members_talk_mutual_tls_on_kubeseed_certificates() {
    let tc = Toolchain::locate().unwrap();
    // Both members on 127.0.0.1: etcd checks that a peer's *source* address
    // is in that peer's certificate, and Linux sends loopback traffic from
    // 127.0.0.1 whatever 127.x address the member listens on (measured: with
    // members on 127.0.0.2/.3 every peer handshake was rejected with
    // `tls: "127.0.0.1" does not match any of DNSNames ["etcd-b"]`).
    let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "127.0.0.1".parse().unwrap());
    // An external etcd topology: two etcd-only members, one master elsewhere.
    let mut spec = ClusterSpec::stacked(Member::new("master-1", "127.0.0.1".parse().unwrap()));
    spec.etcd = vec![EtcdMember::new("etcd-a", a), EtcdMember::new("etcd-b", b)];
    let pki = ClusterPki::generate(spec).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let p = free_ports(a);
    let ports = [(p[0], p[1]), (p[2], p[3])];
    let peer_url = |ip: IpAddr, port: u16| format!("https://{ip}:{port}");
    let initial_cluster = format!(
        "etcd-a={},etcd-b={}",
        peer_url(a, ports[0].1),
        peer_url(b, ports[1].1)
    );
    let mut members = Vec::new();
    let mut client_urls = Vec::new();
    for (i, (name, ip)) in [("etcd-a", a), ("etcd-b", b)].into_iter().enumerate() {
        let root = tmp.path().join(name);
        let pki_dir = write_host(&pki.hosts[name], &root);
        let client = format!("https://{ip}:{}", ports[i].0);
        client_urls.push(client.clone());
        let log = root.join("etcd.log");
        let child = Command::new(tc.etcd())
            .args([
                format!("--name={name}"),
                format!("--data-dir={}", root.join("data").display()),
                format!("--listen-client-urls={client}"),
                format!("--advertise-client-urls={client}"),
                format!("--listen-peer-urls={}", peer_url(ip, ports[i].1)),
                format!("--initial-advertise-peer-urls={}", peer_url(ip, ports[i].1)),
                format!("--initial-cluster={initial_cluster}"),
                "--initial-cluster-state=new".into(),
                "--initial-cluster-token=kubeseed-pki-test".into(),
                format!("--cert-file={}", pki_dir.join("server.crt").display()),
                format!("--key-file={}", pki_dir.join("server.key").display()),
                format!("--trusted-ca-file={}", pki_dir.join("ca.crt").display()),
                "--client-cert-auth=true".into(),
                format!("--peer-cert-file={}", pki_dir.join("peer.crt").display()),
                format!("--peer-key-file={}", pki_dir.join("peer.key").display()),
                format!(
                    "--peer-trusted-ca-file={}",
                    pki_dir.join("ca.crt").display()
                ),
                "--peer-client-cert-auth=true".into(),
                "--unsafe-no-fsync=true".into(),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        members.push(Etcd { child, log });
    }
    let endpoints = client_urls.join(",");
    let pki_a = tmp.path().join("etcd-a/etc/kubernetes/pki/etcd");
    let pki_b = tmp.path().join("etcd-b/etc/kubernetes/pki/etcd");

    // Health of the whole cluster needs a leader, i.e. peers that accepted each other's certificates.
    let started = Instant::now();
    loop {
        let out = etcdctl(
            &tc,
            &endpoints,
            &pki_a,
            "healthcheck-client",
            &["endpoint", "health", "--cluster"],
        );
        if out.status.success() {
            let t = text(&out);
            assert_eq!(t.matches("is healthy").count(), 2, "{t}");
            break;
        }
        for m in &mut members {
            assert!(
                m.child.try_wait().unwrap().is_none(),
                "etcd exited: {}",
                std::fs::read_to_string(&m.log).unwrap()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no healthy cluster: {}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("two-member etcd healthy after {:?}", started.elapsed());

    let out = etcdctl(
        &tc,
        &client_urls[0],
        &pki_a,
        "healthcheck-client",
        &["member", "list"],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains(&peer_url(a, ports[0].1)) && t.contains(&peer_url(b, ports[1].1)),
        "{t}"
    );

    // Written through one member, read through the other: replicated over peer TLS.
    let out = etcdctl(
        &tc,
        &client_urls[0],
        &pki_a,
        "healthcheck-client",
        &["put", "/kubeseed/pki", "works"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = etcdctl(
        &tc,
        &client_urls[1],
        &pki_b,
        "healthcheck-client",
        &["get", "/kubeseed/pki", "--print-value-only"],
    );
    assert_eq!(text(&out).trim(), "works");

    // The apiserver's etcd client certificate (made for the master) is accepted too.
    let master_pki = write_host(&pki.hosts["master-1"], &tmp.path().join("master-1"));
    let out = etcdctl(
        &tc,
        &client_urls[1],
        &master_pki,
        "../apiserver-etcd-client",
        &["get", "/kubeseed/pki", "--print-value-only"],
    );
    assert_eq!(text(&out).trim(), "works", "{}", text(&out));

    // A client certificate from another cluster's etcd CA is refused by etcd.
    let other = ClusterCas::generate(KeyAlgorithm::EcdsaP256, &Default::default()).unwrap();
    let foreign = other
        .etcd
        .issue(
            &kubeseed_provision::pki::profiles::etcd_healthcheck_client(),
            KeyAlgorithm::EcdsaP256,
            &Default::default(),
        )
        .unwrap();
    std::fs::write(pki_a.join("foreign.crt"), &foreign.cert_pem).unwrap();
    std::fs::write(pki_a.join("foreign.key"), &foreign.key_pem).unwrap();
    let out = etcdctl(
        &tc,
        &client_urls[0],
        &pki_a,
        "foreign",
        &["get", "/kubeseed/pki"],
    );
    assert!(
        !out.status.success(),
        "foreign client was accepted: {}",
        text(&out)
    );
    let log = std::fs::read_to_string(&members[0].log).unwrap();
    assert!(
        log.contains("certificate signed by unknown authority") || log.contains("bad certificate"),
        "etcd did not log the rejected handshake; etcdctl said: {}",
        text(&out)
    );
}
