//! A real Dropbear SSH server on loopback, the server small and embedded
//! hosts run, started by a test.
//!
//! Dropbear reads `~/.ssh/authorized_keys` of the user who logs in and has no
//! option to look elsewhere, so it runs in a mount namespace of its own
//! (`unshare -m`) in which root's home is a temporary directory holding the
//! test's client key: the machine's real `/root` is never touched.
//!
//! Requirements: Debian's `dropbear-bin`, util-linux (`unshare`), root.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ports::free_port;
use crate::process::Supervised;
use crate::sshd::{KeyType, ssh_keygen};

const DROPBEAR: &str = "/usr/sbin/dropbear";
const DROPBEARKEY: &str = "/usr/bin/dropbearkey";
const UNSHARE: &str = "/usr/bin/unshare";
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `dropbear` on 127.0.0.1 accepting the client key for root,
/// stopped by PID on drop.
#[derive(Debug)]
pub struct Dropbear {
    dir: tempfile::TempDir,
    port: u16,
    process: Option<Supervised>,
}

impl Dropbear {
    /// Starts dropbear with a fresh ed25519 host key on a free port.
    pub fn start() -> io::Result<Self> {
        for path in [DROPBEAR, DROPBEARKEY] {
            if !Path::new(path).is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{path} not found: install the dropbear-bin package"),
                ));
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("kubeseed-dropbear-")
            .tempdir()?;
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".ssh"))?;
        ssh_keygen(&dir.path().join("client_ed25519"), KeyType::Ed25519, "")?;
        std::fs::copy(
            dir.path().join("client_ed25519.pub"),
            home.join(".ssh/authorized_keys"),
        )?;
        let host_key = dir.path().join("dropbear_ed25519_host_key");
        let out = std::process::Command::new(DROPBEARKEY)
            .args(["-t", "ed25519", "-f"])
            .arg(&host_key)
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "dropbearkey failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let public = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("ssh-ed25519 "))
            .map(str::to_owned)
            .ok_or_else(|| io::Error::other("dropbearkey printed no public key"))?;
        std::fs::write(dir.path().join("host_key.pub"), &public)?;

        let mut server = Dropbear {
            dir,
            port: 0,
            process: None,
        };
        let mut last = None;
        for _ in 0..3 {
            server.port = free_port()?;
            match server.spawn(&home, &host_key) {
                Ok(()) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("dropbear did not start")))
    }

    fn spawn(&mut self, home: &Path, host_key: &Path) -> io::Result<()> {
        // -F foreground, -E log to stderr, -s no passwords, -m no motd,
        // -P pid file; root's home is `home` in this mount namespace only.
        let script = format!(
            "mount --bind '{home}' /root && exec {DROPBEAR} -F -E -s -m -p 127.0.0.1:{port} -r '{key}' -P '{pid}'",
            home = home.display(),
            port = self.port,
            key = host_key.display(),
            pid = self.dir.path().join("dropbear.pid").display(),
        );
        let args: Vec<OsString> = vec![
            "--mount".into(),
            "--propagation".into(),
            "private".into(),
            "/bin/sh".into(),
            "-c".into(),
            script.into(),
        ];
        let log = self.dir.path().join("dropbear.log");
        let mut process = Supervised::spawn("dropbear", Path::new(UNSHARE), &args, log)?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = process.exited() {
                return Err(io::Error::other(format!(
                    "dropbear exited during start-up ({status}):\n{}",
                    process.log_tail(20)
                )));
            }
            if crate::sshd::banner(self.port).is_ok() {
                self.process = Some(process);
                return Ok(());
            }
            if Instant::now() > deadline {
                let tail = process.log_tail(20);
                process.stop(Duration::from_secs(3));
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("dropbear did not answer within {START_TIMEOUT:?}:\n{tail}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The client private key root accepts.
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_ed25519")
    }

    /// The host public key as an OpenSSH line.
    pub fn host_public_key(&self) -> io::Result<String> {
        std::fs::read_to_string(self.dir.path().join("host_key.pub")).map(|s| s.trim().to_owned())
    }

    /// The last lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process
            .as_ref()
            .map(|p| p.log_tail(lines))
            .unwrap_or_default()
    }
}

impl Drop for Dropbear {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop(Duration::from_secs(3));
        }
    }
}
