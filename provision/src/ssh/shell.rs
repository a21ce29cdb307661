//! POSIX shell command lines built from untrusted pieces.
//!
//! Everything the engine runs on a host is a `sh` script with every path,
//! mode and owner single-quoted here, so a file name can never become code.

use super::error::SshError;

/// Single-quotes `s` for a POSIX shell.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Wraps `command` so it runs as root via `sudo -n` (never prompts).
pub fn sudo(command: &str) -> String {
    format!("sudo -n -- sh -c {}", quote(command))
}

/// The environment variable that marks the processes of one command.
pub(crate) const MARKER_VAR: &str = "KUBESEED_EXEC_ID";

/// Runs `command` with a marker in its environment, inherited by every
/// process it starts. The shell is started through `env` so the marker is in
/// its own initial environment (what `/proc/PID/environ` shows), and inside
/// any sudo, because sudo resets the environment.
pub(crate) fn with_marker(marker: &str, command: &str) -> String {
    format!("exec env {MARKER_VAR}={marker} sh -c {}", quote(command))
}

/// SIGKILLs, by PID, every process whose environment carries `marker`;
/// twice, for children started while the first pass ran.
pub(crate) fn kill_marked(marker: &str) -> String {
    format!(
        "for pass in 1 2; do for f in /proc/[0-9]*/environ; do \
         if grep -qaF {} \"$f\" 2>/dev/null; then p=${{f#/proc/}}; kill -KILL \"${{p%/environ}}\" 2>/dev/null; fi; \
         done; done; true",
        quote(&format!("{MARKER_VAR}={marker}"))
    )
}

/// A remote path the engine will write: absolute, a file name, no NUL or newline.
pub(crate) fn check_remote_path(path: &str) -> Result<(), SshError> {
    let bad = |why: &str| {
        Err(SshError::InvalidInput(format!(
            "remote path {path:?} {why}; give an absolute file path such as /etc/kubernetes/pki/ca.crt"
        )))
    };
    if !path.starts_with('/') {
        return bad("is not absolute");
    }
    if path.ends_with('/')
        || path
            .rsplit('/')
            .next()
            .is_some_and(|n| n.is_empty() || n == "." || n == "..")
    {
        return bad("does not name a file");
    }
    if path.contains('\0') || path.contains('\n') {
        return bad("contains a NUL or newline");
    }
    Ok(())
}

/// An owner for `chown`: `user` or `user:group`, names or numeric ids.
pub(crate) fn check_owner(owner: &str) -> Result<(), SshError> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let mut parts = owner.split(':');
    let ok = match (parts.next(), parts.next(), parts.next()) {
        (Some(u), None, None) => part_ok(u),
        (Some(u), Some(g), None) => part_ok(u) && part_ok(g),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(SshError::InvalidInput(format!(
            "owner {owner:?} is not `user` or `user:group` (names or numeric ids)"
        )))
    }
}

/// The temporary name beside `path` that a file is written under before
/// being renamed into place (same directory, so the rename is atomic).
pub(crate) fn temp_path(path: &str, nonce: u64) -> String {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    format!("{dir}/.{name}.kubeseed-{nonce:016x}")
}

/// Prints `SIZE MODE OWNER:GROUP` (mode in octal) of `path`, or `absent`.
pub(crate) fn describe_file(path: &str) -> String {
    let p = quote(path);
    format!(
        "if [ -f {p} ]; then stat -c '%s %a %U:%G' -- {p}; \
         elif [ -e {p} ]; then echo 'kubeseed: exists but is not a regular file' >&2; exit 3; \
         else echo absent; fi"
    )
}

/// Prints the sha256 (hex) of `path`. The file is read from stdin: GNU
/// `sha256sum FILE` prefixes the line with `\` when the name holds a
/// backslash, which would shift the hash.
pub(crate) fn sha256(path: &str) -> String {
    format!("sha256sum < {} | cut -c1-64", quote(path))
}

/// Receives stdin into `tmp` with nothing readable by others meanwhile.
pub(crate) fn receive(tmp: &str) -> String {
    format!("umask 077 && cat > {}", quote(tmp))
}

/// Checks the received size, sets owner and mode, and renames `tmp` over
/// `path`; removes `tmp` on any failure. `chown` comes before `chmod`:
/// `chown` clears the setuid and setgid bits.
pub(crate) fn finalize(tmp: &str, path: &str, size: u64, mode: u32, owner: Option<&str>) -> String {
    let t = quote(tmp);
    let chown = owner
        .map(|o| format!("chown -- {} {t} && ", quote(o)))
        .unwrap_or_default();
    format!(
        "s=$(stat -c %s -- {t}) && if [ \"$s\" != {size} ]; then \
         echo \"kubeseed: received $s bytes, expected {size}\" >&2; rm -f -- {t}; exit 4; fi \
         && {chown}chmod {mode:o} -- {t} && mv -f -- {t} {p} || {{ rm -f -- {t}; exit 5; }}",
        p = quote(path)
    )
}

