//! The SSH engine against real OpenSSH `sshd`s started by each test.
//!
//! Kind of test: real processes started by the test (sshd, ssh-agent,
//! ssh-keygen), on 127.0.0.1 only. Needs root (sshd switches users; test
//! accounts are created with useradd) and Debian's `openssh-server` and
//! `sudo` packages.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kubeseed_provision::ssh::*;
use kubeseed_testenv::dropbear::Dropbear;
use kubeseed_testenv::sshd::{
    KeyType, SshAgent, Sshd, SshdOptions, SudoRule, ensure_user, ssh_keygen,
};

const SUDO_USER: &str = "kubeseed-test-sudo";
const PASSWORD_USER: &str = "kubeseed-test-pw";

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

fn pinned(sshd: &Sshd) -> HostKeyPolicy {
    HostKeyPolicy::Pinned(HostKey::parse(&sshd.host_public_key().unwrap()).unwrap())
}

fn target(sshd: &Sshd, user: &str) -> SshTarget {
    SshTarget::new(
        "127.0.0.1",
        user,
        Auth::key_file(sshd.client_key()),
        pinned(sshd),
    )
    .with_port(sshd.port())
}

fn fast_limits() -> Limits {
    let mut l = Limits::default();
    l.connect_attempts = 2;
    l.backoff_initial = Duration::from_millis(50);
    l
}

async fn connect(t: &SshTarget) -> Session {
    Session::connect(t, &fast_limits()).await.unwrap().0
}

#[tokio::test]
async fn key_auth_with_every_key_type_and_sources() {
    init_tracing();
    let sshd = Sshd::start().unwrap();
    let keys = tempfile::tempdir().unwrap();
    for (key_type, passphrase) in [
        (KeyType::Ed25519, ""),
        (KeyType::Ecdsa, ""),
        (KeyType::Rsa, ""),
        (KeyType::Ed25519, "correct horse"),
    ] {
        let path = keys
            .path()
            .join(format!("{key_type:?}-{}", passphrase.len()));
        ssh_keygen(&path, key_type, passphrase).unwrap();
        sshd.authorize(&std::fs::read_to_string(path.with_extension("pub")).unwrap())
            .unwrap();
        let passphrase = (!passphrase.is_empty()).then(|| passphrase.to_owned());
        let mut t = target(&sshd, "root");
        t.auth = Auth::KeyFile {
            path: path.clone(),
            passphrase: passphrase.clone(),
        };
        let s = connect(&t).await;
        let out = s.run("id -un", ExecOptions::default()).await.unwrap();
        assert_eq!(out.stdout_text().trim(), "root", "{key_type:?}");

        // The same key as the bytes of a kubernetes.io/ssh-auth Secret.
        let bytes = std::fs::read(&path).unwrap();
        t.auth = Auth::from_ssh_auth_secret(
            [("ssh-privatekey", bytes.as_slice())],
            "Secret test/ssh",
            passphrase.clone(),
        )
        .unwrap();
        connect(&t).await;

        if passphrase.is_some() {
            t.auth = Auth::key_file(&path);
            let e = Session::connect(&t, &fast_limits()).await.unwrap_err();
            assert!(e.to_string().contains("passphrase"), "{e}");
            t.auth = Auth::KeyFile {
                path: path.clone(),
                passphrase: Some("wrong".into()),
            };
            let e = Session::connect(&t, &fast_limits()).await.unwrap_err();
            assert!(matches!(e, SshError::InvalidKey { .. }), "{e}");
        }
    }
}

#[tokio::test]
async fn agent_auth() {
    init_tracing();
    let sshd = Sshd::start().unwrap();
    let agent = SshAgent::start().unwrap();
    agent.add(&sshd.client_key()).unwrap();
    let mut t = target(&sshd, "root");
    t.auth = Auth::AgentSocket(agent.socket());
    let s = connect(&t).await;
    assert!(s.run("true", ExecOptions::default()).await.is_ok());
}

