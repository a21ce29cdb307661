//! File transfer against real OpenSSH `sshd`s started by each test.
//!
//! Kind of test: real processes started by the test, on 127.0.0.1 only.
//! Needs root and Debian's `openssh-server`. Set `KUBESEED_SSH_TEST_MIB` to
//! change the size of the big upload (default 200).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Instant;

use kubeseed_provision::ssh::*;
use kubeseed_testenv::sshd::Sshd;
use rand::RngCore as _;
use sha2::{Digest, Sha256};

fn target(sshd: &Sshd) -> SshTarget {
    SshTarget::new(
        "127.0.0.1",
        "root",
        Auth::key_file(sshd.client_key()),
        HostKeyPolicy::Pinned(HostKey::parse(&sshd.host_public_key().unwrap()).unwrap()),
    )
    .with_port(sshd.port())
}

/// Random (incompressible) content, written in 1 MiB pieces.
fn random_file(path: &Path, mib: usize) -> String {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; 1024 * 1024];
    for _ in 0..mib {
        rand::rng().fill_bytes(&mut chunk);
        hasher.update(&chunk);
        f.write_all(&chunk).unwrap();
    }
    f.flush().unwrap();
    hex::encode(hasher.finalize())
}

fn sha256_of(path: &Path) -> String {
    let mut f = std::fs::File::open(path).unwrap();
    let mut hasher = Sha256::new();
    std::io::copy(&mut f, &mut hasher).unwrap();
    hex::encode(hasher.finalize())
}