/// Sets owner and mode of an existing file (`chown` first: it clears the
/// setuid and setgid bits).
pub(crate) fn set_metadata(path: &str, mode: u32, owner: Option<&str>) -> String {
    let p = quote(path);
    let chown = owner
        .map(|o| format!("chown -- {} {p} && ", quote(o)))
        .unwrap_or_default();
    format!("{chown}chmod {mode:o} -- {p}")
}

/// Removes a temporary file (best effort, after a failed transfer).
pub(crate) fn remove(path: &str) -> String {
    format!("rm -f -- {}", quote(path))
}

/// Runs an SFTP server on the exec channel, for users who need sudo to
/// write (the `sftp` subsystem would run as the login user). Debian, RHEL
/// and Arch put it in different places.
pub(crate) const SFTP_SERVER: &str = "for p in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server \
     /usr/lib/ssh/sftp-server /usr/libexec/sftp-server; do [ -x \"$p\" ] && exec \"$p\"; done; \
     echo 'kubeseed: no sftp-server binary found on the host' >&2; exit 127";

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn sh(script: &str) -> String {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn quoting_survives_a_real_shell() {
        for s in [
            "plain",
            "with space",
            "it's",
            "$(rm -rf /)",
            "`x`",
            "a\\b",
            "\"q\"",
            "",
        ] {
            assert_eq!(sh(&format!("printf %s {}", quote(s))), s);
        }
    }

    #[test]
    fn sudo_wraps_a_quoted_script() {
        assert_eq!(sudo("echo 'hi'"), "sudo -n -- sh -c 'echo '\\''hi'\\'''");
    }

    #[test]
    fn kill_marked_kills_only_marked_processes() {
        use std::process::Stdio;
        let marked = Command::new("sh")
            .arg("-c")
            .arg(with_marker("unit-test-7f3a", "sleep 60 & sleep 60; wait"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut unmarked = Command::new("sleep").arg("60").spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        let st = Command::new("sh")
            .arg("-c")
            .arg(kill_marked("unit-test-7f3a"))
            .status()
            .unwrap();
        assert!(st.success());
        let mut marked = marked;
        let status = marked.wait().unwrap();
        assert!(!status.success(), "marked shell should be killed");
        assert!(
            unmarked.try_wait().unwrap().is_none(),
            "unmarked sleep must survive"
        );
        unmarked.kill().unwrap();
        unmarked.wait().unwrap();
    }

    #[test]
    fn remote_paths_must_be_absolute_files() {
        check_remote_path("/etc/kubernetes/admin.conf").unwrap();
        for bad in ["etc/x", "/etc/", "/etc/..", "/a\nb", "/"] {
            assert!(check_remote_path(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn owners() {
        check_owner("root").unwrap();
        check_owner("etcd:etcd").unwrap();
        check_owner("0:0").unwrap();
        for bad in ["", "a:b:c", "a b", "a;rm", ":g"] {
            assert!(check_owner(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn temp_path_is_hidden_beside_the_target() {
        assert_eq!(
            temp_path("/etc/x.conf", 255),
            "/etc/.x.conf.kubeseed-00000000000000ff"
        );
    }

    #[test]
    fn sha256_of_a_path_with_a_backslash() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a\\b");
        std::fs::write(&f, b"hello").unwrap();
        assert_eq!(
            sh(&sha256(f.to_str().unwrap())),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n"
        );
    }

    #[test]
    fn setuid_and_setgid_bits_survive_the_owner_change() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(".f.tmp");
        let dst = dir.path().join("f");
        std::fs::write(&tmp, b"#!/bin/sh\n").unwrap();
        let (t, d) = (tmp.to_str().unwrap(), dst.to_str().unwrap());
        let owner = sh("id -u").trim().to_owned();
        let st = Command::new("sh")
            .arg("-c")
            .arg(finalize(t, d, 10, 0o6755, Some(&owner)))
            .status()
            .unwrap();
        assert!(st.success());
        let mode = || std::fs::metadata(&dst).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(), 0o6755);
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
        let st = Command::new("sh")
            .arg("-c")
            .arg(set_metadata(d, 0o6755, Some(&owner)))
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(mode(), 0o6755);
    }

    #[test]
    fn finalize_checks_size_then_renames_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(".f.tmp");
        let dst = dir.path().join("it's here");
        std::fs::write(&tmp, b"hello").unwrap();
        let (t, d) = (tmp.to_str().unwrap(), dst.to_str().unwrap());
        let st = Command::new("sh")
            .arg("-c")
            .arg(finalize(t, d, 4, 0o600, None))
            .status()
            .unwrap();
        assert!(!st.success());
        assert!(!tmp.exists() && !dst.exists(), "short file must be removed");
        std::fs::write(&tmp, b"hello").unwrap();
        let st = Command::new("sh")
            .arg("-c")
            .arg(finalize(t, d, 5, 0o640, None))
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(std::fs::read(&dst).unwrap(), b"hello");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&dst).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert!(sh(&describe_file(d)).starts_with("5 640 "));
        assert_eq!(
            sh(&sha256(d)),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n"
        );
        assert_eq!(sh(&describe_file(&format!("{d}.none"))), "absent\n");
    }
}
