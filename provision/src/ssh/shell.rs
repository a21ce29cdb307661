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
    describe_or(path, "echo absent")
}

/// [`describe_file`], and when `path` is absent, creates its missing parent
/// directories (0755; existing ones keep their modes) for the upload that
/// follows.
pub(crate) fn prepare_destination(path: &str) -> String {
    let dir = quote(parent_dir(path));
    describe_or(
        path,
        &format!("umask 022 && mkdir -p -m 755 -- {dir} && echo absent"),
    )
}

fn describe_or(path: &str, when_absent: &str) -> String {
    let p = quote(path);
    format!(
        "if [ -f {p} ]; then stat -c '%s %a %U:%G' -- {p}; \
         elif [ -e {p} ]; then printf 'kubeseed: %s exists but is not a regular file\\n' {p} >&2; exit 3; \
         else {when_absent}; fi"
    )
}

/// The directory of an absolute path (`/` for a top-level name).
fn parent_dir(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((dir, _)) => dir,
    }
}

/// Prints the sha256 (hex) of `path`. `openssl` when the host has it:
/// coreutils' `sha256sum` does not use the CPU's SHA instructions and is
/// 7x slower (3.2 s against 0.46 s of CPU for 512 MiB here), which a
/// download pays for while the host is also encrypting. The file is read
/// from stdin: GNU `sha256sum FILE` prefixes the line with `\` when the name
/// holds a backslash, which would shift the hash.
pub(crate) fn sha256(path: &str) -> String {
    let p = quote(path);
    format!(
        "if command -v openssl >/dev/null 2>&1; then h=$(openssl dgst -sha256 -r < {p}); \
         else h=$(sha256sum < {p}); fi && printf '%s\\n' \"${{h%% *}}\""
    )
}

/// The exit status of [`receive`] when its temporary name is already taken.
pub(crate) const EXIT_NAME_TAKEN: u32 = 9;

/// Receives stdin into the new file `tmp`, readable by nobody else
/// meanwhile. Created with O_EXCL (`dd conv=excl`): an existing file or
/// symlink at that name is never followed or overwritten. The shell's
/// noclobber (`set -C`) would not do: POSIX lets it open an existing
/// non-regular file, so a symlink to a FIFO or a device would be followed.
pub(crate) fn receive(tmp: &str) -> String {
    let t = quote(tmp);
    format!(
        "umask 077 && if [ -e {t} ] || [ -L {t} ]; then \
         printf 'kubeseed: %s already exists\\n' {t} >&2; exit {EXIT_NAME_TAKEN}; fi \
         && exec dd of={t} conv=excl bs=1M status=none"
    )
}

