//! A real OpenSSH `sshd` on loopback, started by a test.
//!
//! ```no_run
//! # fn demo() -> std::io::Result<()> {
//! use kubeseed_testenv::sshd::Sshd;
//! let sshd = Sshd::start()?;
//! println!("ssh -i {} -p {} root@127.0.0.1", sshd.client_key().display(), sshd.port());
//! # Ok(()) }
//! ```
//!
//! Each instance lives in its own temporary directory with its own
//! `sshd_config`, freshly generated host keys (ed25519, ECDSA, RSA), a client
//! key pair (ed25519, no passphrase) and an `authorized_keys` file shared by
//! every account, on a loopback port no other fixture in this process has
//! been given. It is stopped by PID when dropped, so tests can run in
//! parallel threads.
//!
//! [`Sshd::start_with`] restricts it the way hardened and FIPS hosts are
//! ([`SshdOptions`]: which host keys it has, extra `sshd_config` lines such
//! as `KexAlgorithms`).
//!
//! Requirements: Debian's `openssh-server` (for `/usr/sbin/sshd` and
//! `/usr/lib/openssh/sftp-server`) and `sudo`, and root, because sshd only
//! switches to the logged-in user when it runs as root and because
//! [`ensure_user`] creates local accounts (removed again when the last
//! [`TestUser`] guard for them is dropped).

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ports::free_port;
use crate::process::Supervised;

const SSHD: &str = "/usr/sbin/sshd";
const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";
const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";
const START_TIMEOUT: Duration = Duration::from_secs(10);
const STOP_GRACE: Duration = Duration::from_secs(3);
const KEEP_ENV: &str = "KUBESEED_TESTENV_KEEP";

/// A running `sshd` on 127.0.0.1, stopped by PID on drop.
#[derive(Debug)]
pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    process: Option<Supervised>,
    generation: u32,
    options: SshdOptions,
}

/// How an [`Sshd`] is restricted, like the servers people run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshdOptions {
    /// The host key types it has (and offers). Default: ed25519, ECDSA, RSA.
    pub host_keys: Vec<KeyType>,
    /// Extra `sshd_config` lines, such as
    /// `KexAlgorithms ecdh-sha2-nistp256,ecdh-sha2-nistp384`.
    pub extra_config: Vec<String>,
}

impl Default for SshdOptions {
    fn default() -> Self {
        SshdOptions {
            host_keys: vec![KeyType::Ed25519, KeyType::Ecdsa, KeyType::Rsa],
            extra_config: Vec::new(),
        }
    }
}

impl SshdOptions {
    /// Only these host key types.
    pub fn host_keys(mut self, types: &[KeyType]) -> Self {
        self.host_keys = types.to_vec();
        self
    }

    /// One more `sshd_config` line.
    pub fn config(mut self, line: impl Into<String>) -> Self {
        self.extra_config.push(line.into());
        self
    }
}

/// What a local account's sudo rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SudoRule {
    /// `NOPASSWD: ALL`: `sudo -n` works.
    Passwordless,
    /// `ALL` with a password: `sudo -n` refuses ("a password is required").
    PasswordRequired,
    /// No sudoers entry at all.
    None,
}

/// Key types `ssh-keygen -t` accepts that the tests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// ed25519.
    Ed25519,
    /// ECDSA on P-256.
    Ecdsa,
    /// RSA, 3072 bits.
    Rsa,
}

impl KeyType {
    fn keygen_args(self) -> &'static [&'static str] {
        match self {
            KeyType::Ed25519 => &["-t", "ed25519"],
            KeyType::Ecdsa => &["-t", "ecdsa", "-b", "256"],
            KeyType::Rsa => &["-t", "rsa", "-b", "3072"],
        }
    }

    fn file_stem(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "ed25519",
            KeyType::Ecdsa => "ecdsa",
            KeyType::Rsa => "rsa",
        }
    }
}

fn io_context(what: impl Into<String>) -> impl FnOnce(io::Error) -> io::Error {
    let what = what.into();
    move |e| io::Error::new(e.kind(), format!("{what}: {e}"))
}

