//! Test accounts made by `ensure_user` last as long as the last guard for
//! them, in this process or another, and are then removed with their home
//! and sudoers file.
//!
//! Kind of test: real programs (useradd, userdel, flock); needs root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kubeseed_testenv::sshd::{SudoRule, ensure_user};

const NAME: &str = "kubeseed-test-guard";

fn exists(name: &str) -> bool {
    Command::new("id")
        .arg("-u")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn sudoers() -> &'static Path {
    Path::new("/etc/sudoers.d/kubeseed-test-kubeseed-test-guard")
}

#[test]
fn a_test_user_lasts_as_long_as_its_last_guard_anywhere() {
    let a = ensure_user(NAME, SudoRule::Passwordless).unwrap();
    let b = ensure_user(NAME, SudoRule::Passwordless).unwrap();
    assert_eq!(a.name(), NAME);
    assert!(exists(NAME));
    assert!(sudoers().exists());
    assert!(Path::new("/home").join(NAME).exists());

    drop(a);
    assert!(exists(NAME), "removed while another guard still holds it");

    // Another process holds it too (as a second test binary would).
    let lock = format!("/run/lock/kubeseed-test-users/{NAME}.lock");
    let mut other = Command::new("flock")
        .args(["--shared", "--no-fork", &lock, "sleep", "30"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(b);
    assert!(exists(NAME), "removed while another process still holds it");
    other.kill().unwrap();
    other.wait().unwrap();

    // The last guard, wherever it is, removes account, home and sudoers file.
    drop(ensure_user(NAME, SudoRule::Passwordless).unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while exists(NAME) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!exists(NAME), "{NAME} left behind");
    assert!(!sudoers().exists(), "its sudoers file left behind");
    assert!(
        !Path::new("/home").join(NAME).exists(),
        "its home left behind"
    );
}

#[test]
fn only_test_accounts_are_made_and_removed() {
    let e = ensure_user("root", SudoRule::None).unwrap_err();
    assert!(e.to_string().contains("kubeseed-test-"), "{e}");
}
