//! The etcd membership client against real etcd processes on loopback,
//! running on kubeseed's certificates with mutual TLS on both ports: a
//! one-member cluster grows by learners (added, caught up, promoted) to
//! three, moves its leadership, loses its first member, and refuses what
//! it must (a second learner, an unsynced promotion, a foreign client
//! certificate, a server certificate from another CA).
//!
//! Needs the toolchain (`bash e2e/toolchain/build.sh`); fails with
//! instructions when it is missing rather than skipping. Prints timings,
//! asserts none.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kubeseed_provision::cluster::{ClusterSpec, EtcdMember, Member};
use kubeseed_provision::etcd::{
    EtcdClient, EtcdError, EtcdMemberInfo, EtcdTls, MemberId, RemovalRefused, find_by_peer_url,
    quorum_after_removal,
};
use kubeseed_provision::pki::{ClusterCas, ClusterPki, KeyAlgorithm, profiles};
use kubeseed_testenv::Toolchain;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const TIMEOUT: Duration = Duration::from_secs(10);
/// How long anything may take to become true before the test gives up.
const PATIENCE: Duration = Duration::from_secs(30);

/// An etcd started by this test, stopped by its PID when dropped.
struct Etcd {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Etcd {
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        format!(
            "etcd {} log {} (last lines, newest first):\n{}",
            self.name,
            self.log.display(),
            tail.join("\n")
        )
    }

    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("etcd {} exited ({status}): {}", self.name, self.log_tail());
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail());
        }
        // Child::kill signals exactly this PID; then reap it.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Distinct free ports: all listeners are held until every port is chosen,
/// so the kernel cannot hand out one port twice.
fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind((LOOPBACK, 0)).unwrap())
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// One etcd member's addresses and certificate directory.
struct Node {
    name: &'static str,
    client: String,
    peer: String,
    root: PathBuf,
}

impl Node {
    fn pki(&self) -> PathBuf {
        self.root.join("etc/kubernetes/pki/etcd")
    }