fn run(cmd: &mut Command, what: &str) -> io::Result<()> {
    let out = cmd.output().map_err(io_context(what))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{what}: {} exited with {}: {}",
            cmd.get_program().to_string_lossy(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Generates a key pair with `ssh-keygen` at `path` (and `path.pub`).
/// `passphrase` encrypts the private key; the empty string leaves it clear.
pub fn ssh_keygen(path: &Path, key_type: KeyType, passphrase: &str) -> io::Result<()> {
    if !Path::new(SSH_KEYGEN).is_file() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{SSH_KEYGEN} not found: install the openssh-client package"),
        ));
    }
    run(
        Command::new(SSH_KEYGEN)
            .args(["-q", "-C", "kubeseed-test"])
            .args(key_type.keygen_args())
            .arg("-N")
            .arg(passphrase)
            .arg("-f")
            .arg(path),
        &format!("cannot generate a key at {}", path.display()),
    )
}

/// Where the locks that count a test user's holders live (kept: deleting a
/// lock file while another process waits on it would split the count).
const USER_LOCK_DIR: &str = "/run/lock/kubeseed-test-users";

/// A local account made by [`ensure_user`] for a test. The account and its
/// sudoers file are removed when the last guard for it is dropped, in this
/// process or any other: each holder keeps a shared `flock` on the user's
/// lock file, and the one that can take it exclusively on drop is the last.
#[derive(Debug)]
#[must_use = "the test user is removed when its guard is dropped"]
pub struct TestUser {
    name: String,
    held: File,
}

impl TestUser {
    /// The account's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

fn sudoers_path(name: &str) -> PathBuf {
    PathBuf::from(format!("/etc/sudoers.d/kubeseed-test-{name}"))
}

fn user_lock(name: &str) -> io::Result<File> {
    std::fs::create_dir_all(USER_LOCK_DIR)
        .map_err(io_context(format!("cannot create {USER_LOCK_DIR}")))?;
    let path = Path::new(USER_LOCK_DIR).join(format!("{name}.lock"));
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_context(format!("cannot open {}", path.display())))
}

fn user_exists(name: &str) -> io::Result<bool> {
    Ok(Command::new("id")
        .arg("-u")
        .arg(name)
        .output()
        .map_err(io_context("cannot run id"))?
        .status
        .success())
}

/// useradd/userdel take /etc/passwd's lock; threads of one process take
/// turns here instead of failing on it.
static PASSWD: Mutex<()> = Mutex::new(());

/// Creates the local account `name` (idempotent) so that sshd accepts
/// public-key logins for it, and gives it the sudo rule `sudo`. Hold the
/// returned guard for as long as the account is used: the account, its home
/// and its sudoers file go when the last guard is dropped.
///
/// Needs root. The account gets the password field `*` (no password, but not
/// "locked": sshd without PAM refuses locked accounts). Names must start
/// with `kubeseed-test-`, so a test can never remove anyone else's account.
pub fn ensure_user(name: &str, sudo: SudoRule) -> io::Result<TestUser> {
    if !name.starts_with("kubeseed-test-") {
        return Err(io::Error::other(format!(
            "test user {name:?} must be named kubeseed-test-*"
        )));
    }
    let held = user_lock(name)?;
    // Waits while the last holder of an earlier run removes the account.
    held.lock_shared()
        .map_err(io_context(format!("cannot lock test user {name}")))?;
    let _guard = PASSWD
        .lock()
        .map_err(|_| io::Error::other("user creation lock poisoned"))?;
    if !user_exists(name)? {
        run(
            Command::new("useradd").args(["-m", "-s", "/bin/sh", name]),
            &format!(
                "cannot create test user {name} (tests that log in as non-root users need root)"
            ),
        )?;
    }
    run(
        Command::new("usermod").args(["-p", "*", name]),
        &format!("cannot unlock test user {name}"),
    )?;
    let sudoers = sudoers_path(name);
    match sudo {
        SudoRule::Passwordless => {
            std::fs::write(&sudoers, format!("{name} ALL=(ALL) NOPASSWD: ALL\n"))
                .map_err(io_context(format!("cannot write {}", sudoers.display())))?;
        }
        SudoRule::PasswordRequired => {
            std::fs::write(&sudoers, format!("{name} ALL=(ALL) ALL\n"))
                .map_err(io_context(format!("cannot write {}", sudoers.display())))?;
        }
        SudoRule::None => remove_if_present(&sudoers)?,
    }
    Ok(TestUser {
        name: name.to_owned(),
        held,
    })
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_context(format!("cannot remove {}", path.display()))(e)),
    }
}

