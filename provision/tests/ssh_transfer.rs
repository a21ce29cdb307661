//! File transfer against real OpenSSH `sshd`s started by each test.
//!
//! Kind of test: real processes started by the test, on 127.0.0.1 only.
//! Needs root (a sudo test user is created with useradd) and Debian's
//! `openssh-server` and `sudo`. Set `KUBESEED_SSH_TEST_MIB` to change the
//! size of the big upload (default 200).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Instant;

use kubeseed_provision::ssh::*;
use kubeseed_testenv::sshd::{Sshd, SudoRule, ensure_user};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

const SUDO_USER: &str = "kubeseed-test-sudo";

fn target(sshd: &Sshd) -> SshTarget {
    target_as(sshd, "root")
}

fn target_as(sshd: &Sshd, user: &str) -> SshTarget {
    SshTarget::new(
        "127.0.0.1",
        user,
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
    let left = leftovers(remote_dir.path());
    assert!(left.is_empty(), "temporary files left: {left:?}");

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
    // A parent that is a file is a remote error naming it, found before
    // anything is sent.
    let e = s
        .write_file(b"x", &format!("{remote}/f"), &FileSpec::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            SshError::Remote {
                step: Step::CheckRemote,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("unit.service"), "{e}");
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

/// Yields `good` bytes, then fails: an upload cut short.
struct FailingReader {
    good: usize,
}

impl tokio::io::AsyncRead for FailingReader {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.good == 0 {
            return std::task::Poll::Ready(Err(std::io::Error::other("local disk on fire")));
        }
        let n = self.good.min(buf.remaining());
        buf.put_slice(&vec![1u8; n]);
        self.good -= n;
        std::task::Poll::Ready(Ok(()))
    }
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("kubeseed-"))
        .collect()
}

fn mode_of(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Everything the `Host` trait asks of a session, as root and as a user
/// with passwordless sudo, in a root-only (0700) directory.
#[tokio::test]
async fn file_operations_as_root_and_through_sudo() {
    // Removed again when the last test using it drops its guard.
    let _user = ensure_user(SUDO_USER, SudoRule::Passwordless).unwrap();
    let sshd = Sshd::start().unwrap();
    for user in ["root", SUDO_USER] {
        let (s, _) = Session::connect(&target_as(&sshd, user), &Limits::default())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let p = |rel: &str| root.join(rel).to_str().unwrap().to_owned();

        // Root only: the sudo user can do nothing here without sudo.
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)).unwrap();

        // Missing parents are created 0755 and owned by root; the existing
        // one keeps its mode.
        s.write_file(
            b"a: b\n",
            &p("etc/kubeseed/conf.d/x.yaml"),
            &FileSpec::mode(0o600),
        )
        .await
        .unwrap();
        assert_eq!(
            std::fs::read(p("etc/kubeseed/conf.d/x.yaml")).unwrap(),
            b"a: b\n"
        );
        for d in ["etc", "etc/kubeseed", "etc/kubeseed/conf.d"] {
            assert_eq!(mode_of(&root.join(d)), 0o755, "{user}: {d}");
            assert_eq!(std::fs::metadata(root.join(d)).unwrap().uid(), 0);
        }
        assert_eq!(mode_of(root), 0o700, "{user}: existing directory changed");
        let local = tempfile::tempdir().unwrap();
        let src = local.path().join("payload.bin");
        let sha = random_file(&src, 1);
        let out = s
            .upload(&src, &p("opt/bin/payload"), &FileSpec::mode(0o755))
            .await
            .unwrap();
        assert!(matches!(out, UploadOutcome::Uploaded { .. }), "{out:?}");
        assert_eq!(sha256_of(&root.join("opt/bin/payload")), sha);
        let spec = FileSpec::mode(0o644).via(TransferMethod::Sftp);
        s.upload_reader(&b"streamed"[..], &p("srv/a/b/streamed"), &spec)
            .await
            .unwrap();
        assert_eq!(std::fs::read(p("srv/a/b/streamed")).unwrap(), b"streamed");
        assert_eq!(mode_of(&root.join("srv/a")), 0o755);

        // A failed upload leaves no temporary file behind, either way.
        for method in [TransferMethod::ExecStream, TransferMethod::Sftp] {
            let spec = FileSpec::mode(0o644).via(method);
            let e = s
                .upload_reader(FailingReader { good: 3 << 20 }, &p("srv/a/b/cut"), &spec)
                .await
                .unwrap_err();
            assert!(
                e.to_string().contains("local disk on fire"),
                "{user} {method:?}: {e}"
            );
            assert!(!root.join("srv/a/b/cut").exists());
            assert_eq!(
                leftovers(&root.join("srv/a/b")),
                Vec::<String>::new(),
                "{user} {method:?}"
            );
        }

        // read_file: the whole content, None when absent, errors naming the
        // path (and size) for a file too large or not a regular file.
        let key = root.join("etc/kubeseed/conf.d/x.yaml");
        assert_eq!(
            s.read_file(&p("etc/kubeseed/conf.d/x.yaml"), 5)
                .await
                .unwrap(),
            Some(b"a: b\n".to_vec())
        );
        assert_eq!(s.read_file(&p("nothing/here"), 5).await.unwrap(), None);
        let e = s.read_file(key.to_str().unwrap(), 4).await.unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("x.yaml") && msg.contains("5 bytes"), "{msg}");
        let e = s.read_file(&p("etc/kubeseed/conf.d"), 4).await.unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let binary: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        std::fs::write(root.join("bin.dat"), &binary).unwrap();
        assert_eq!(
            s.read_file(&p("bin.dat"), 300_000).await.unwrap(),
            Some(binary)
        );
        std::fs::write(root.join("empty"), b"").unwrap();
        assert_eq!(s.read_file(&p("empty"), 0).await.unwrap(), Some(vec![]));

        // remove_file: files and symlinks (not their targets), never a
        // directory.
        std::os::unix::fs::symlink(root.join("srv/a"), root.join("link")).unwrap();
        assert!(s.remove_file(&p("link")).await.unwrap());
        assert!(root.join("srv/a/b/streamed").exists());
        assert!(s.remove_file(&p("empty")).await.unwrap());
        assert!(!s.remove_file(&p("empty")).await.unwrap());
        let e = s.remove_file(&p("srv/a")).await.unwrap_err();
        assert!(
            matches!(
                e,
                SshError::Remote {
                    step: Step::Remove,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(root.join("srv/a").is_dir());

        // remove_tree: whole trees; system directories and odd paths are
        // refused before anything is sent.
        assert!(s.remove_tree(&p("srv")).await.unwrap());
        assert!(!root.join("srv").exists());
        assert!(!s.remove_tree(&p("srv")).await.unwrap());
        let e = s.remove_tree(&p("bin.dat")).await.unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
        for refused in [
            "/etc",
            "/var/lib/",
            "/usr/local/bin",
            "/",
            "relative",
            "/tmp/../etc/x",
        ] {
            let e = s.remove_tree(refused).await.unwrap_err();
            assert!(matches!(e, SshError::InvalidInput(_)), "{refused}: {e:?}");
        }
        assert!(std::path::Path::new("/etc/passwd").exists());
        s.close().await.unwrap();
    }
}