/// Writes `path` to stdout (a download).
pub(crate) fn send(path: &str) -> String {
    format!("exec cat -- {}", quote(path))
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

/// Reads a whole regular file in one round trip. The first line says what
/// was found: `file SIZE` (the content follows), `too-large SIZE`,
/// `not-regular` or `absent`.
pub(crate) fn read_file(path: &str, max_bytes: u64) -> String {
    let p = quote(path);
    // `test` compares signed 64-bit numbers.
    let max = max_bytes.min(i64::MAX as u64);
    format!(
        "if [ -f {p} ]; then s=$(stat -c %s -- {p}) || exit 1; \
         if [ \"$s\" -gt {max} ]; then echo \"too-large $s\"; \
         else echo \"file $s\" && exec cat -- {p}; fi; \
         elif [ -e {p} ]; then echo not-regular; else echo absent; fi"
    )
}

/// Removes a file or symlink (never what the link points to). Prints
/// `removed`, `absent` or `directory` (refused).
pub(crate) fn remove_file(path: &str) -> String {
    let p = quote(path);
    format!(
        "if [ -d {p} ] && [ ! -L {p} ]; then echo directory; \
         elif [ -e {p} ] || [ -L {p} ]; then rm -f -- {p} && echo removed; \
         else echo absent; fi"
    )
}

/// Removes the directory tree `path`, or only the link when `path` is a
/// symlink. The path is resolved on the host first and refused when it is
/// one of `system_parents` or directly inside one: a symlink along the way
/// must not turn `/var/lib/x` into `/usr`. Prints `removed`, `absent`,
/// `not-directory` or `system RESOLVED`.
pub(crate) fn remove_tree(path: &str, system_parents: &[&str]) -> String {
    let p = quote(path);
    let checks: String = system_parents
        .iter()
        .map(|parent| {
            let under = quote(&format!("{}/", parent.trim_end_matches('/')));
            format!(
                "case \"$r\" in {under}*/*) ;; {}|{under}*) k=1;; esac; ",
                quote(parent)
            )
        })
        .collect();
    format!(
        "if [ -L {p} ]; then rm -f -- {p} && echo removed; \
         elif [ -d {p} ]; then r=$(readlink -f -- {p}) || exit 1; k=; {checks}\
         if [ -n \"$k\" ]; then printf 'system %s\\n' \"$r\"; else rm -rf -- \"$r\" && echo removed; fi; \
         elif [ -e {p} ]; then echo not-directory; \
         else echo absent; fi"
    )
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

    fn run(script: &str) -> (i32, String, String) {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn mode_of(p: &std::path::Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn prepare_destination_creates_missing_parents_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let existing = dir.path().join("existing");
        std::fs::create_dir(&existing).unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o710)).unwrap();
        let target = existing.join("a/b c/file.conf");
        let (code, out, err) = run(&format!(
            "umask 077; {}",
            prepare_destination(target.to_str().unwrap())
        ));
        assert_eq!((code, out.as_str()), (0, "absent\n"), "{err}");
        assert_eq!(
            mode_of(&existing),
            0o710,
            "an existing directory keeps its mode"
        );
        assert_eq!(mode_of(&existing.join("a")), 0o755);
        assert_eq!(mode_of(&existing.join("a/b c")), 0o755);
        assert!(!target.exists());

        std::fs::write(&target, b"12345").unwrap();
        let (code, out, _) = run(&prepare_destination(target.to_str().unwrap()));
        assert_eq!(code, 0);
        assert!(out.starts_with("5 "), "{out}");

        // A parent that is a file: the error names it.
        let under_file = target.join("x");
        let (code, _, err) = run(&prepare_destination(under_file.to_str().unwrap()));
        assert_ne!(code, 0);
        assert!(err.contains("file.conf"), "{err}");
        // A directory where the file should be.
        let (code, _, err) = run(&prepare_destination(existing.to_str().unwrap()));
        assert_eq!(code, 3);
        assert!(
            err.contains("not a regular file") && err.contains("existing"),
            "{err}"
        );
    }

    #[test]
    fn receive_creates_a_private_file_and_never_follows_or_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join(".f.kubeseed-1");
        let t = tmp.to_str().unwrap();
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!("printf hello | {{ {}; }}", receive(t)))
            .status()
            .unwrap();
        assert!(st.success());
        assert_eq!(std::fs::read(&tmp).unwrap(), b"hello");
        assert_eq!(mode_of(&tmp), 0o600);

        // Taken by a file, a symlink to a file, a dangling symlink, a
        // symlink to a FIFO: refused with EXIT_NAME_TAKEN, nothing touched.
        let (code, _, err) = run(&format!("printf x | {{ {}; }}", receive(t)));
        assert_eq!(code, EXIT_NAME_TAKEN as i32, "{err}");
        assert_eq!(std::fs::read(&tmp).unwrap(), b"hello");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let fifo = dir.path().join("fifo");
        assert!(
            Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        for (i, target) in [victim.clone(), dir.path().join("nothing"), fifo]
            .iter()
            .enumerate()
        {
            let link = dir.path().join(format!(".link{i}"));
            std::os::unix::fs::symlink(target, &link).unwrap();
            let (code, _, err) = run(&format!(
                "printf x | {{ {}; }}",
                receive(link.to_str().unwrap())
            ));
            assert_eq!(code, EXIT_NAME_TAKEN as i32, "{target:?}: {err}");
        }
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(!dir.path().join("nothing").exists());
    }

    #[test]
    fn sha256_with_and_without_openssl() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"hello").unwrap();
        let want = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\n";
        assert_eq!(sh(&sha256(f.to_str().unwrap())), want);
        // Only sha256sum on the PATH.
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let real = sh("command -v sha256sum");
        std::os::unix::fs::symlink(real.trim(), bin.join("sha256sum")).unwrap();
        let script = format!(
            "PATH={}; {}",
            quote(bin.to_str().unwrap()),
            sha256(f.to_str().unwrap())
        );
        assert_eq!(sh(&script), want);
        // A missing file fails instead of printing an empty hash.
        let (code, out, _) = run(&sha256(dir.path().join("none").to_str().unwrap()));
        assert_ne!(code, 0);
        assert_eq!(out, "");
    }

    #[test]
    fn read_file_answers() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("it's");
        std::fs::write(&f, b"ab\ncd").unwrap();
        let p = f.to_str().unwrap();
        assert_eq!(run(&read_file(p, 5)).1, "file 5\nab\ncd");
        assert_eq!(run(&read_file(p, 4)).1, "too-large 5\n");
        assert_eq!(run(&read_file(p, u64::MAX)).1, "file 5\nab\ncd");
        assert_eq!(
            run(&read_file(dir.path().to_str().unwrap(), 5)).1,
            "not-regular\n"
        );
        assert_eq!(run(&read_file(&format!("{p}.none"), 5)).1, "absent\n");
    }

    #[test]
    fn remove_file_removes_files_and_links_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&sub, &link).unwrap();
        let s = |p: &std::path::Path| run(&remove_file(p.to_str().unwrap())).1;
        assert_eq!(s(&f), "removed\n");
        assert_eq!(s(&f), "absent\n");
        assert_eq!(s(&link), "removed\n");
        assert!(sub.is_dir(), "the link's target stays");
        assert_eq!(s(&sub), "directory\n");
        assert!(sub.is_dir());
    }

    #[test]
    fn remove_tree_refuses_what_resolves_to_a_system_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap().to_owned();
        let system = format!("{root}/system");
        std::fs::create_dir_all(format!("{system}/child/deeper")).unwrap();
        std::fs::create_dir_all(format!("{root}/tree/a/b")).unwrap();
        std::fs::write(format!("{root}/tree/a/b/f"), b"x").unwrap();
        std::os::unix::fs::symlink(&system, format!("{root}/via")).unwrap();
        std::os::unix::fs::symlink(format!("{root}/tree"), format!("{root}/tree-link")).unwrap();
        let parents = [system.as_str()];
        let s = |p: &str| run(&remove_tree(p, &parents)).1;

        // Through a symlink, `via/child` is a child of the system directory.
        assert_eq!(
            s(&format!("{root}/via/child")),
            format!("system {system}/child\n")
        );
        assert_eq!(s(&system), format!("system {system}\n"));
        assert!(std::path::Path::new(&format!("{system}/child/deeper")).is_dir());
        // Deeper is fine.
        assert_eq!(s(&format!("{root}/via/child/deeper")), "removed\n");
        // A symlink: only the link goes.
        assert_eq!(s(&format!("{root}/tree-link")), "removed\n");
        assert!(std::path::Path::new(&format!("{root}/tree/a/b/f")).exists());
        assert_eq!(s(&format!("{root}/tree/a/b/f")), "not-directory\n");
        assert_eq!(s(&format!("{root}/tree")), "removed\n");
        assert!(!std::path::Path::new(&format!("{root}/tree")).exists());
        assert_eq!(s(&format!("{root}/tree")), "absent\n");

        // `/` as a system parent: every top-level directory. Tried on a
        // scratch one, so that a broken check removes nothing that matters.
        let top = format!("/kubeseed-shell-test-{}", std::process::id());
        std::fs::create_dir_all(format!("{top}/sub")).unwrap();
        let out = run(&remove_tree(&top, &["/"])).1;
        let sub = run(&remove_tree(&format!("{top}/sub"), &["/"])).1;
        let gone = !std::path::Path::new(&top).exists();
        let _ = std::fs::remove_dir_all(&top);
        assert_eq!(out, format!("system {top}\n"));
        assert!(!gone);
        assert_eq!(sub, "removed\n");
    }
}