/// Removes the account, its home and its sudoers file. A session that is
/// just closing may still run as the user for a moment: userdel is retried,
/// then forced.
fn remove_user(name: &str) -> io::Result<()> {
    let _guard = PASSWD
        .lock()
        .map_err(|_| io::Error::other("user creation lock poisoned"))?;
    remove_if_present(&sudoers_path(name))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while user_exists(name)? {
        let force = Instant::now() > deadline;
        let mut userdel = Command::new("userdel");
        userdel.arg("-r");
        if force {
            userdel.arg("-f");
        }
        let out = userdel
            .arg(name)
            .output()
            .map_err(io_context("cannot run userdel"))?;
        // userdel -r exits 12 when the home was already gone: the user is.
        if out.status.success() || out.status.code() == Some(12) {
            break;
        }
        if force {
            return Err(io::Error::other(format!(
                "cannot remove test user {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Give up our own shared lock first: the exclusive attempt below is
        // on a second open file description, which our lock would block.
        if let Err(e) = self.held.unlock() {
            tracing::warn!(user = %self.name, error = %e, "cannot release the test user's lock");
            return;
        }
        let Ok(last) = user_lock(&self.name) else {
            return;
        };
        // If someone else still uses the account, the last one removes it.
        if last.try_lock().is_ok()
            && let Err(e) = remove_user(&self.name)
        {
            tracing::error!(user = %self.name, error = %e, "test user left behind");
        }
    }
}

impl Sshd {
    /// Starts an sshd with fresh keys on a free loopback port.
    pub fn start() -> io::Result<Self> {
        Self::start_with(SshdOptions::default())
    }

    /// Starts an sshd restricted by `options`.
    pub fn start_with(options: SshdOptions) -> io::Result<Self> {
        if options.host_keys.is_empty() {
            return Err(io::Error::other("an sshd needs at least one host key type"));
        }
        for path in [SSHD, SFTP_SERVER] {
            if !Path::new(path).is_file() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{path} not found: install the openssh-server package"),
                ));
            }
        }
        // sshd refuses to start without its privilege-separation directory.
        std::fs::create_dir_all("/run/sshd").map_err(io_context("cannot create /run/sshd"))?;
        let dir = tempfile::Builder::new()
            .prefix("kubeseed-sshd-")
            .tempdir()
            .map_err(io_context("cannot create the sshd directory"))?;
        // sshd reads AuthorizedKeysFile as the logging-in user: non-root
        // test users must be able to reach it.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .map_err(io_context("cannot open up the sshd directory"))?;
        }
        let mut sshd = Sshd {
            dir,
            port: 0,
            process: None,
            generation: 0,
            options,
        };
        sshd.generate_host_keys()?;
        ssh_keygen(&sshd.client_key(), KeyType::Ed25519, "")?;
        let client_pub = std::fs::read_to_string(sshd.client_key().with_extension("pub"))
            .map_err(io_context("cannot read the client public key"))?;
        std::fs::write(sshd.authorized_keys(), client_pub)
            .map_err(io_context("cannot write authorized_keys"))?;
        // Another process may take the port between free_port and sshd's
        // bind; a fresh port then usually works.
        let mut last = None;
        for _ in 0..3 {
            sshd.port = free_port()?;
            match sshd.spawn() {
                Ok(()) => return Ok(sshd),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("sshd did not start")))
    }

    fn generate_host_keys(&mut self) -> io::Result<()> {
        self.generation += 1;
        for key_type in self.options.host_keys.clone() {
            let path = self.host_key_path(key_type);
            for p in [path.clone(), path.with_extension("pub")] {
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_context(format!("cannot remove {}", p.display()))(e)),
                }
            }
            ssh_keygen(&path, key_type, "")?;
        }
        Ok(())
    }

    fn config(&self) -> String {
        let host_keys: String = self
            .options
            .host_keys
            .iter()
            .map(|k| format!("HostKey {}\n", self.host_key_path(*k).display()))
            .collect();
        let extra: String = self
            .options
            .extra_config
            .iter()
            .map(|line| format!("{line}\n"))
            .collect();
        format!(
            "Port {port}\n\
             ListenAddress 127.0.0.1\n\
             {host_keys}\
             PidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys\n\
             StrictModes no\n\
             UsePAM no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\n\
             AllowTcpForwarding yes\n\
             MaxSessions 64\n\
             MaxStartups 64:30:128\n\
             LogLevel VERBOSE\n\
             Subsystem sftp {SFTP_SERVER}\n\
             {extra}",
            port = self.port,
            dir = self.dir.path().display(),
        )
    }

    fn spawn(&mut self) -> io::Result<()> {
        let config = self.dir.path().join("sshd_config");
        std::fs::write(&config, self.config()).map_err(io_context("cannot write sshd_config"))?;
        let args: Vec<OsString> = vec!["-D".into(), "-e".into(), "-f".into(), config.into()];
        let log = self
            .dir
            .path()
            .join(format!("sshd-{}.log", self.generation));
        let mut process = Supervised::spawn("sshd", Path::new(SSHD), &args, log)?;
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = process.exited() {
                return Err(io::Error::other(format!(
                    "sshd exited during start-up ({status}); last lines of {}:\n{}",
                    process.log().display(),
                    process.log_tail(20)
                )));
            }
            if banner(self.port).is_ok() {
                self.process = Some(process);
                return Ok(());
            }
            if Instant::now() > deadline {
                let tail = process.log_tail(20);
                process.stop(STOP_GRACE);
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "sshd did not answer on 127.0.0.1:{} within {START_TIMEOUT:?}; log:\n{tail}",
                        self.port
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops sshd, generates new host keys and starts it again on the same
    /// port: what a client sees when a host is reinstalled (or impersonated).
    pub fn regenerate_host_keys(&mut self) -> io::Result<()> {
        if let Some(mut p) = self.process.take() {
            p.stop(STOP_GRACE);
        }
        self.generate_host_keys()?;
        self.spawn()
    }

    /// Adds an OpenSSH public key line to the `authorized_keys` every account
    /// shares.
    pub fn authorize(&self, public_key_line: &str) -> io::Result<()> {
        let mut keys = std::fs::read_to_string(self.authorized_keys())
            .map_err(io_context("cannot read authorized_keys"))?;
        keys.push_str(public_key_line.trim());
        keys.push('\n');
        std::fs::write(self.authorized_keys(), keys)
            .map_err(io_context("cannot write authorized_keys"))
    }

    /// The loopback port sshd listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The temporary directory holding config, keys and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The client private key (ed25519, no passphrase) every account accepts.
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_ed25519")
    }

    /// The `authorized_keys` file shared by every account.
    pub fn authorized_keys(&self) -> PathBuf {
        self.dir.path().join("authorized_keys")
    }

    /// Path of a host private key; its public half is beside it with `.pub`.
    pub fn host_key_path(&self, key_type: KeyType) -> PathBuf {
        self.dir
            .path()
            .join(format!("ssh_host_{}_key", key_type.file_stem()))
    }

    /// The first host public key (ed25519 unless [`SshdOptions::host_keys`]
    /// said otherwise) as an OpenSSH line (`ssh-ed25519 AAAA... comment`).
    pub fn host_public_key(&self) -> io::Result<String> {
        let first = self
            .options
            .host_keys
            .first()
            .copied()
            .unwrap_or(KeyType::Ed25519);
        self.host_public_key_of(first)
    }

    /// A host public key of the given type as an OpenSSH line.
    pub fn host_public_key_of(&self, key_type: KeyType) -> io::Result<String> {
        let path = self.host_key_path(key_type).with_extension("pub");
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_owned())
            .map_err(io_context(format!("cannot read {}", path.display())))
    }

    /// A `known_hosts` line for every host key, in the `[127.0.0.1]:port` form.
    pub fn known_hosts_lines(&self) -> io::Result<String> {
        let mut out = String::new();
        for key_type in self.options.host_keys.clone() {
            let line = self.host_public_key_of(key_type)?;
            let mut fields = line.split_whitespace();
            let (Some(alg), Some(b64)) = (fields.next(), fields.next()) else {
                return Err(io::Error::other(format!("malformed host key line: {line}")));
            };
            out.push_str(&format!("[127.0.0.1]:{} {alg} {b64}\n", self.port));
        }
        Ok(out)
    }

    /// The last lines of sshd's log, for assertion messages.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process
            .as_ref()
            .map(|p| p.log_tail(lines))
            .unwrap_or_default()
    }

    /// sshd's PID.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Supervised::pid)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop(STOP_GRACE);
        }
        if std::env::var_os(KEEP_ENV).is_some_and(|v| v == "1") {
            let path = std::mem::replace(
                &mut self.dir,
                match tempfile::tempdir() {
                    Ok(d) => d,
                    Err(_) => return,
                },
            )
            .keep();
            tracing::info!(dir = %path.display(), "kept sshd directory");
        }
    }
}