fn big_mib() -> usize {
    std::env::var("KUBESEED_SSH_TEST_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

#[tokio::test]
async fn big_upload_then_skipped_by_hash_then_download() {
    let mib = big_mib();
    let sshd = Sshd::start().unwrap();
    let (s, _) = Session::connect(&target(&sshd), &Limits::default())
        .await
        .unwrap();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("big.bin");
    let sha = random_file(&src, mib);
    let remote_dir = tempfile::tempdir().unwrap();

    for method in [TransferMethod::ExecStream, TransferMethod::Sftp] {
        let dst = remote_dir.path().join(format!("big-{method:?}.bin"));
        let remote = dst.to_str().unwrap();
        let spec = FileSpec::mode(0o640).owned_by("root:root").via(method);

        let started = Instant::now();
        let first = s.upload(&src, remote, &spec).await.unwrap();
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "{method:?}: {mib} MiB uploaded in {secs:.2} s ({:.0} MiB/s, debug build)",
            mib as f64 / secs
        );
        assert_eq!(
            first,
            UploadOutcome::Uploaded {
                bytes: (mib * 1024 * 1024) as u64,
                sha256: sha.clone()
            }
        );
        assert_eq!(sha256_of(&dst), sha);
        let meta = std::fs::metadata(&dst).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(meta.uid(), 0);
        let inode = meta.ino();

        let started = Instant::now();
        let second = s.upload(&src, remote, &spec).await.unwrap();
        assert_eq!(
            second,
            UploadOutcome::Unchanged {
                sha256: sha.clone(),
                metadata_updated: false
            }
        );
        // Not rewritten: same inode, and no temporary files left behind.
        assert_eq!(std::fs::metadata(&dst).unwrap().ino(), inode);
        eprintln!(
            "{method:?}: skipped by hash in {:.2} s",
            started.elapsed().as_secs_f64()
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(remote_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("kubeseed-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    // Download both ways, constant memory, verified by sha256.
    let remote = remote_dir.path().join("big-ExecStream.bin");
    for method in [TransferMethod::ExecStream, TransferMethod::Sftp] {
        let back = local.path().join(format!("back-{method:?}.bin"));
        let d = s
            .download(remote.to_str().unwrap(), &back, method)
            .await
            .unwrap();
        assert_eq!(d.sha256, sha);
        assert_eq!(sha256_of(&back), sha);
    }
}

#[tokio::test]
async fn changed_content_replaces_atomically_and_reader_uploads() {
    let sshd = Sshd::start().unwrap();
    let (s, _) = Session::connect(&target(&sshd), &Limits::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("unit.service");
    let remote = dst.to_str().unwrap();
    s.write_file(b"v1\n", remote, &FileSpec::default())
        .await
        .unwrap();
    let old_inode = std::fs::metadata(&dst).unwrap().ino();
    let out = s
        .write_file(b"v2\n", remote, &FileSpec::default())
        .await
        .unwrap();
    assert!(matches!(out, UploadOutcome::Uploaded { bytes: 3, .. }));
    assert_eq!(std::fs::read(&dst).unwrap(), b"v2\n");
    // Renamed into place, not rewritten in place.
    assert_ne!(std::fs::metadata(&dst).unwrap().ino(), old_inode);

    let data = vec![7u8; 3 * 1024 * 1024 + 5];
    let out = s
        .upload_reader(&data[..], remote, &FileSpec::mode(0o600))
        .await
        .unwrap();
    assert_eq!(
        out,
        UploadOutcome::Uploaded {
            bytes: data.len() as u64,
            sha256: hex::encode(Sha256::digest(&data))
        }
    );
    assert_eq!(std::fs::read(&dst).unwrap(), data);

    // Bad input is refused before anything is sent.
    let e = s
        .write_file(b"x", "relative/path", &FileSpec::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not absolute"), "{e}");
    // A missing directory is a remote error that says what happened.
    let e = s
        .write_file(b"x", "/nonexistent-dir/f", &FileSpec::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            SshError::Remote {
                step: Step::Upload,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("nonexistent-dir"), "{e}");
}

#[tokio::test]
async fn concurrent_uploads_to_several_sshds() {
    let hosts: Vec<Sshd> = (0..3).map(|_| Sshd::start().unwrap()).collect();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("payload.bin");
    let sha = random_file(&src, 32);
    let limits = Limits::new(4, 2);
    let remote_dir = tempfile::tempdir().unwrap();

    let mut sessions = Vec::new();
    for h in &hosts {
        sessions.push(Session::connect(&target(h), &limits).await.unwrap().0);
    }
    let jobs = sessions.iter().enumerate().flat_map(|(i, s)| {
        let src = &src;
        let dir = remote_dir.path();
        (0..3).map(move |j| async move {
            let dst = dir.join(format!("host{i}-file{j}.bin"));
            s.upload(src, dst.to_str().unwrap(), &FileSpec::default())
                .await
                .map(|o| (dst, o))
        })
    });
    let started = Instant::now();
    let results = futures::future::join_all(jobs).await;
    eprintln!(
        "9 x 32 MiB to 3 sshds (global 4, per host 2): {:.2} s",
        started.elapsed().as_secs_f64()
    );
    for r in results {
        let (dst, outcome) = r.unwrap();
        assert!(matches!(outcome, UploadOutcome::Uploaded { .. }));
        assert_eq!(sha256_of(&dst), sha);
    }
}

#[tokio::test]
async fn downloads_are_readable_by_their_owner_only() {
    let sshd = Sshd::start().unwrap();
    let (s, _) = Session::connect(&target(&sshd), &Limits::default())
        .await
        .unwrap();
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("ca.key");
    std::fs::write(&remote, b"private key\n").unwrap();
    std::fs::set_permissions(&remote, std::fs::Permissions::from_mode(0o600)).unwrap();
    let local = tempfile::tempdir().unwrap();
    for method in [TransferMethod::ExecStream, TransferMethod::Sftp] {
        let back = local.path().join(format!("ca-{method:?}.key"));
        s.download(remote.to_str().unwrap(), &back, method)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), b"private key\n");
        let mode = std::fs::metadata(&back).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{method:?}: downloaded file has mode {mode:o}");
    }
}

#[tokio::test]
async fn a_backslash_in_the_remote_path() {
    let sshd = Sshd::start().unwrap();
    let (s, _) = Session::connect(&target(&sshd), &Limits::default())
        .await
        .unwrap();
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("C:\\kube 'x'.conf");
    let remote = remote.to_str().unwrap();
    let spec = FileSpec::mode(0o600);
    let first = s.write_file(b"content\n", remote, &spec).await.unwrap();
    assert!(matches!(first, UploadOutcome::Uploaded { .. }));
    // Same size: the host's sha256 is asked for and must parse.
    let again = s.write_file(b"content\n", remote, &spec).await.unwrap();
    assert!(
        matches!(again, UploadOutcome::Unchanged { .. }),
        "{again:?}"
    );
    let local = tempfile::tempdir().unwrap();
    let back = local.path().join("back.conf");
    s.download(remote, &back, TransferMethod::ExecStream)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), b"content\n");
}
