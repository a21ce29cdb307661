//! Where to connect, as whom, and which host key to trust.

use super::auth::Auth;
use super::error::SshError;
use super::host_key::HostKeyPolicy;

/// A host to reach over SSH, possibly through a bastion.
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// DNS name or IP address. Through a bastion, as the bastion resolves it.
    pub address: String,
    /// TCP port (22 normally).
    pub port: u16,
    /// The login user; anyone but `root` gets `sudo -n` for privileged work.
    pub user: String,
    /// How to authenticate.
    pub auth: Auth,
    /// Which host key to accept.
    pub host_key: HostKeyPolicy,
    /// A jump host, reached first; its own user, key and host-key policy apply.
    pub bastion: Option<Box<SshTarget>>,
}

impl SshTarget {
    /// A target on port 22 without bastion.
    pub fn new(
        address: impl Into<String>,
        user: impl Into<String>,
        auth: Auth,
        host_key: HostKeyPolicy,
    ) -> Self {
        SshTarget {
            address: address.into(),
            port: 22,
            user: user.into(),
            auth,
            host_key,
            bastion: None,
        }
    }

    /// The same target on another port.
    pub fn with_port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The same target reached through `bastion`.
    pub fn via(mut self, bastion: SshTarget) -> Self {
        self.bastion = Some(Box::new(bastion));
        self
    }

    /// `address:port`, the name every message uses.
    pub fn host(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }

    /// Whether privileged work needs `sudo`.
    pub fn needs_sudo(&self) -> bool {
        self.user != "root"
    }

    /// Checks the fields (and the bastion's) before any connection is made.
    pub fn validate(&self) -> Result<(), SshError> {
        let bad = |what: String| Err(SshError::InvalidInput(what));
        if self.address.trim().is_empty() {
            return bad("the SSH address is empty; give the host's IP address or DNS name".into());
        }
        if self.address.chars().any(|c| c.is_whitespace() || c == '/') {
            return bad(format!(
                "SSH address {:?} is not a host name or IP address",
                self.address
            ));
        }
        if self.port == 0 {
            return bad(format!(
                "{}: SSH port 0 is not valid; use 22 or the port sshd listens on",
                self.address
            ));
        }
        if self.user.is_empty() {
            return bad(format!("{}: the SSH user is empty", self.host()));
        }
        if !valid_user(&self.user) {
            return bad(format!(
                "{}: SSH user {:?} is not a valid user name (at most 32 letters, digits, '_', \
                 '.' and '-', starting with a letter or '_')",
                self.host(),
                self.user
            ));
        }
        let mut depth = 0;
        let mut hop = self.bastion.as_deref();
        while let Some(b) = hop {
            depth += 1;
            if depth > 8 {
                return bad(format!("{}: more than 8 bastion hops", self.host()));
            }
            b.validate_own()?;
            hop = b.bastion.as_deref();
        }
        Ok(())
    }

    fn validate_own(&self) -> Result<(), SshError> {
        let mut me = self.clone();
        me.bastion = None;
        me.validate()
            .map_err(|e| SshError::InvalidInput(format!("bastion: {e}")))
    }
}

/// A login name as `useradd` makes them, and as the CRDs' `user` fields
/// accept them: at most 32 of `A-Za-z0-9_.-`, starting with a letter or `_`
/// (never `-`, which a command line would read as an option).
fn valid_user(user: &str) -> bool {
    let mut chars = user.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && user.len() <= 32
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(address: &str, user: &str) -> SshTarget {
        SshTarget::new(address, user, Auth::Agent, HostKeyPolicy::FirstSeen)
    }

    #[test]
    fn host_names_address_and_port() {
        assert_eq!(target("10.0.0.1", "root").host(), "10.0.0.1:22");
        assert_eq!(target("::1", "root").with_port(2222).host(), "[::1]:2222");
    }

    #[test]
    fn invalid_fields_are_rejected_with_the_reason() {
        let e = target("", "root").validate().unwrap_err().to_string();
        assert!(e.contains("address is empty"), "{e}");
        for user in [
            "a b",
            "-oProxyCommand=sh",
            "1abc",
            "a:b",
            "a@b",
            "a\nb",
            &"a".repeat(33),
        ] {
            let e = target("h", user).validate().unwrap_err().to_string();
            assert!(e.contains("not a valid user name"), "{user:?}: {e}");
        }
        for user in [
            "root",
            "debian",
            "kube.admin",
            "_jump",
            "kubeseed-test-sudo",
        ] {
            target("h", user).validate().unwrap();
        }
        let e = target("h", "root")
            .with_port(0)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("port 0"), "{e}");
        let e = target("h", "root")
            .via(target("b", ""))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("bastion") && e.contains("user is empty"), "{e}");
        target("h", "admin")
            .via(target("b", "jump"))
            .validate()
            .unwrap();
    }

    #[test]
    fn only_root_skips_sudo() {
        assert!(!target("h", "root").needs_sudo());
        assert!(target("h", "admin").needs_sudo());
    }
}