/// A real `ssh-agent` on a socket in a temporary directory, holding the
/// keys given to [`SshAgent::add`]; stopped by PID on drop.
#[derive(Debug)]
pub struct SshAgent {
    dir: tempfile::TempDir,
    _process: Supervised,
}

impl SshAgent {
    /// Starts `ssh-agent -D -a SOCKET`.
    pub fn start() -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("kubeseed-agent-")
            .tempdir()
            .map_err(io_context("cannot create the agent directory"))?;
        let socket = dir.path().join("agent.sock");
        let args: Vec<OsString> = vec!["-D".into(), "-a".into(), socket.clone().into()];
        let process = Supervised::spawn(
            "ssh-agent",
            Path::new("/usr/bin/ssh-agent"),
            &args,
            dir.path().join("agent.log"),
        )?;
        let deadline = Instant::now() + START_TIMEOUT;
        while !socket.exists() {
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "ssh-agent did not create {}: {}",
                        socket.display(),
                        process.log_tail(10)
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(SshAgent {
            dir,
            _process: process,
        })
    }

    /// The agent's socket (what `SSH_AUTH_SOCK` would hold).
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("agent.sock")
    }

    /// `ssh-add`s a private key file.
    pub fn add(&self, key: &Path) -> io::Result<()> {
        run(
            Command::new("/usr/bin/ssh-add")
                .env("SSH_AUTH_SOCK", self.socket())
                .arg(key),
            &format!("cannot add {} to the agent", key.display()),
        )
    }
}

