//! The command line.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// kubeseed's workstation CLI: seeds the first master of a cluster over SSH.
#[derive(Debug, Parser)]
#[command(name = "bootstrap", version, about)]
pub struct Cli {
    /// Log filter for diagnostics on stderr (RUST_LOG syntax), such as `debug`.
    #[arg(long, global = true, env = "KUBESEED_LOG", default_value = "warn")]
    pub log: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bring up the first master with etcd on HOST and install the operator.
    Seed(SeedArgs),
    /// Point the admin kubeconfig at the cluster's load-balanced endpoint.
    ///
    /// Reads the endpoint an ApiLoadBalancer published (its VIP or DNS name
    /// and port) from the cluster, checks that the API answers there with
    /// this kubeconfig's CA and credentials and that the apiservers'
    /// certificates name it, then changes the server of the state
    /// directory's admin.conf and records the endpoint in its cluster.json.
    /// Nothing changes when any step fails; a second run finds nothing to do.
    UseEndpoint(UseEndpointArgs),
}

/// `bootstrap seed`.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// The host to seed: its SSH address (IP address or DNS name).
    pub host: String,

    /// SSH port.
    #[arg(long, default_value_t = 22)]
    pub port: u16,

    /// SSH user; anyone but root needs passwordless sudo.
    #[arg(long, default_value = "root")]
    pub user: String,

    /// Private key to log in with (default: ~/.ssh/id_ed25519, id_ecdsa or
    /// id_rsa, the first that exists; else ssh-agent).
    #[arg(long, short = 'i', env = "KUBESEED_SSH_IDENTITY")]
    pub identity: Option<PathBuf>,

    /// The host's SSH public key (`ssh-ed25519 AAAA...`); a host presenting
    /// another key is refused before anything is sent.
    #[arg(long, conflicts_with = "known_hosts")]
    pub host_key: Option<String>,

    /// An OpenSSH known_hosts file that must list the host. Without this or
    /// --host-key, the key first seen is recorded in the state directory and
    /// enforced from then on.
    #[arg(long, env = "KUBESEED_KNOWN_HOSTS")]
    pub known_hosts: Option<PathBuf>,

    /// Name of the cluster (kubeconfigs, the state directory).
    #[arg(long, default_value = "kubernetes")]
    pub cluster_name: String,

    /// The workstation's state directory of this cluster (CA keys, admin
    /// kubeconfig); default $KUBESEED_STATE_DIR or ~/.kubeseed/clusters/NAME.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,

    /// The artifact bundle: a directory or an http(s) base URL holding
    /// SHA256SUMS, VERSIONS, bin/, cni/, images/ and charts/ (build one with
    /// `bash e2e/toolchain/bundle.sh`).
    #[arg(long, env = "KUBESEED_BUNDLE")]
    pub bundle: Option<String>,

    /// Expected sha256 of the bundle's SHA256SUMS, to pin a bundle fetched
    /// from a URL.
    #[arg(long)]
    pub bundle_sha256: Option<String>,

    /// Node name (default: the host's hostname).
    #[arg(long)]
    pub node_name: Option<String>,

    /// Address the control plane advertises (default: HOST when it is an IP address).
    #[arg(long)]
    pub advertise_address: Option<IpAddr>,

    /// Pod address range of a new cluster.
    #[arg(long, default_value = "10.244.0.0/16")]
    pub pod_cidr: String,

    /// Who gives Pods their network in a new cluster: `bridge` (kubeseed's
    /// bridge + host-local CNI and routes between the nodes, all on one L2
    /// network or routed hosts) or `none` (you install a CNI such as Calico
    /// or Cilium; nodes stay NotReady until you do).
    #[arg(long, value_enum, default_value_t = PodNetworkArg::Bridge)]
    pub pod_network: PodNetworkArg,

    /// Service address range of a new cluster.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cidr: String,

    /// A private key the operator uses to reach the hosts it provisions; it
    /// becomes the Secret kubeseed-system/kubeseed-ssh. Without it, create
    /// that Secret yourself (docs/examples/ssh-secret.yaml).
    #[arg(long)]
    pub operator_ssh_key: Option<PathBuf>,

    /// Print the preflight and the plan (what would change), change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Write the task report as JSON to this file too (for benchmarks).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// `bootstrap use-endpoint`.
#[derive(Debug, Args)]
pub struct UseEndpointArgs {
    /// Name of the cluster (the state directory).
    #[arg(long, default_value = "kubernetes")]
    pub cluster_name: String,

    /// The workstation's state directory of this cluster (cluster.json,
    /// admin.conf); default $KUBESEED_STATE_DIR or ~/.kubeseed/clusters/NAME.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,

    /// Check the endpoint and print what would change, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `--pod-network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PodNetworkArg {
    /// kubeseed's bridge CNI and routes between nodes.
    Bridge,
    /// A CNI you install.
    None,
}

impl From<PodNetworkArg> for kubeseed_provision::cluster::PodNetwork {
    fn from(arg: PodNetworkArg) -> Self {
        match arg {
            PodNetworkArg::Bridge => Self::Bridge,
            PodNetworkArg::None => Self::None,
        }
    }
}