    /// Starts etcd for this node. All members listen on 127.0.0.1: etcd
    /// checks a peer's source address against its certificate, and Linux
    /// sends loopback traffic from 127.0.0.1 (see tests/pki_etcd.rs).
    fn start(&self, tc: &Toolchain, initial_cluster: &str, state: &str) -> Etcd {
        let pki = self.pki();
        let log = self.root.join("etcd.log");
        let child = Command::new(tc.etcd())
            .args([
                format!("--name={}", self.name),
                format!("--data-dir={}", self.root.join("data").display()),
                format!("--listen-client-urls={}", self.client),
                format!("--advertise-client-urls={}", self.client),
                format!("--listen-peer-urls={}", self.peer),
                format!("--initial-advertise-peer-urls={}", self.peer),
                format!("--initial-cluster={initial_cluster}"),
                format!("--initial-cluster-state={state}"),
                "--initial-cluster-token=kubeseed-etcd-membership-test".into(),
                format!("--cert-file={}", pki.join("server.crt").display()),
                format!("--key-file={}", pki.join("server.key").display()),
                format!("--trusted-ca-file={}", pki.join("ca.crt").display()),
                "--client-cert-auth=true".into(),
                format!("--peer-cert-file={}", pki.join("peer.crt").display()),
                format!("--peer-key-file={}", pki.join("peer.key").display()),
                format!("--peer-trusted-ca-file={}", pki.join("ca.crt").display()),
                "--peer-client-cert-auth=true".into(),
                "--unsafe-no-fsync=true".into(),
                "--log-level=info".into(),
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Etcd {
            name: self.name,
            child,
            log,
        }
    }
}

fn write_host(files: &kubeseed_provision::files::HostFiles, root: &Path) {
    for (path, file) in files.iter() {
        let dest = root.join(path.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, &file.contents).unwrap();
    }
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn tls_of(pki: &Path, client: &str) -> EtcdTls {
    EtcdTls {
        ca_pem: read(pki.join("ca.crt")),
        cert_pem: read(pki.join(format!("{client}.crt"))),
        key_pem: read(pki.join(format!("{client}.key"))),
    }
}

fn member(members: &[EtcdMemberInfo], id: MemberId) -> &EtcdMemberInfo {
    members
        .iter()
        .find(|m| m.id == id)
        .unwrap_or_else(|| panic!("{id} not in {members:#?}"))
}

fn voters(members: &[EtcdMemberInfo]) -> Vec<&str> {
    let mut names: Vec<&str> = members
        .iter()
        .filter(|m| m.is_voter())
        .map(|m| m.name.as_str())
        .collect();
    names.sort_unstable();
    names
}

/// Runs `call` until etcd stops answering "unhealthy". A leader accepts a
/// membership change only once it has been connected to a majority of its
/// peers for 5 s (etcd's `HealthInterval`), so right after an election or a
/// member's start it refuses with `etcdserver: unhealthy cluster`; the
/// operator retries those ([`EtcdError::is_transient`]), and so does this.
async fn when_healthy<T, F, Fut>(what: &str, mut call: F) -> Result<T, EtcdError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, EtcdError>>,
{
    let started = Instant::now();
    let mut refusals = 0;
    loop {
        match call().await {
            Err(e @ EtcdError::Unhealthy { .. }) if started.elapsed() < PATIENCE => {
                if refusals == 0 {
                    eprintln!("{what}: {e}");
                }
                refusals += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => {
                if refusals > 0 {
                    eprintln!(
                        "{what}: went through after {refusals} 'unhealthy' refusals over {:?}",
                        started.elapsed()
                    );
                }
                return other;
            }
        }
    }
}

/// Waits until `learner` is caught up, then promotes it, retrying while
/// etcd still says it is not in sync. Returns the members afterwards.
/// `learner_only`, a client of the learner's endpoint alone, is checked to
/// be refused a member list while the member is a learner.
async fn catch_up_and_promote(
    etcd: &EtcdClient,
    learner: MemberId,
    node: &mut Etcd,
    added: Instant,
    learner_only: Option<&EtcdClient>,
) -> Vec<EtcdMemberInfo> {
    let mut polls = 0;
    loop {
        node.assert_running();
        let progress = etcd.learner_progress(learner).await.unwrap();
        polls += 1;
        if progress.caught_up() {
            let l = progress.learner.as_ref().unwrap();
            assert!(l.is_learner, "{l:?}");
            eprintln!(
                "{}: caught up {:?} after add ({polls} polls): applied {} of leader's {}",
                node.name,
                added.elapsed(),
                l.raft_applied_index,
                progress.leader.raft_index
            );
            break;
        }
        assert!(added.elapsed() < PATIENCE, "never caught up: {progress:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(only) = learner_only {
        // A learner serves its status but no linearizable member list; a
        // client that knows other endpoints goes on to them.
        let e = only.members().await.unwrap_err();
        assert_eq!(e.reason(), "EtcdRequestFailed", "{e}");
        assert!(
            e.to_string().contains("rpc not supported for learner"),
            "{e}"
        );
        eprintln!("refused as expected: {e}");
        let s = only.status(&only.endpoints()[0]).await.unwrap();
        assert!(s.is_learner && s.member_id == learner, "{s:#?}");
    }
    let mut refusals = 0;
    let members = loop {
        match etcd.promote(learner).await {
            Ok(members) => break members,
            Err(e @ EtcdError::LearnerNotReady { .. }) if added.elapsed() < PATIENCE => {
                assert_eq!(e.reason(), "EtcdLearnerNotReady");
                refusals += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("promote {learner}: {e}"),
        }
    };
    eprintln!(
        "{}: promoted {:?} after add ({refusals} 'not in sync' refusals after caught_up)",
        node.name,
        added.elapsed()
    );
    assert!(!member(&members, learner).is_learner, "{members:#?}");
    members
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn learners_join_get_promoted_lead_and_leave_over_mutual_tls() {
    // RUST_LOG=kubeseed_provision=debug shows each request and skipped endpoint.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let test_started = Instant::now();
    let tc = Toolchain::locate().unwrap();
    let mut spec = ClusterSpec::stacked(Member::new("master-1", LOOPBACK));
    spec.etcd = ["etcd-a", "etcd-b", "etcd-c"]
        .into_iter()
        .map(|n| EtcdMember::new(n, LOOPBACK))
        .collect();
    let pki = ClusterPki::generate(spec).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // Client and peer ports for a, b, c, and a peer port for a "d" that
    // never starts.
    let p = free_ports::<7>();
    let url = |port: u16| format!("https://{LOOPBACK}:{port}");
    let node = |i: usize, name: &'static str| {
        let root = tmp.path().join(name);
        write_host(&pki.hosts[name], &root);
        Node {
            name,
            client: url(p[2 * i]),
            peer: url(p[2 * i + 1]),
            root,
        }
    };
    let (a, b, c) = (node(0, "etcd-a"), node(1, "etcd-b"), node(2, "etcd-c"));
    let peer_d = url(p[6]);
    let tls = tls_of(&a.pki(), "healthcheck-client");

    // --- One member. The client knows b first: refused connections (b is
    // not running), then a learner that serves no linearizable member
    // list, must both fall through to a.
    let mut etcd_a = a.start(&tc, &format!("etcd-a={}", a.peer), "new");
    let etcd = EtcdClient::new(
        vec![b.client.clone(), a.client.clone()],
        tls.clone(),
        TIMEOUT,
    )
    .unwrap();
    let members = loop {
        etcd_a.assert_running();
        match etcd.members().await {
            Ok(m) => break m,
            Err(e) if test_started.elapsed() < PATIENCE => {
                // Refused connections, or no leader elected yet.
                assert!(e.is_transient(), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("etcd-a never answered: {e}"),
        }
    };
    eprintln!("etcd-a answered {:?} after start", test_started.elapsed());
    assert_eq!(members.len(), 1, "{members:#?}");
    let a_id = members[0].id;
    assert_eq!(members[0].name, "etcd-a");
    assert_eq!(members[0].peer_urls, [a.peer.as_str()]);
    assert_eq!(members[0].client_urls, [a.client.as_str()]);
    let status = etcd.status(&a.client).await.unwrap();
    assert_eq!(status.member_id, a_id);
    assert!(status.is_leader() && !status.is_learner, "{status:#?}");
    assert!(status.version.starts_with("3.6."), "{status:#?}");
    assert!(
        status.db_size > 0 && status.errors.is_empty(),
        "{status:#?}"
    );
    eprintln!(
        "etcd-a is {a_id} ({}), raft index {}",
        status.version, status.raft_index
    );

    // --- b joins as a learner.
    let added_b = Instant::now();
    let (b_id, members) = etcd
        .add_learner(std::slice::from_ref(&b.peer))
        .await
        .unwrap();
    assert_eq!(members.len(), 2);
    let new = member(&members, b_id);
    assert!(new.is_learner && !new.is_started() && new.client_urls.is_empty());
    // A reconcile that lost the ID finds it again by peer URL...
    assert_eq!(
        find_by_peer_url(&members, &b.peer).map(|m| m.id),
        Some(b_id)
    );
    // ...and adding it again is refused with a reason that says so.
    let e = etcd
        .add_learner(std::slice::from_ref(&b.peer))
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "EtcdPeerURLExists", "{e}");
    eprintln!("refused as expected: {e}");
    // Not started: no learner status, not caught up.
    let progress = etcd.learner_progress(b_id).await.unwrap();
    assert!(progress.learner.is_none() && !progress.caught_up());
    assert_eq!(progress.leader.member_id, a_id);

    let mut etcd_b = b.start(
        &tc,
        &format!("etcd-a={},etcd-b={}", a.peer, b.peer),
        "existing",
    );
    let members = catch_up_and_promote(
        &etcd,
        b_id,
        &mut etcd_b,
        added_b,
        Some(&EtcdClient::new(vec![b.client.clone()], tls.clone(), TIMEOUT).unwrap()),
    )
    .await;
    assert_eq!(voters(&members), ["etcd-a", "etcd-b"], "{members:#?}");
    let listed = etcd.members().await.unwrap();
    assert_eq!(voters(&listed), ["etcd-a", "etcd-b"], "{listed:#?}");
    assert_eq!(member(&listed, b_id).client_urls, [b.client.as_str()]);

    // --- Leadership moves to b (asked of a, the leader, whatever the
    // client's first endpoint), and asking again changes nothing.
    let moving = Instant::now();
    let previous = etcd.move_leader(b_id).await.unwrap();
    eprintln!("leadership moved a -> b in {:?}", moving.elapsed());
    assert_eq!(previous, a_id);
    for endpoint in [&a.client, &b.client] {
        let s = etcd.status(endpoint).await.unwrap();
        assert_eq!(s.leader, Some(b_id), "{s:#?}");
    }
    assert_eq!(etcd.move_leader(b_id).await.unwrap(), b_id);
    assert_eq!(etcd.leader_status().await.unwrap().member_id, b_id);

    // --- c is added; while it has not synced, etcd refuses to promote it
    // and refuses a second learner.
    let (c_id, members) = when_healthy("add learner c", || {
        etcd.add_learner(std::slice::from_ref(&c.peer))
    })
    .await
    .unwrap();
    let added_c = Instant::now();
    let unstarted = find_by_peer_url(&members, &c.peer).unwrap();
    assert_eq!((unstarted.id, unstarted.name.as_str()), (c_id, ""));
    let e = when_healthy("promote c unsynced", || etcd.promote(c_id))
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "EtcdLearnerNotReady", "{e}");
    assert!(e.is_transient());
    eprintln!("refused as expected: {e}");
    let e = when_healthy("add learner d", || {
        etcd.add_learner(std::slice::from_ref(&peer_d))
    })
    .await
    .unwrap_err();
    assert_eq!(e.reason(), "EtcdTooManyLearners", "{e}");
    assert!(!e.is_transient());
    eprintln!("refused as expected: {e}");
    assert!(find_by_peer_url(&etcd.members().await.unwrap(), &peer_d).is_none());

    // The quorum rule on the real member list (a, b voters; c a learner).
    let healthy = [a_id, b_id];
    assert_eq!(quorum_after_removal(&members, c_id, &[]), Ok(()));
    assert_eq!(quorum_after_removal(&members, a_id, &healthy), Ok(()));
    assert!(matches!(
        quorum_after_removal(&members, a_id, &[a_id]),
        Err(RemovalRefused::WouldLoseQuorum {
            needed: 1,
            healthy_after: 0,
            ..
        })
    ));

    // --- c starts, catches up, is promoted: three voters.
    let mut etcd_c = c.start(
        &tc,
        &format!("etcd-a={},etcd-b={},etcd-c={}", a.peer, b.peer, c.peer),
        "existing",
    );
    let members = catch_up_and_promote(&etcd, c_id, &mut etcd_c, added_c, None).await;
    assert_eq!(voters(&members), ["etcd-a", "etcd-b", "etcd-c"]);

    // --- a, the first member, leaves. Three healthy voters: allowed.
    let mut healthy = Vec::new();
    for m in &members {
        let s = etcd.status(&m.client_urls[0]).await.unwrap();
        if s.errors.is_empty() && s.leader.is_some() {
            healthy.push(s.member_id);
        }
    }
    assert_eq!(healthy.len(), 3);
    quorum_after_removal(&members, a_id, &healthy).unwrap();
    let members = when_healthy("remove a", || etcd.remove(a_id))
        .await
        .unwrap();
    assert_eq!(voters(&members), ["etcd-b", "etcd-c"]);
    // A client that knows a first falls through to b once a is gone (a
    // stops serving once it learns it was removed).
    let etcd_a_first = EtcdClient::new(
        vec![a.client.clone(), b.client.clone()],
        tls.clone(),
        TIMEOUT,
    )
    .unwrap();
    let listed = etcd_a_first.members().await.unwrap();
    assert_eq!(voters(&listed), ["etcd-b", "etcd-c"]);
    // Removing it again: not found (the operator treats that as done).
    let e = etcd.remove(a_id).await.unwrap_err();
    assert_eq!(e.reason(), "EtcdMemberNotFound", "{e}");
    eprintln!("refused as expected: {e}");
    drop(etcd_a);

    // Down to the last voter, the pure rule refuses to go further.
    let members = when_healthy("remove c", || etcd.remove(c_id))
        .await
        .unwrap();
    assert_eq!(voters(&members), ["etcd-b"]);
    assert_eq!(
        quorum_after_removal(&members, b_id, &[b_id]),
        Err(RemovalRefused::LastVoter { member: b_id })
    );
    drop(etcd_c);

    // --- TLS: a client certificate from another cluster's etcd CA is
    // refused by etcd, and a server certificate that our CA did not sign
    // is refused by us.
    let other = ClusterCas::generate(KeyAlgorithm::EcdsaP256, &Default::default()).unwrap();
    let foreign = other
        .etcd
        .issue(
            &profiles::etcd_healthcheck_client(),
            KeyAlgorithm::EcdsaP256,
            &Default::default(),
        )
        .unwrap();
    let foreign_client = EtcdClient::new(
        vec![b.client.clone()],
        EtcdTls {
            ca_pem: tls.ca_pem.clone(),
            cert_pem: foreign.cert_pem.clone(),
            key_pem: foreign.key_pem.clone(),
        },
        TIMEOUT,
    )
    .unwrap();
    let e = foreign_client.members().await.unwrap_err();
    assert_eq!(e.reason(), "EtcdClientCertRejected", "{e}");
    eprintln!("refused as expected: {e}");
    let wrong_ca = EtcdClient::new(
        vec![b.client.clone()],
        EtcdTls {
            ca_pem: other.etcd.cert_pem().to_string(),
            ..tls.clone()
        },
        TIMEOUT,
    )
    .unwrap();
    let e = wrong_ca.members().await.unwrap_err();
    assert_eq!(e.reason(), "EtcdServerCertUntrusted", "{e}");
    eprintln!("refused as expected: {e}");
    let log = std::fs::read_to_string(&etcd_b.log).unwrap();
    assert!(
        log.contains("certificate signed by unknown authority") || log.contains("bad certificate"),
        "etcd-b did not log the rejected handshake"
    );

    // Nothing listening: unreachable, naming the endpoint.
    let [dead] = free_ports::<1>();
    let nobody = EtcdClient::new(vec![url(dead)], tls.clone(), TIMEOUT).unwrap();
    let e = nobody.members().await.unwrap_err();
    assert_eq!(e.reason(), "EtcdUnreachable", "{e}");
    assert!(e.to_string().contains(&url(dead)), "{e}");

    etcd_b.assert_running();
    eprintln!("whole scenario: {:?}", test_started.elapsed());
}