/// Reads the SSH identification line: the server is up and answering.
pub(crate) fn banner(port: u16) -> io::Result<()> {
    let mut stream = TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(500),
    )?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut buf = [0u8; 8];
    stream.read_exact(&mut buf)?;
    if buf.starts_with(b"SSH-") {
        Ok(())
    } else {
        Err(io::Error::other("not an SSH banner"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_the_temp_dir_and_port() {
        let sshd = Sshd {
            dir: tempfile::tempdir().unwrap(),
            port: 2222,
            process: None,
            generation: 1,
            options: SshdOptions::default()
                .host_keys(&[KeyType::Rsa])
                .config("KexAlgorithms ecdh-sha2-nistp256"),
        };
        let cfg = sshd.config();
        assert!(cfg.contains("ssh_host_rsa_key\n"));
        assert!(!cfg.contains("ssh_host_ed25519_key"));
        assert!(cfg.ends_with("KexAlgorithms ecdh-sha2-nistp256\n"));
        assert!(cfg.contains("Port 2222\n"));
        assert!(cfg.contains("ListenAddress 127.0.0.1\n"));
        assert!(cfg.contains(&format!(
            "AuthorizedKeysFile {}/authorized_keys",
            sshd.dir().display()
        )));
        assert!(cfg.contains("UsePAM no"));
    }

    #[test]
    fn starts_answers_and_stops_by_pid() {
        let sshd = Sshd::start().unwrap();
        let pid = sshd.pid().unwrap();
        banner(sshd.port()).unwrap();
        assert!(sshd.host_public_key().unwrap().starts_with("ssh-ed25519 "));
        drop(sshd);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "sshd {pid} still running"
        );
    }
}
