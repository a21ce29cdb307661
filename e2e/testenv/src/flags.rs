//! Command lines for etcd and kube-apiserver (pure, so they are unit-tested).
//!
//! Modelled on controller-runtime's envtest
//! (`pkg/internal/testing/controlplane/apiserver.go`), with what envtest leaves
//! out because kubeseed's tests need it: TLS to etcd, RBAC authorization and a
//! service-account token issuer.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::pki::SERVICE_CIDR;

/// Issuer of service-account tokens (the in-cluster default).
pub const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Where every file of one control plane lives inside its temporary directory.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub root: PathBuf,
}

impl Layout {
    pub fn pki(&self, name: &str) -> PathBuf {
        self.root.join("pki").join(name)
    }
    pub fn etcd_data(&self) -> PathBuf {
        self.root.join("etcd-data")
    }
    pub fn log(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.log"))
    }
}

/// Loopback ports of one start attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ports {
    pub etcd_client: u16,
    pub etcd_peer: u16,
    pub apiserver: u16,
}

fn flag(name: &str, value: impl AsRef<Path>) -> OsString {
    let mut s = OsString::from(format!("--{name}="));
    s.push(value.as_ref());
    s
}

pub(crate) fn etcd_url(ports: Ports) -> String {
    format!("https://127.0.0.1:{}", ports.etcd_client)
}

pub(crate) fn apiserver_url(ports: Ports) -> String {
    format!("https://127.0.0.1:{}", ports.apiserver)
}

/// etcd: one member, TLS with client-certificate auth on the client port,
/// plain HTTP on a loopback peer port nobody else joins.
pub(crate) fn etcd(layout: &Layout, ports: Ports, extra: &[String]) -> Vec<OsString> {
    let peer = format!("http://127.0.0.1:{}", ports.etcd_peer);
    let client = etcd_url(ports);
    let mut args = vec![
        flag("name", "testenv"),
        flag("data-dir", layout.etcd_data()),
        flag("listen-client-urls", &client),
        flag("advertise-client-urls", &client),
        flag("listen-peer-urls", &peer),
        flag("initial-advertise-peer-urls", &peer),
        flag("initial-cluster", format!("testenv={peer}")),
        flag("initial-cluster-state", "new"),
        flag("cert-file", layout.pki("etcd-server.crt")),
        flag("key-file", layout.pki("etcd-server.key")),
        flag("trusted-ca-file", layout.pki("etcd-ca.crt")),
        flag("client-cert-auth", "true"),
        // The data is thrown away with the test; fsync on a shared disk was
        // most of etcd's latency.
        flag("unsafe-no-fsync", "true"),
    ];
    args.extend(extra.iter().map(OsString::from));
    args
}

/// kube-apiserver. `extra` comes last: pflag keeps the last value of a
/// repeated scalar flag, so callers can override any default.
pub(crate) fn apiserver(
    layout: &Layout,
    ports: Ports,
    front_proxy: bool,
    extra: &[String],
) -> Vec<OsString> {
    let mut args = vec![
        flag("advertise-address", "127.0.0.1"),
        flag("bind-address", "127.0.0.1"),
        flag("secure-port", ports.apiserver.to_string()),
        flag("cert-dir", layout.root.join("apiserver-certs")),
        flag("tls-cert-file", layout.pki("apiserver.crt")),
        flag("tls-private-key-file", layout.pki("apiserver.key")),
        flag("client-ca-file", layout.pki("ca.crt")),
        flag("etcd-servers", etcd_url(ports)),
        flag("etcd-cafile", layout.pki("etcd-ca.crt")),
        flag("etcd-certfile", layout.pki("apiserver-etcd-client.crt")),
        flag("etcd-keyfile", layout.pki("apiserver-etcd-client.key")),
        flag("service-cluster-ip-range", SERVICE_CIDR),
        flag("service-account-issuer", SERVICE_ACCOUNT_ISSUER),
        flag("service-account-key-file", layout.pki("sa.pub")),
        flag("service-account-signing-key-file", layout.pki("sa.key")),
        flag("authorization-mode", "Node,RBAC"),
        flag("allow-privileged", "true"),
    ];
    if front_proxy {
        args.extend([
            flag(
                "requestheader-client-ca-file",
                layout.pki("front-proxy-ca.crt"),
            ),
            flag("requestheader-allowed-names", "front-proxy-client"),
            flag("requestheader-username-headers", "X-Remote-User"),
            flag("requestheader-group-headers", "X-Remote-Group"),
            flag("requestheader-extra-headers-prefix", "X-Remote-Extra-"),
            flag(
                "proxy-client-cert-file",
                layout.pki("front-proxy-client.crt"),
            ),
            flag(
                "proxy-client-key-file",
                layout.pki("front-proxy-client.key"),
            ),
        ]);
    }
    args.extend(extra.iter().map(OsString::from));
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            root: PathBuf::from("/t"),
        }
    }

    const PORTS: Ports = Ports {
        etcd_client: 1001,
        etcd_peer: 1002,
        apiserver: 1003,
    };

    fn strings(args: Vec<OsString>) -> Vec<String> {
        args.into_iter().map(|a| a.into_string().unwrap()).collect()
    }

    #[test]
    fn apiserver_talks_tls_to_etcd_and_issues_tokens() {
        let args = strings(apiserver(&layout(), PORTS, false, &[]));
        for want in [
            "--secure-port=1003",
            "--bind-address=127.0.0.1",
            "--etcd-servers=https://127.0.0.1:1001",
            "--etcd-certfile=/t/pki/apiserver-etcd-client.crt",
            "--authorization-mode=Node,RBAC",
            "--service-account-signing-key-file=/t/pki/sa.key",
            "--service-account-key-file=/t/pki/sa.pub",
        ] {
            assert!(
                args.iter().any(|a| a == want),
                "{want} missing from {args:?}"
            );
        }
        assert!(!args.iter().any(|a| a.starts_with("--requestheader")));
    }

    #[test]
    fn front_proxy_flags_only_with_material() {
        let args = strings(apiserver(&layout(), PORTS, true, &[]));
        assert!(args.contains(&"--proxy-client-cert-file=/t/pki/front-proxy-client.crt".into()));
        assert!(args.contains(&"--requestheader-client-ca-file=/t/pki/front-proxy-ca.crt".into()));
    }

    #[test]
    fn extra_flags_come_last_to_override() {
        let args = strings(apiserver(&layout(), PORTS, false, &["--v=4".into()]));
        assert_eq!(args.last().map(String::as_str), Some("--v=4"));
        let args = strings(etcd(&layout(), PORTS, &["--log-level=debug".into()]));
        assert_eq!(args.last().map(String::as_str), Some("--log-level=debug"));
    }

    #[test]
    fn etcd_requires_client_certs_on_loopback() {
        let args = strings(etcd(&layout(), PORTS, &[]));
        for want in [
            "--listen-client-urls=https://127.0.0.1:1001",
            "--listen-peer-urls=http://127.0.0.1:1002",
            "--client-cert-auth=true",
            "--data-dir=/t/etcd-data",
        ] {
            assert!(
                args.iter().any(|a| a == want),
                "{want} missing from {args:?}"
            );
        }
    }
}