#[tokio::test]
async fn unknown_key_is_rejected_with_host_and_user() {
    init_tracing();
    let sshd = Sshd::start().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let stranger = keys.path().join("stranger");
    ssh_keygen(&stranger, KeyType::Ed25519, "").unwrap();
    let mut t = target(&sshd, "root");
    t.auth = Auth::key_file(&stranger);
    let started = Instant::now();
    let e = Session::connect(&t, &fast_limits()).await.unwrap_err();
    match &e {
        SshError::AuthRejected { host, user, .. } => {
            assert_eq!(host, &format!("127.0.0.1:{}", sshd.port()));
            assert_eq!(user, "root");
        }
        other => panic!("expected AuthRejected, got {other:?}"),
    }
    assert!(!e.is_transient());
    // Not retried: a rejected key stays rejected.
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn pinned_key_mismatch_stops_before_authentication() {
    init_tracing();
    let sshd = Sshd::start().unwrap();
    let other = Sshd::start().unwrap();
    let mut t = target(&sshd, "root");
    t.host_key = pinned(&other);
    let e = Session::connect(&t, &fast_limits()).await.unwrap_err();
    let SshError::HostKeyMismatch {
        host,
        expected_fingerprint,
        presented_fingerprint,
        ..
    } = &e
    else {
        panic!("expected HostKeyMismatch, got {e:?}");
    };
    assert_eq!(host, &format!("127.0.0.1:{}", sshd.port()));
    let expected = HostKey::parse(&other.host_public_key().unwrap()).unwrap();
    let presented = HostKey::parse(&sshd.host_public_key().unwrap()).unwrap();
    assert_eq!(expected_fingerprint, &expected.fingerprint());
    assert_eq!(presented_fingerprint, &presented.fingerprint());
    // Nothing beyond key exchange reached sshd: no authentication attempt.
    std::thread::sleep(Duration::from_millis(200));
    let log = std::fs::read_to_string(sshd.dir().join("sshd-1.log")).unwrap();
    assert!(
        !log.contains("Accepted publickey") && !log.contains("Failed publickey"),
        "{log}"
    );
}

#[tokio::test]
async fn pinning_an_rsa_host_key_makes_the_host_present_it() {
    init_tracing();
    let sshd = Sshd::start().unwrap();
    let mut t = target(&sshd, "root");
    t.host_key = HostKeyPolicy::Pinned(
        HostKey::parse(&sshd.host_public_key_of(KeyType::Rsa).unwrap()).unwrap(),
    );
    let (_, observed) = Session::connect(&t, &fast_limits()).await.unwrap();
    assert_eq!(observed.host.key.algorithm(), "ssh-rsa");
}

#[tokio::test]
async fn first_seen_then_changed_host_key() {
    init_tracing();
    let mut sshd = Sshd::start().unwrap();
    let mut t = target(&sshd, "root");
    t.host_key = HostKeyPolicy::FirstSeen;
    let (s, keys) = Session::connect(&t, &fast_limits()).await.unwrap();
    let observed = keys.host;
    assert!(keys.bastions.is_empty());
    assert!(observed.first_seen);
    assert_eq!(
        observed.key,
        HostKey::parse(&sshd.host_public_key().unwrap()).unwrap()
    );
    drop(s);

    // The caller records the key and pins it: later connections enforce it.
    let recorded = HostKey::parse(&observed.key.to_openssh()).unwrap();
    t.host_key = HostKeyPolicy::Pinned(recorded.clone());
    let (_, again) = Session::connect(&t, &fast_limits()).await.unwrap();
    assert!(!again.host.first_seen);

    sshd.regenerate_host_keys().unwrap();
    let e = Session::connect(&t, &fast_limits()).await.unwrap_err();
    match e {
        SshError::HostKeyMismatch {
            expected_fingerprint,
            presented_fingerprint,
            ..
        } => {
            assert_eq!(expected_fingerprint, recorded.fingerprint());
            assert_ne!(presented_fingerprint, recorded.fingerprint());
        }
        other => panic!("expected HostKeyMismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn known_hosts_file() {
    init_tracing();
    let sshd = Sshd::start().unwrap();
    let other = Sshd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_hosts");
    std::fs::write(&known, sshd.known_hosts_lines().unwrap()).unwrap();
    let mut t = target(&sshd, "root");
    t.host_key = HostKeyPolicy::KnownHosts(known.clone());
    connect(&t).await;

    // A host missing from the file is refused, naming the file.
    let mut t2 = target(&other, "root");
    t2.host_key = HostKeyPolicy::KnownHosts(known.clone());
    let e = Session::connect(&t2, &fast_limits()).await.unwrap_err();
    assert!(matches!(e, SshError::HostKeyUnknown { .. }), "{e:?}");
    assert!(e.to_string().contains(known.to_str().unwrap()));

    // The other host's keys recorded under this host's name: a mismatch.
    let wrong = other.known_hosts_lines().unwrap().replace(
        &format!("]:{} ", other.port()),
        &format!("]:{} ", sshd.port()),
    );
    std::fs::write(&known, wrong).unwrap();
    let e = Session::connect(&t, &fast_limits()).await.unwrap_err();
    assert!(matches!(e, SshError::HostKeyMismatch { .. }), "{e:?}");
}

/// `@revoked` wins over a plain line listing the same key; `@cert-authority`
/// lines are reported as unsupported, never silently skipped; a missing file
/// is an error, not an empty list.
#[tokio::test]
async fn known_hosts_revoked_and_cert_authority_lines() {
    init_tracing();
    let sshd = Sshd::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_hosts");
    let mut t = target(&sshd, "root");
    t.host_key = HostKeyPolicy::KnownHosts(known.clone());
    let ed = sshd.host_public_key().unwrap();
    let ed: Vec<&str> = ed.split_whitespace().collect();

    // Listed normally, and revoked for every host further down.
    std::fs::write(
        &known,
        format!(
            "{}@revoked * {} {}\n",
            sshd.known_hosts_lines().unwrap(),
            ed[0],
            ed[1]
        ),
    )
    .unwrap();
    let e = Session::connect(&t, &fast_limits()).await.unwrap_err();
    match &e {
        SshError::HostKeyRevoked {
            line, known_hosts, ..
        } => {
            assert_eq!(*line, 4);
            assert_eq!(known_hosts, &known);
        }
        other => panic!("expected HostKeyRevoked, got {other:?}"),
    }
    assert!(e.to_string().contains("@revoked"), "{e}");
    assert_eq!(e.reason(), "HostKeyRevoked");
    // Nothing beyond key exchange reached sshd.
    std::thread::sleep(Duration::from_millis(200));
    let log = std::fs::read_to_string(sshd.dir().join("sshd-1.log")).unwrap();
    assert!(!log.contains("Accepted publickey"), "{log}");

    // Only a certificate authority for this host: said plainly.
    std::fs::write(
        &known,
        format!(
            "@cert-authority [127.0.0.1]:{} {} {}\n",
            sshd.port(),
            ed[0],
            ed[1]
        ),
    )
    .unwrap();
    let e = Session::connect(&t, &fast_limits()).await.unwrap_err();
    assert!(
        matches!(e, SshError::HostCertificatesUnsupported { line: 1, .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains("@cert-authority"), "{e}");

    // A CA line beside the host's own key does not stand in the way.
    let mut both = std::fs::read_to_string(&known).unwrap();
    both.push_str(&sshd.known_hosts_lines().unwrap());
    std::fs::write(&known, both).unwrap();
    connect(&t).await;

    // A known_hosts file that is not there is an error of its own.
    std::fs::remove_file(&known).unwrap();
    let e = Session::connect(&t, &fast_limits()).await.unwrap_err();
    assert!(matches!(e, SshError::InvalidInput(_)), "{e:?}");
    assert!(
        e.to_string().contains("cannot read the known_hosts file"),
        "{e}"
    );
}

/// A server restricted to the NIST curves for key exchange, as FIPS and
/// many hardened configurations are, one curve at a time.
#[tokio::test]
async fn a_server_that_allows_only_nist_curve_key_exchange() {
    init_tracing();
    for kex in [
        "ecdh-sha2-nistp256",
        "ecdh-sha2-nistp384",
        "ecdh-sha2-nistp521",
    ] {
        let sshd = Sshd::start_with(SshdOptions::default().config(format!("KexAlgorithms {kex}")))
            .unwrap();
        let s = Session::connect(&target(&sshd, "root"), &fast_limits())
            .await
            .unwrap_or_else(|e| panic!("{kex}: {e}\n{}", sshd.log_tail(20)))
            .0;
        let out = s.run("echo reached", ExecOptions::default()).await.unwrap();
        assert_eq!(out.stdout_text().trim(), "reached", "{kex}");
    }
}

/// A pinned key of a type the host does not have (ed25519 pinned, the host
/// has RSA keys only) is the typed mismatch naming both keys, and says the
/// host offers no such key; also through known_hosts.
#[tokio::test]
async fn a_pinned_key_type_the_host_does_not_offer() {
    init_tracing();
    let sshd = Sshd::start_with(SshdOptions::default().host_keys(&[KeyType::Rsa])).unwrap();
    let elsewhere = Sshd::start().unwrap();
    let wrong = HostKey::parse(&elsewhere.host_public_key().unwrap()).unwrap();
    assert_eq!(wrong.algorithm(), "ssh-ed25519");
    let host_has = HostKey::parse(&sshd.host_public_key_of(KeyType::Rsa).unwrap()).unwrap();
    let mut t = target(&sshd, "root");
    t.host_key = HostKeyPolicy::Pinned(wrong.clone());
    let e = Session::connect(&t, &fast_limits()).await.unwrap_err();
    match &e {
        SshError::HostKeyMismatch {
            expected_algorithm,
            expected_fingerprint,
            presented_algorithm,
            presented_fingerprint,
            ..
        } => {
            assert_eq!(*expected_algorithm, "ssh-ed25519");
            assert_eq!(expected_fingerprint, &wrong.fingerprint());
            assert_eq!(*presented_algorithm, "ssh-rsa");
            assert_eq!(presented_fingerprint, &host_has.fingerprint());
        }
        other => panic!("expected HostKeyMismatch, got {other:?}"),
    }
    assert!(
        e.to_string().contains("the host offers no ssh-ed25519 key"),
        "{e}"
    );

    // The same wrong key recorded in known_hosts.
    let dir = tempfile::tempdir().unwrap();
    let known = dir.path().join("known_hosts");
    std::fs::write(
        &known,
        format!("[127.0.0.1]:{} {}\n", sshd.port(), wrong.to_openssh()),
    )
    .unwrap();
    t.host_key = HostKeyPolicy::KnownHosts(known);
    let e = Session::connect(&t, &fast_limits()).await.unwrap_err();
    assert!(
        matches!(&e, SshError::HostKeyMismatch { expected_algorithm, .. } if *expected_algorithm == "ssh-ed25519"),
        "{e:?}"
    );

    // And the right pin works against the RSA-only host (rsa-sha2 signatures).
    t.host_key = HostKeyPolicy::Pinned(host_has);
    connect(&t).await;
}

/// What a hardened OpenSSH allows: finite-field Diffie-Hellman groups,
/// AES-CTR with HMAC-SHA2 (plain and encrypt-then-MAC), RSA-SHA2 host keys
/// only, and ECDSA and RSA user keys.
#[tokio::test]
async fn a_hardened_server_with_dh_groups_aes_ctr_and_rsa_sha2() {
    init_tracing();
    let keys = tempfile::tempdir().unwrap();
    for (kex, cipher, mac, user_key) in [
        (
            "diffie-hellman-group14-sha256",
            "aes128-ctr",
            "hmac-sha2-256",
            KeyType::Ecdsa,
        ),
        (
            "diffie-hellman-group16-sha512",
            "aes256-ctr",
            "hmac-sha2-512-etm@openssh.com",
            KeyType::Rsa,
        ),
    ] {
        let sshd = Sshd::start_with(
            SshdOptions::default()
                .host_keys(&[KeyType::Rsa])
                .config(format!("KexAlgorithms {kex}"))
                .config(format!("Ciphers {cipher}"))
                .config(format!("MACs {mac}"))
                .config("HostKeyAlgorithms rsa-sha2-512,rsa-sha2-256")
                .config("PubkeyAcceptedAlgorithms ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256"),
        )
        .unwrap();
        let path = keys.path().join(format!("{kex}-user"));
        ssh_keygen(&path, user_key, "").unwrap();
        sshd.authorize(&std::fs::read_to_string(path.with_extension("pub")).unwrap())
            .unwrap();
        let mut t = target(&sshd, "root");
        t.auth = Auth::key_file(&path);
        let s = Session::connect(&t, &fast_limits())
            .await
            .unwrap_or_else(|e| panic!("{kex}/{cipher}/{mac}: {e}\n{}", sshd.log_tail(20)))
            .0;
        assert_eq!(s.host_key().key.algorithm(), "ssh-rsa");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        s.write_file(b"hardened\n", file.to_str().unwrap(), &FileSpec::default())
            .await
            .unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"hardened\n");
    }
}

/// Dropbear, the SSH server of small and embedded hosts.
#[tokio::test]
async fn dropbear_as_the_server() {
    init_tracing();
    let server = Dropbear::start().unwrap();
    let t = SshTarget::new(
        "127.0.0.1",
        "root",
        Auth::key_file(server.client_key()),
        HostKeyPolicy::Pinned(HostKey::parse(&server.host_public_key().unwrap()).unwrap()),
    )
    .with_port(server.port());
    let s = Session::connect(&t, &fast_limits())
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log_tail(20)))
        .0;
    let out = s
        .run("id -u; echo $HOME", ExecOptions::default())
        .await
        .unwrap();
    assert_eq!(out.stdout_text().lines().next(), Some("0"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("from-dropbear");
    s.write_file(
        b"dropbear\n",
        file.to_str().unwrap(),
        &FileSpec::mode(0o600),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"dropbear\n");
    assert_eq!(
        s.read_file(file.to_str().unwrap(), 1024).await.unwrap(),
        Some(b"dropbear\n".to_vec())
    );

    // A wrong pin is refused there too.
    let mut wrong = t.clone();
    wrong.host_key = HostKeyPolicy::Pinned(
        HostKey::parse(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILIG2T/B0l0gaqj3puu510tu9N1OkQ4znY3LYuEm5zCF",
        )
        .unwrap(),
    );
    let e = Session::connect(&wrong, &fast_limits()).await.unwrap_err();
    assert!(matches!(e, SshError::HostKeyMismatch { .. }), "{e:?}");
}

#[tokio::test]
async fn exit_codes_stderr_streaming_and_late_output() {
    init_tracing();
    let sshd = Sshd::start().unwrap();
    let s = connect(&target(&sshd, "root")).await;

    let seen = Arc::new(Mutex::new(Vec::<(OutputStream, Vec<u8>)>::new()));
    let sink = seen.clone();
    let out = s
        .exec(
            "echo out; echo err >&2; exit 3",
            ExecOptions {
                on_output: Some(Box::new(move |stream, data| {
                    sink.lock().unwrap().push((stream, data.to_vec()))
                })),
                ..ExecOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(out.status, ExitStatus::Code(3));
    assert_eq!(out.stdout_text(), "out\n");
    assert_eq!(out.stderr_text(), "err\n");
    {
        let seen = seen.lock().unwrap();
        assert!(seen.contains(&(OutputStream::Stdout, b"out\n".to_vec())));
        assert!(seen.contains(&(OutputStream::Stderr, b"err\n".to_vec())));
    }

    let e = s
        .run("echo boom >&2; exit 7", ExecOptions::default())
        .await
        .unwrap_err();
    match &e {
        SshError::CommandFailed {
            status,
            stderr,
            host,
            ..
        } => {
            assert_eq!(*status, ExitStatus::Code(7));
            assert_eq!(stderr, "boom");
            assert!(host.starts_with("127.0.0.1:"));
        }
        other => panic!("expected CommandFailed, got {other:?}"),
    }

    // A background child keeps writing after the shell has exited: the
    // exit status arrives first, the output must still be collected.
    let out = s
        .run(
            "(sleep 0.3; head -c 300000 /dev/zero | tr '\\0' x) & exit 0",
            ExecOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout.len(), 300_000);

    // stdin reaches the command.
    let out = s
        .run(
            "wc -c",
            ExecOptions {
                stdin: Some(vec![b'a'; 100_000]),
                ..ExecOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(out.stdout_text().trim(), "100000");

    // Many channels on one connection, concurrently.
    let runs = (0..20).map(|i| {
        let s = &s;
        async move { s.run(&format!("echo {i}"), ExecOptions::default()).await }
    });
    for (i, r) in futures::future::join_all(runs)
        .await
        .into_iter()
        .enumerate()
    {
        assert_eq!(r.unwrap().stdout_text().trim(), i.to_string());
    }
}

#[tokio::test]
async fn a_command_that_outlives_its_timeout_or_is_cancelled() {
    init_tracing();
    let sshd = Sshd::start().unwrap();
    let s = connect(&target(&sshd, "root")).await;
    // A sleep length no other test uses, to find the process afterwards.
    let seconds = format!("1{}", sshd.port());
    let started = Instant::now();
    let e = s
        .exec(
            &format!("sleep {seconds}; sleep {seconds}"),
            ExecOptions::default().with_timeout(Duration::from_millis(500)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            SshError::Timeout {
                step: Step::Exec,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The command was killed (SIGKILL over the channel), not left running.
    assert_sleep_ends(&seconds).await;

    let token = CancellationToken::new();
    let canceller = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        canceller.cancel();
    });
    let e = s
        .exec(
            "sleep 30",
            ExecOptions {
                cancel: Some(token),
                ..ExecOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, SshError::Cancelled { .. }), "{e:?}");

    // The connection is still good afterwards.
    let out = s.run("echo alive", ExecOptions::default()).await.unwrap();
    assert_eq!(out.stdout_text(), "alive\n");
}

#[tokio::test]
async fn the_timeout_holds_while_stdin_waits_for_window() {
    init_tracing();
    let sshd = Sshd::start().unwrap();
    let s = connect(&target(&sshd, "root")).await;
    // More stdin than sshd's channel window and pipe hold, for a command
    // that never reads it: sending blocks until the command ends.
    let seconds = format!("2{}", sshd.port());
    let command = format!("sleep {seconds}");
    let started = Instant::now();
    let exec = s.exec(
        &command,
        ExecOptions {
            stdin: Some(vec![b'x'; 16 * 1024 * 1024]),
            ..ExecOptions::default().with_timeout(Duration::from_millis(500))
        },
    );
    let e = tokio::time::timeout(Duration::from_secs(15), exec)
        .await
        .expect("the command's timeout was not enforced while sending stdin")
        .unwrap_err();
    assert!(matches!(e, SshError::Timeout { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_sleep_ends(&seconds).await;
}

#[tokio::test]
async fn non_root_user_with_passwordless_sudo() {
    init_tracing();
    // Removed again when the last test using it drops its guard.
    let _user = ensure_user(SUDO_USER, SudoRule::Passwordless).unwrap();
    let sshd = Sshd::start().unwrap();
    let s = connect(&target(&sshd, SUDO_USER)).await;
    assert!(s.needs_sudo());
    let out = s.run("id -u", ExecOptions::default()).await.unwrap();
    assert_ne!(out.stdout_text().trim(), "0");
    let out = s.run("id -u", ExecOptions::sudo()).await.unwrap();
    assert_eq!(out.stdout_text().trim(), "0");

    // A sudo'd command that outlives its timeout is stopped too.
    let seconds = format!("2{}", sshd.port());
    let e = s
        .exec(
            &format!("sleep {seconds}; sleep {seconds}"),
            ExecOptions::sudo().with_timeout(Duration::from_millis(500)),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, SshError::Timeout { .. }), "{e:?}");
    assert_sleep_ends(&seconds).await;

    // File writes go through sudo: a root-only directory works.
    let dir = tempfile::tempdir().unwrap(); // 0700, owned by root
    let path = dir.path().join("secret.key");
    let remote = path.to_str().unwrap();
    let spec = FileSpec::mode(0o600).owned_by("root:root");
    let outcome = s
        .write_file(b"key material\n", remote, &spec)
        .await
        .unwrap();
    assert!(matches!(outcome, UploadOutcome::Uploaded { bytes: 13, .. }));
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.uid(), 0);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::read(&path).unwrap(), b"key material\n");

    // Same over SFTP (sftp-server under sudo), and the skip works for both.
    let sftp = FileSpec::mode(0o644).via(TransferMethod::Sftp);
    let path2 = dir.path().join("sftp.conf");
    let out = s
        .write_file(b"a=b\n", path2.to_str().unwrap(), &sftp)
        .await
        .unwrap();
    assert!(matches!(out, UploadOutcome::Uploaded { .. }));
    assert_eq!(std::fs::metadata(&path2).unwrap().uid(), 0);
    let again = s
        .write_file(b"a=b\n", path2.to_str().unwrap(), &sftp)
        .await
        .unwrap();
    assert!(matches!(
        again,
        UploadOutcome::Unchanged {
            metadata_updated: false,
            ..
        }
    ));

    // Mode drift is corrected without resending.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let fixed = s
        .write_file(b"key material\n", remote, &spec)
        .await
        .unwrap();
    assert!(matches!(
        fixed,
        UploadOutcome::Unchanged {
            metadata_updated: true,
            ..
        }
    ));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Download through sudo, both ways.
    let local = tempfile::tempdir().unwrap();
    for method in [TransferMethod::ExecStream, TransferMethod::Sftp] {
        let dst = local.path().join(format!("{method:?}"));
        let d = s.download(remote, &dst, method).await.unwrap();
        assert_eq!(d.bytes, 13);
        assert_eq!(std::fs::read(&dst).unwrap(), b"key material\n");
    }
}

#[tokio::test]
async fn non_root_user_whose_sudo_needs_a_password() {
    init_tracing();
    // Removed again when the last test using it drops its guard.
    let _user = ensure_user(PASSWORD_USER, SudoRule::PasswordRequired).unwrap();
    let sshd = Sshd::start().unwrap();
    let s = connect(&target(&sshd, PASSWORD_USER)).await;
    let started = Instant::now();
    let e = s.run("id -u", ExecOptions::sudo()).await.unwrap_err();
    match &e {
        SshError::SudoNeedsPassword { user, host } => {
            assert_eq!(user, PASSWORD_USER);
            assert!(host.starts_with("127.0.0.1:"));
        }
        other => panic!("expected SudoNeedsPassword, got {other:?}"),
    }
    assert!(e.to_string().contains("NOPASSWD"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "sudo -n must not wait"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let e = s
        .write_file(b"x", path.to_str().unwrap(), &FileSpec::default())
        .await
        .unwrap_err();
    assert!(matches!(e, SshError::SudoNeedsPassword { .. }), "{e:?}");
    assert!(!path.exists());
}

#[tokio::test]
async fn bastion_hop_through_a_second_sshd() {
    init_tracing();
    // Removed again when the last test using it drops its guard.
    let _user = ensure_user(SUDO_USER, SudoRule::Passwordless).unwrap();
    let bastion = Sshd::start().unwrap();
    let inner = Sshd::start().unwrap();
    // Each hop has its own user, key and host-key check.
    let jump = target(&bastion, SUDO_USER);
    let t = target(&inner, "root").via(jump.clone());
    let (s, keys) = Session::connect(&t, &fast_limits()).await.unwrap();
    assert_eq!(
        keys.host.key,
        HostKey::parse(&inner.host_public_key().unwrap()).unwrap()
    );
    assert_eq!(keys.bastions.len(), 1);
    assert!(!keys.any_first_seen());
    assert_eq!(s.bastion().unwrap().user(), SUDO_USER);
    let out = s.run("id -un", ExecOptions::default()).await.unwrap();
    assert_eq!(out.stdout_text().trim(), "root");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("through-bastion");
    s.write_file(b"hop", path.to_str().unwrap(), &FileSpec::default())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"hop");

    // The inner connection really came from the bastion's sshd.
    let log = std::fs::read_to_string(inner.dir().join("sshd-1.log")).unwrap();
    assert!(log.contains("Accepted publickey for root"), "{log}");
    let blog = std::fs::read_to_string(bastion.dir().join("sshd-1.log")).unwrap();
    assert!(
        blog.contains(&format!("Accepted publickey for {SUDO_USER}")),
        "{blog}"
    );

    // A bastion seen for the first time: its key comes back to be recorded
    // (a status' observedBastionHostKey), like the host's.
    let mut first_jump = jump.clone();
    first_jump.host_key = HostKeyPolicy::FirstSeen;
    let (_, keys) = Session::connect(&target(&inner, "root").via(first_jump), &fast_limits())
        .await
        .unwrap();
    assert!(!keys.host.first_seen);
    assert_eq!(keys.bastions.len(), 1);
    assert!(keys.bastions[0].first_seen);
    assert!(keys.any_first_seen());
    assert_eq!(
        keys.bastions[0].key,
        HostKey::parse(&bastion.host_public_key().unwrap()).unwrap()
    );

    // A wrong host key for the bastion stops there.
    let mut bad_jump = jump;
    bad_jump.host_key = pinned(&inner);
    let e = Session::connect(&target(&inner, "root").via(bad_jump), &fast_limits())
        .await
        .unwrap_err();
    match e {
        SshError::HostKeyMismatch { host, .. } => {
            assert_eq!(host, format!("127.0.0.1:{}", bastion.port()))
        }
        other => panic!("expected HostKeyMismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn connect_retries_then_names_host_and_step() {
    init_tracing();
    let port = kubeseed_testenv::ports::free_port().unwrap();
    let t = SshTarget::new(
        "127.0.0.1",
        "root",
        Auth::key_file("/nonexistent"),
        HostKeyPolicy::FirstSeen,
    )
    .with_port(port);
    let mut limits = Limits::default();
    limits.connect_attempts = 3;
    limits.backoff_initial = Duration::from_millis(100);
    let started = Instant::now();
    let e = Session::connect(&t, &limits).await.unwrap_err();
    assert!(
        matches!(
            e,
            SshError::Io {
                step: Step::Connect,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .starts_with(&format!("127.0.0.1:{port}: connect")),
        "{e}"
    );
    // Two backoffs of 50..100 ms and 100..200 ms.
    assert!(started.elapsed() >= Duration::from_millis(150));
}

/// The operator runs these on tokio tasks: the futures must be `Send` and a
/// session shareable between tasks.
#[allow(dead_code)]
fn futures_are_send(s: &Session, p: &std::path::Path) {
    fn send<T: Send>(_: T) {}
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Session>();
    send_sync::<SshError>();
    send(Session::connect(
        &SshTarget::new("h", "u", Auth::Agent, HostKeyPolicy::FirstSeen),
        &Limits::default(),
    ));
    send(s.exec("true", ExecOptions::default()));
    send(s.upload(p, "/x", &FileSpec::default()));
    send(s.write_file(b"x", "/x", &FileSpec::default()));
    send(s.upload_reader(&b"x"[..], "/x", &FileSpec::default()));
    send(s.download("/x", p, TransferMethod::ExecStream));
    send(s.read_file("/x", 1));
    send(s.remove_file("/x"));
    send(s.remove_tree("/x/y"));
}

/// The remote `sleep SECONDS` a timed-out command started must be gone (killed
/// over the channel), not left running: sshd runs on this machine, so /proc
/// shows it.
async fn assert_sleep_ends(seconds: &str) {
    let wanted = format!("sleep\0{seconds}\0");
    let running = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .any(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == wanted.as_bytes()))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while running() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !running(),
        "sleep {seconds} still running after the timeout"
    );
}
