//! The node's Pod network: a containernetworking `bridge` network with
//! `host-local` addresses from the node's slice of the pod range, then
//! `portmap` for `hostPort`s.
//!
//! Pods on one node talk over the bridge; traffic to other nodes' Pods
//! leaves through the host's routing table (masqueraded when it leaves the
//! pod range), so a multi-node cluster needs routes between the nodes'
//! slices (or another CNI installed later).

use serde::Serialize;

use crate::cluster::Cidr;
use crate::files::HostFiles;

use super::Component;
use super::error::{RenderError, Result};
use super::escape;
use super::paths;

const COMPONENT: Component = Component::Cni;

/// The Linux bridge the Pods of a node are attached to.
pub const CNI_BRIDGE: &str = "cni0";

/// What a node's CNI configuration is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct CniInput {
    /// This node's slice of the pod range (its Node's `spec.podCIDR`, such
    /// as `10.244.0.0/24`).
    pub pod_cidr: Cidr,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfList {
    cni_version: &'static str,
    name: &'static str,
    plugins: Vec<Plugin>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Plugin {
    Bridge(Bridge),
    Portmap(Portmap),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bridge {
    #[serde(rename = "type")]
    kind: &'static str,
    bridge: &'static str,
    is_gateway: bool,
    ip_masq: bool,
    hairpin_mode: bool,
    ipam: Ipam,
}

#[derive(Serialize)]
struct Ipam {
    #[serde(rename = "type")]
    kind: &'static str,
    ranges: Vec<Vec<Range>>,
    routes: Vec<Route>,
}

#[derive(Serialize)]
struct Range {
    subnet: String,
}

#[derive(Serialize)]
struct Route {
    dst: &'static str,
}

#[derive(Serialize)]
struct Portmap {
    #[serde(rename = "type")]
    kind: &'static str,
    capabilities: Capabilities,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Capabilities {
    port_mappings: bool,
}

impl CniInput {
    /// `/etc/cni/net.d/10-kubeseed.conflist` (0644).
    pub fn render(&self) -> Result<HostFiles> {
        let max = if self.pod_cidr.is_ipv4() { 30 } else { 126 };
        if self.pod_cidr.prefix() > max {
            return Err(RenderError::input(
                COMPONENT,
                format!("pod CIDR {}", self.pod_cidr),
                format!(
                    "a /{} leaves no room for Pods; give /{max} or wider",
                    self.pod_cidr.prefix()
                ),
            ));
        }
        let default_route = if self.pod_cidr.is_ipv4() {
            "0.0.0.0/0"
        } else {
            "::/0"
        };
        let list = ConfList {
            cni_version: "1.0.0",
            name: "kubeseed",
            plugins: vec![
                Plugin::Bridge(Bridge {
                    kind: "bridge",
                    bridge: CNI_BRIDGE,
                    is_gateway: true,
                    ip_masq: true,
                    // A Pod reaching itself through its Service comes back
                    // over the same bridge port.
                    hairpin_mode: true,
                    ipam: Ipam {
                        kind: "host-local",
                        ranges: vec![vec![Range {
                            subnet: self.pod_cidr.to_string(),
                        }]],
                        routes: vec![Route { dst: default_route }],
                    },
                }),
                Plugin::Portmap(Portmap {
                    kind: "portmap",
                    capabilities: Capabilities {
                        port_mappings: true,
                    },
                }),
            ],
        };
        let text = escape::json(&list).map_err(|reason| RenderError::Serialize {
            component: COMPONENT,
            what: "CNI network configuration",
            reason,
        })?;
        let mut files = HostFiles::default();
        files.insert_public(paths::CNI_CONFLIST, text);
        Ok(files)
    }
}
