//! The host block every kind shares: how to reach a machine over SSH.

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::formats;

/// Where and how the operator reaches a host over SSH.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostSpec {
    /// Address SSH connects to: an IP address or a DNS name. It cannot be changed
    /// after creation: to move a member to another machine, create a new object.
    #[x_kube(validation = formats::address())]
    #[schemars(length(min = 1, max = 253))]
    pub address: String,

    /// SSH port on the host. Defaults to 22.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("must be a port number between 1 and 65535"))]
    pub port: Option<i32>,

    /// SSH user. Defaults to `root`; any other user runs every command through
    /// `sudo -n`, so it needs passwordless sudo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = formats::ssh_user())]
    #[schemars(length(min = 1, max = 32))]
    pub user: Option<String>,

    /// The Secret of type `kubernetes.io/ssh-auth` whose `ssh-privatekey` holds the
    /// private key for this host (an optional `passphrase` key unlocks an encrypted key).
    pub ssh_key_secret_ref: SecretRef,

    /// The host's SSH public key in `authorized_keys` form, such as
    /// `ssh-ed25519 AAAA...`. When set, a host presenting another key is refused.
    /// When unset, the first key seen is recorded in the status and enforced from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = formats::host_key())]
    #[schemars(length(max = 16384))]
    pub host_key: Option<String>,

    /// A jump host SSH goes through to reach this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bastion: Option<Bastion>,
}

/// A jump host, reached first; the connection to the member's host is tunnelled through it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.address != ''").message("a bastion needs an address: set bastion.address, or remove the bastion block"))]
pub struct Bastion {
    /// Address of the bastion: an IP address or a DNS name.
    #[serde(default)]
    #[x_kube(validation = formats::bastion_address())]
    #[schemars(length(max = 253))]
    pub address: String,

    /// SSH port on the bastion. Defaults to 22.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 65535").message("must be a port number between 1 and 65535"))]
    pub port: Option<i32>,

    /// SSH user on the bastion. Defaults to the host's user. The bastion only
    /// forwards the connection, so this user needs no sudo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = formats::ssh_user())]
    #[schemars(length(min = 1, max = 32))]
    pub user: Option<String>,

    /// The `kubernetes.io/ssh-auth` Secret for the bastion. Defaults to the host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key_secret_ref: Option<SecretRef>,

    /// The bastion's SSH public key, such as `ssh-ed25519 AAAA...`. When unset, the
    /// first key seen is recorded in the status (`observedBastionHostKey`) and enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = formats::host_key())]
    #[schemars(length(max = 16384))]
    pub host_key: Option<String>,
}

/// A reference to a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Namespace of the Secret. Defaults to the operator's namespace; the operator
    /// may only read Secrets in its own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub namespace: Option<String>,
}

/// The SSH port when none is given.
const SSH_PORT: u16 = 22;

/// A port field's value, or `default` when unset (the schema keeps set
/// values within 1..=65535).
pub(crate) fn port_or(port: Option<i32>, default: u16) -> u16 {
    port.and_then(|p| u16::try_from(p).ok()).unwrap_or(default)
}

impl HostSpec {
    /// A host reached as root on port 22 with the key in Secret `secret`
    /// (in the operator's namespace), its host key seen on first contact.
    pub fn new(address: impl Into<String>, secret: impl Into<String>) -> Self {
        HostSpec {
            address: address.into(),
            port: None,
            user: None,
            ssh_key_secret_ref: SecretRef {
                name: secret.into(),
                namespace: None,
            },
            host_key: None,
            bastion: None,
        }
    }

    /// The SSH port, defaulted.
    pub fn port(&self) -> u16 {
        port_or(self.port, SSH_PORT)
    }

    /// The SSH user, defaulted.
    pub fn user(&self) -> &str {
        self.user.as_deref().unwrap_or("root")
    }
}

impl Bastion {
    /// The bastion's SSH port, defaulted.
    pub fn port(&self) -> u16 {
        port_or(self.port, SSH_PORT)
    }
}
