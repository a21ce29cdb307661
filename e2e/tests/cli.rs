//! The `lab` command's refusals (kind: tests against the real binary; no
//! lab is created, so these run anywhere).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step must stop it

use std::process::Command;

fn lab(args: &[&str], path: Option<&str>) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lab"));
    command.args(args).env("RUST_LOG", "off");
    if let Some(path) = path {
        command.env("PATH", path);
    }
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

#[test]
fn says_which_programs_are_missing_and_how_to_install_them() {
    let empty = tempfile::tempdir().unwrap();
    let (ok, text) = lab(&["check"], Some(empty.path().to_str().unwrap()));
    assert!(!ok);
    if is_root() {
        assert!(text.contains("systemd-nspawn"), "{text}");
        assert!(
            text.contains("apt-get install -y systemd-container"),
            "{text}"
        );
    } else {
        assert!(text.contains("must run as root"), "{text}");
    }
}

#[test]
fn refuses_a_public_or_malformed_subnet_before_doing_anything() {
    for (subnet, why) in [
        ("8.8.8.0/24", "private address space"),
        ("10.213.0.0/16", "is not a /24"),
        ("10.213.0.7/24", "network address"),
    ] {
        let (ok, text) = lab(&["up", "2", "--subnet", subnet], None);
        assert!(!ok);
        assert!(text.contains(why), "{subnet}: {text}");
    }
}

#[test]
fn refuses_a_name_that_cannot_name_links() {
    let (ok, text) = lab(&["--name", "Much-Too-Long", "status"], None);
    assert!(!ok);
    assert!(text.contains("1 to 8 characters"), "{text}");
}

#[test]
fn down_of_a_lab_that_is_not_up_says_so() {
    let (ok, text) = lab(&["--name", "nosuch", "down"], None);
    assert!(!ok);
    assert!(text.contains("is not up"), "{text}");
}
