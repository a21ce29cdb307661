//! The certificates of a whole HA cluster, checked with x509-parser and with
//! Debian's real `openssl verify` (no servers; see `pki_etcd.rs` and
//! `pki_controlplane.rs` for real etcd and kube-apiserver).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use kubeseed_provision::cluster::{ClusterSpec, EtcdMember, Member};
use kubeseed_provision::files::HostFiles;
use kubeseed_provision::pki::{
    ClusterCas, ClusterPki, KeyAlgorithm, PkiError, profiles, renew_host_files,
};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Three stacked masters behind a VIP and a DNS name, plus an external etcd member.
fn ha_spec(alg: KeyAlgorithm) -> ClusterSpec {
    let mut spec = ClusterSpec::stacked(Member::new("master-1", ip("10.213.0.11")));
    for (name, addr) in [("master-2", "10.213.0.12"), ("master-3", "10.213.0.13")] {
        spec.control_plane.push(Member::new(name, ip(addr)));
        spec.etcd.push(EtcdMember::new(name, ip(addr)));
    }
    spec.etcd.push(EtcdMember::new("etcd-4", ip("10.213.0.14")));
    spec.endpoint.vip = Some(ip("10.213.0.100"));
    spec.endpoint.dns_names = vec!["api.lab.example".into()];
    spec.extra_sans = vec!["203.0.113.7".into(), "k8s.example.org".into()];
    spec.key_algorithm = alg;
    spec
}

fn der(pem: &str) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .unwrap()
        .1
        .contents
}

struct Parsed {
    der: Vec<u8>,
}

impl Parsed {
    fn new(pem: &str) -> Self {
        Self { der: der(pem) }
    }
    fn cert(&self) -> X509Certificate<'_> {
        parse_x509_certificate(&self.der).unwrap().1
    }
}

fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject_alternative_name()
        .unwrap()
        .map(|ext| {
            ext.value
                .general_names
                .iter()
                .map(|n| match n {
                    GeneralName::DNSName(d) => format!("DNS:{d}"),
                    GeneralName::IPAddress(b) if b.len() == 4 => {
                        format!("IP:{}", IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()))
                    }
                    GeneralName::IPAddress(b) => {
                        format!("IP:{}", IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()))
                    }
                    other => panic!("unexpected SAN {other:?}"),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn cn(cert: &X509Certificate<'_>) -> String {
    cert.subject()
        .iter_common_name()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

fn orgs(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.subject()
        .iter_organization()
        .map(|o| o.as_str().unwrap().to_owned())
        .collect()
}

fn eku(cert: &X509Certificate<'_>) -> (bool, bool) {
    let e = cert.extended_key_usage().unwrap().unwrap().value;
    (e.server_auth, e.client_auth)
}

fn ski(cert: &X509Certificate<'_>) -> Vec<u8> {
    cert.iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .unwrap()
}

fn aki(cert: &X509Certificate<'_>) -> Vec<u8> {
    cert.iter_extensions()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(k) => {
                k.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .unwrap()
}

/// Asserts what every leaf must be: CA:FALSE, digitalSignature (and
/// keyEncipherment exactly for RSA), signed by `ca` with a matching AKI,
/// valid about a year from a few minutes ago.
fn assert_leaf(what: &str, leaf: &X509Certificate<'_>, ca: &X509Certificate<'_>, rsa: bool) {
    let bc = leaf.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && !bc.value.ca, "{what}: {bc:?}");
    let ku = leaf.key_usage().unwrap().unwrap();
    assert!(ku.critical && ku.value.digital_signature(), "{what}");
    assert_eq!(ku.value.key_encipherment(), rsa, "{what}");
    assert!(!ku.value.key_cert_sign(), "{what}");
    assert_eq!(leaf.issuer(), ca.subject(), "{what}");
    leaf.verify_signature(Some(ca.public_key())).unwrap();
    assert_eq!(aki(leaf), ski(ca), "{what}: AKI does not name the CA");
    let now = ::time::OffsetDateTime::now_utc();
    let nb = leaf.validity().not_before.to_datetime();
    let na = leaf.validity().not_after.to_datetime();
    assert!(
        nb < now && now - nb < ::time::Duration::minutes(10),
        "{what}: notBefore {nb}"
    );
    assert!(
        (na - now).whole_days() >= 364 && (na - now).whole_days() <= 365,
        "{what}: {na}"
    );
    assert!(leaf.raw_serial().len() >= 16, "{what}: serial too short");
}

fn assert_ca(what: &str, ca: &X509Certificate<'_>, cn_want: &str) {
    assert_eq!(cn(ca), cn_want, "{what}");
    let bc = ca.basic_constraints().unwrap().unwrap();
    assert!(bc.critical && bc.value.ca, "{what}");
    assert!(
        ca.key_usage().unwrap().unwrap().value.key_cert_sign(),
        "{what}"
    );
    ca.verify_signature(None).unwrap();
    let years =
        (ca.validity().not_after.to_datetime() - ::time::OffsetDateTime::now_utc()).whole_days();
    assert!((3649..=3650).contains(&years), "{what}: {years} days");
}

fn kubeconfig_cert(files: &HostFiles, path: &str) -> (serde_yaml::Value, String) {
    let yaml = files.get(path).unwrap_or_else(|| panic!("{path} missing"));
    let doc: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap();
    let data = doc["users"][0]["user"]["client-certificate-data"]
        .as_str()
        .unwrap();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    (doc, String::from_utf8(pem).unwrap())
}

fn check_cluster(pki: &ClusterPki, rsa: bool) {
    let m1 = &pki.hosts["master-1"];
    // system:masters credentials exist on the first master only (kubeadm ≥ 1.29).
    assert!(m1.get("/etc/kubernetes/super-admin.conf").is_some());
    for other in ["master-2", "master-3"] {
        assert!(
            pki.hosts[other]
                .get("/etc/kubernetes/super-admin.conf")
                .is_none(),
            "{other} holds super-admin.conf"
        );
    }
    let ca_p = Parsed::new(m1.get("/etc/kubernetes/pki/ca.crt").unwrap());
    let etcd_ca_p = Parsed::new(m1.get("/etc/kubernetes/pki/etcd/ca.crt").unwrap());
    let fp_ca_p = Parsed::new(m1.get("/etc/kubernetes/pki/front-proxy-ca.crt").unwrap());
    let (ca, etcd_ca, fp_ca) = (ca_p.cert(), etcd_ca_p.cert(), fp_ca_p.cert());
    assert_ca("cluster CA", &ca, "kubernetes");
    assert_ca("etcd CA", &etcd_ca, "etcd-ca");
    assert_ca("front-proxy CA", &fp_ca, "front-proxy-ca");

    let api_p = Parsed::new(m1.get("/etc/kubernetes/pki/apiserver.crt").unwrap());
    let api = api_p.cert();
    assert_leaf("apiserver", &api, &ca, rsa);
    assert_eq!(cn(&api), "kube-apiserver");
    assert_eq!(eku(&api), (true, false));
    let got = sans(&api);
    for want in [
        "DNS:master-1",
        "DNS:kubernetes",
        "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc",
        "DNS:kubernetes.default.svc.cluster.local",
        "DNS:localhost",
        "IP:10.96.0.1",
        "IP:127.0.0.1",
        "IP:10.213.0.11",
        "IP:10.213.0.100",
        "DNS:api.lab.example",
        "IP:203.0.113.7",
        "DNS:k8s.example.org",
    ] {
        assert!(got.contains(&want.to_owned()), "{want} not in {got:?}");
    }
    for other in ["IP:10.213.0.12", "IP:10.213.0.13", "IP:10.213.0.14"] {
        // Other masters (and the etcd-only host) stay out: a member joining
        // must not make every apiserver certificate stale.
        assert!(
            !got.contains(&other.to_owned()),
            "{other} in master-1's SANs"
        );
    }

    for (path, ca_cert, cn_want, orgs_want) in [
        (
            "apiserver-kubelet-client",
            &ca,
            "kube-apiserver-kubelet-client",
            vec!["kubeadm:cluster-admins"],
        ),
        (
            "apiserver-etcd-client",
            &etcd_ca,
            "kube-apiserver-etcd-client",
            vec![],
        ),
        ("front-proxy-client", &fp_ca, "front-proxy-client", vec![]),
        (
            "etcd/healthcheck-client",
            &etcd_ca,
            "kube-etcd-healthcheck-client",
            vec![],
        ),
    ] {
        let p = Parsed::new(m1.get(format!("/etc/kubernetes/pki/{path}.crt")).unwrap());
        let c = p.cert();
        assert_leaf(path, &c, ca_cert, rsa);
        assert_eq!(cn(&c), cn_want);
        assert_eq!(orgs(&c), orgs_want);
        assert_eq!(eku(&c), (false, true), "{path}");
        assert!(sans(&c).is_empty(), "{path}");
    }

    for (host, addr) in [("master-1", "10.213.0.11"), ("etcd-4", "10.213.0.14")] {
        let files = &pki.hosts[host];
        let server_p = Parsed::new(files.get("/etc/kubernetes/pki/etcd/server.crt").unwrap());
        let server = server_p.cert();
        assert_leaf("etcd server", &server, &etcd_ca, rsa);
        assert_eq!(cn(&server), host);
        assert_eq!(eku(&server), (true, true));
        assert_eq!(
            sans(&server),
            [
                format!("DNS:{host}"),
                "DNS:localhost".into(),
                format!("IP:{addr}"),
                "IP:127.0.0.1".into(),
                "IP:::1".into()
            ]
        );
        let peer_p = Parsed::new(files.get("/etc/kubernetes/pki/etcd/peer.crt").unwrap());
        let peer = peer_p.cert();
        assert_leaf("etcd peer", &peer, &etcd_ca, rsa);
        assert_eq!(eku(&peer), (true, true));
        assert_eq!(sans(&peer), [format!("DNS:{host}"), format!("IP:{addr}")]);
    }
    // An etcd-only member gets nothing of the API server.
    assert!(
        pki.hosts["etcd-4"]
            .get("/etc/kubernetes/pki/apiserver.crt")
            .is_none()
    );
    assert!(
        pki.hosts["etcd-4"]
            .get("/etc/kubernetes/admin.conf")
            .is_none()
    );

    for (file, cn_want, orgs_want, server) in [
        (
            "admin.conf",
            "kubernetes-admin",
            vec!["kubeadm:cluster-admins"],
            "https://api.lab.example:6443",
        ),
        (
            "super-admin.conf",
            "kubernetes-super-admin",
            vec!["system:masters"],
            "https://api.lab.example:6443",
        ),
        (
            "controller-manager.conf",
            "system:kube-controller-manager",
            vec![],
            "https://10.213.0.11:6443",
        ),
        (
            "scheduler.conf",
            "system:kube-scheduler",
            vec![],
            "https://10.213.0.11:6443",
        ),
        (
            // A master's kubelet talks to its own apiserver (kubeadm ≥ 1.31).
            "kubelet.conf",
            "system:node:master-1",
            vec!["system:nodes"],
            "https://10.213.0.11:6443",
        ),
    ] {
        let (doc, pem) = kubeconfig_cert(m1, &format!("/etc/kubernetes/{file}"));
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"].as_str(),
            Some(server),
            "{file}"
        );
        let embedded_ca = base64::engine::general_purpose::STANDARD
            .decode(
                doc["clusters"][0]["cluster"]["certificate-authority-data"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(
            embedded_ca,
            m1.get("/etc/kubernetes/pki/ca.crt").unwrap().as_bytes()
        );
        let p = Parsed::new(&pem);
        let c = p.cert();
        assert_leaf(file, &c, &ca, rsa);
        assert_eq!(cn(&c), cn_want, "{file}");
        assert_eq!(orgs(&c), orgs_want, "{file}");
        assert_eq!(eku(&c), (false, true), "{file}");
    }

    let kubelet_p = Parsed::new(m1.get("/var/lib/kubelet/pki/kubelet.crt").unwrap());
    let kubelet = kubelet_p.cert();
    assert_leaf("kubelet serving", &kubelet, &ca, rsa);
    assert_eq!(eku(&kubelet), (true, false));
    assert_eq!(sans(&kubelet), ["DNS:master-1", "IP:10.213.0.11"]);

    // File modes: keys and kubeconfigs private, certificates public, no CA key on hosts.
    for (host, files) in &pki.hosts {
        for (path, file) in files.iter() {
            let p = path.display().to_string();
            let want = if p.ends_with(".crt") || p.ends_with(".pub") {
                0o644
            } else {
                0o600
            };
            assert_eq!(file.mode, want, "{host}:{p}");
            assert!(
                !p.ends_with("ca.key"),
                "{host}: CA key {p} laid out on a host"
            );
        }
    }
}

fn openssl(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed (Debian package `openssl`)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Writes a host's files under `dir` (absolute paths re-rooted).
fn materialise(files: &HostFiles, dir: &Path) {
    for (path, file) in files.iter() {
        let dest = dir.join(path.strip_prefix("/").unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::write(dest, &file.contents).unwrap();
    }
}

fn openssl_verify_host(files: &HostFiles) {
    let tmp = tempfile::tempdir().unwrap();
    materialise(files, tmp.path());
    let pki = tmp.path().join("etc/kubernetes/pki");
    let ok = |args: &[&str]| {
        let (ok, text) = openssl(args, &pki);
        assert!(ok && text.contains(": OK"), "openssl {args:?}: {text}");
    };
    // (CA, purpose, name check, certificate): every chain a host relies on.
    type NameCheck<'a> = Option<(&'a str, &'a str)>;
    let chains: [(&str, &str, NameCheck, &str); 11] = [
        (
            "ca.crt",
            "sslserver",
            Some(("-verify_hostname", "kubernetes.default.svc")),
            "apiserver.crt",
        ),
        (
            "ca.crt",
            "sslserver",
            Some(("-verify_ip", "10.96.0.1")),
            "apiserver.crt",
        ),
        (
            "ca.crt",
            "sslserver",
            Some(("-verify_ip", "10.213.0.100")),
            "apiserver.crt",
        ),
        ("ca.crt", "sslclient", None, "apiserver-kubelet-client.crt"),
        (
            "etcd/ca.crt",
            "sslclient",
            None,
            "apiserver-etcd-client.crt",
        ),
        (
            "front-proxy-ca.crt",
            "sslclient",
            None,
            "front-proxy-client.crt",
        ),
        (
            "etcd/ca.crt",
            "sslserver",
            Some(("-verify_ip", "127.0.0.1")),
            "etcd/server.crt",
        ),
        ("etcd/ca.crt", "sslclient", None, "etcd/server.crt"),
        ("etcd/ca.crt", "sslserver", None, "etcd/peer.crt"),
        ("etcd/ca.crt", "sslclient", None, "etcd/peer.crt"),
        (
            "etcd/ca.crt",
            "sslclient",
            None,
            "etcd/healthcheck-client.crt",
        ),
    ];
    for (ca, purpose, check, cert) in chains {
        let mut args = vec!["verify", "-CAfile", ca, "-purpose", purpose];
        if let Some((flag, value)) = check {
            args.extend([flag, value]);
        }
        args.push(cert);
        ok(&args);
    }

    let refused = |args: &[&str], why: &str| {
        let (ok, text) = openssl(args, &pki);
        assert!(
            !ok && text.contains(why),
            "openssl {args:?} should fail with {why:?}: {text}"
        );
    };
    // Wrong CA, wrong purpose, wrong name: each refused for that reason.
    refused(
        &["verify", "-CAfile", "ca.crt", "apiserver-etcd-client.crt"],
        "unable to get local issuer certificate",
    );
    refused(
        &[
            "verify",
            "-CAfile",
            "ca.crt",
            "-purpose",
            "sslclient",
            "apiserver.crt",
        ],
        "unsuitable certificate purpose",
    );
    refused(
        &[
            "verify",
            "-CAfile",
            "ca.crt",
            "-purpose",
            "sslserver",
            "apiserver-kubelet-client.crt",
        ],
        "unsuitable certificate purpose",
    );
    refused(
        &[
            "verify",
            "-CAfile",
            "ca.crt",
            "-verify_hostname",
            "evil.example",
            "apiserver.crt",
        ],
        "hostname mismatch",
    );
    refused(
        &[
            "verify",
            "-CAfile",
            "etcd/ca.crt",
            "-verify_ip",
            "10.213.0.12",
            "etcd/peer.crt",
        ],
        "IP address mismatch",
    );

    // Every key is the private half of its certificate (and sa.pub of sa.key).
    for stem in [
        "apiserver",
        "apiserver-kubelet-client",
        "apiserver-etcd-client",
        "front-proxy-client",
        "etcd/server",
        "etcd/peer",
        "etcd/healthcheck-client",
    ] {
        let (_, from_cert) = openssl(
            &["x509", "-noout", "-pubkey", "-in", &format!("{stem}.crt")],
            &pki,
        );
        let (ok, from_key) = openssl(&["pkey", "-pubout", "-in", &format!("{stem}.key")], &pki);
        assert!(
            ok && from_cert == from_key,
            "{stem}: key does not match certificate"
        );
    }
    let (ok, sa_pub) = openssl(&["pkey", "-pubout", "-in", "sa.key"], &pki);
    assert!(ok);
    assert_eq!(
        sa_pub.trim(),
        files.get("/etc/kubernetes/pki/sa.pub").unwrap().trim()
    );
}

#[test]
fn ecdsa_cluster_has_every_certificate_with_the_right_contents() {
    let pki = ClusterPki::generate(ha_spec(KeyAlgorithm::EcdsaP256)).unwrap();
    assert_eq!(
        pki.hosts.keys().collect::<Vec<_>>(),
        ["etcd-4", "master-1", "master-2", "master-3"]
    );
    check_cluster(&pki, false);
    let m1 = &pki.hosts["master-1"];
    let info = kubeseed_provision::pki::inspect_pem(
        "apiserver",
        m1.get("/etc/kubernetes/pki/apiserver.crt").unwrap(),
    )
    .unwrap();
    assert_eq!(info.key_algorithm, "ECDSA-P256");
}

#[test]
fn rsa_cluster_has_every_certificate_with_the_right_contents() {
    let pki = ClusterPki::generate(ha_spec(KeyAlgorithm::Rsa2048)).unwrap();
    check_cluster(&pki, true);
    let m1 = &pki.hosts["master-1"];
    let info = kubeseed_provision::pki::inspect_pem(
        "apiserver",
        m1.get("/etc/kubernetes/pki/apiserver.crt").unwrap(),
    )
    .unwrap();
    assert_eq!(info.key_algorithm, "RSA-2048");
    openssl_verify_host(m1);
}

#[test]
fn openssl_verifies_every_chain_purpose_and_name() {
    let pki = ClusterPki::generate(ha_spec(KeyAlgorithm::EcdsaP256)).unwrap();
    for host in ["master-1", "master-3"] {
        openssl_verify_host(&pki.hosts[host]);
    }
    // The etcd-only host: its own peer cert verifies against the same etcd CA.
    let tmp = tempfile::tempdir().unwrap();
    materialise(&pki.hosts["etcd-4"], tmp.path());
    let (ok, text) = openssl(
        &[
            "verify",
            "-CAfile",
            "etcd/ca.crt",
            "-verify_ip",
            "10.213.0.14",
            "etcd/peer.crt",
        ],
        &tmp.path().join("etc/kubernetes/pki"),
    );
    assert!(ok, "{text}");
}

#[test]
fn operator_signs_a_new_member_from_the_secret() {
    let pki = ClusterPki::generate(ha_spec(KeyAlgorithm::EcdsaP256)).unwrap();
    // What the operator does: read the Secret, add the member, issue its files.
    let data: BTreeMap<String, Vec<u8>> = pki.cas.to_secret_data();
    let cas = ClusterCas::from_secret_data("Secret kubeseed-system/kubeseed-pki", &data).unwrap();
    let mut spec = pki.spec.clone();
    spec.control_plane
        .push(Member::new("master-4", ip("10.213.0.15")));
    spec.etcd
        .push(EtcdMember::new("master-4", ip("10.213.0.15")));
    let files = cas.control_plane_files(&spec, "master-4").unwrap();
    assert_eq!(
        files.get("/etc/kubernetes/pki/ca.crt"),
        pki.hosts["master-1"].get("/etc/kubernetes/pki/ca.crt")
    );
    assert_eq!(
        files.get("/etc/kubernetes/pki/sa.key"),
        pki.hosts["master-1"].get("/etc/kubernetes/pki/sa.key"),
        "every master must sign tokens with the same key"
    );
    openssl_verify_host(&files);
    let tmp = tempfile::tempdir().unwrap();
    materialise(&files, tmp.path());
    let (ok, text) = openssl(
        &[
            "verify",
            "-CAfile",
            "ca.crt",
            "-verify_ip",
            "10.213.0.15",
            "apiserver.crt",
        ],
        &tmp.path().join("etc/kubernetes/pki"),
    );
    assert!(ok, "{text}");

    let err = cas
        .control_plane_files(&spec, "master-9")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"master-9\" is not in the cluster description") && err.contains("master-4"),
        "{err}"
    );
}

#[test]
fn renewal_keeps_identity_and_changes_serial_key_and_expiry() {
    let pki = ClusterPki::generate(ha_spec(KeyAlgorithm::EcdsaP256)).unwrap();
    let old = &pki.hosts["master-1"];
    let renewed = renew_host_files(&pki.cas, &pki.spec, old).unwrap();
    let before = old.inspect().unwrap();
    let after = renewed.inspect().unwrap();
    assert_eq!(before.len(), after.len());
    // 3 CA certificates, 8 leaf files and 5 kubeconfigs.
    assert_eq!(before.len(), 16);
    for ((path, b), (path2, a)) in before.iter().zip(&after) {
        assert_eq!(path, path2);
        assert_eq!(
            (&a.subject, &a.sans, &a.extended_key_usages, &a.issuer),
            (&b.subject, &b.sans, &b.extended_key_usages, &b.issuer),
            "{path:?}"
        );
        if b.is_ca {
            assert_eq!(a.serial, b.serial, "{path:?}: CA must not change");
        } else {
            assert_ne!(a.serial, b.serial, "{path:?}");
            assert!(a.not_after >= b.not_after, "{path:?}");
        }
    }
    for key in [
        "/etc/kubernetes/pki/apiserver.key",
        "/etc/kubernetes/pki/etcd/peer.key",
    ] {
        assert_ne!(old.get(key), renewed.get(key), "{key} kept its old key");
    }
    assert_eq!(
        old.get("/etc/kubernetes/pki/sa.key"),
        renewed.get("/etc/kubernetes/pki/sa.key")
    );
    // Still valid chains, names and key pairs.
    openssl_verify_host(&renewed);

    // A certificate from another cluster is not renewed silently.
    let other = ClusterPki::generate(ha_spec(KeyAlgorithm::EcdsaP256)).unwrap();
    let err = renew_host_files(&pki.cas, &pki.spec, &other.hosts["master-1"]).unwrap_err();
    assert!(matches!(err, PkiError::NotIssuedBy { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("was not issued by any of this cluster's CAs"),
        "{err}"
    );
}

#[test]
fn inspection_lists_every_certificate_with_subject_sans_and_expiry() {
    let pki = ClusterPki::generate(ha_spec(KeyAlgorithm::EcdsaP256)).unwrap();
    let records = pki.inspect().unwrap();
    let cas: Vec<_> = records.iter().filter(|r| r.info.is_ca).collect();
    assert_eq!(cas.len(), 3, "CAs listed once each");
    let api = records
        .iter()
        .find(|r| r.host == "master-2" && r.path == "/etc/kubernetes/pki/apiserver.crt")
        .unwrap();
    assert!(api.info.sans.contains(&"IP:10.213.0.100".to_owned()));
    assert_eq!(api.info.common_name, "kube-apiserver");
    let json = serde_json::to_value(&records).unwrap();
    let first = &json[0];
    assert_eq!(first["host"], "cluster");
    assert!(
        first["notAfter"].as_str().unwrap().ends_with('Z'),
        "{first}"
    );
    // A master: 8 leaf files and 5 kubeconfigs; an etcd-only member: 3 leaves.
    let per_host: BTreeMap<&str, usize> = records.iter().fold(BTreeMap::new(), |mut m, r| {
        *m.entry(r.host.as_str()).or_default() += 1;
        m
    });
    assert_eq!(per_host["etcd-4"], 3);
    assert_eq!(per_host["master-1"], 13);

    let table = kubeseed_provision::pki::expiry_table(&records, ::time::OffsetDateTime::now_utc());
    assert_eq!(table.lines().count(), records.len() + 1);
    assert!(
        table.contains("CN=kubernetes-admin, O=kubeadm:cluster-admins"),
        "{table}"
    );
    assert!(table.contains("364d") || table.contains("365d"), "{table}");
    println!("{table}");
}

#[test]
fn bad_input_is_refused_before_anything_is_made() {
    let mut spec = ha_spec(KeyAlgorithm::EcdsaP256);
    spec.extra_sans.push("api.example.com:6443".into());
    let err = ClusterPki::generate(spec).unwrap_err().to_string();
    assert!(
        err.contains("\"api.example.com:6443\"") && err.contains("port"),
        "{err}"
    );

    let mut spec = ha_spec(KeyAlgorithm::EcdsaP256);
    spec.endpoint.dns_names = vec!["under_score.example".into()];
    let err = ClusterPki::generate(spec).unwrap_err().to_string();
    assert!(err.contains("under_score.example"), "{err}");
}

#[test]
fn admin_needs_the_cluster_admins_binding() {
    assert!(profiles::CLUSTER_ADMINS_BINDING.contains("name: cluster-admin"));
    // kubeseed writes the state dir for the workstation: CAs plus admin.conf.
    let pki = ClusterPki::generate(ha_spec(KeyAlgorithm::EcdsaP256)).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kubeseed");
    pki.cas.write_state_dir(&dir).unwrap();
    let admin = pki.cas.admin_kubeconfig(&pki.spec).unwrap();
    kubeseed_provision::pki::state_dir::write_private_files(
        &dir,
        &BTreeMap::from([(PathBuf::from("admin.conf"), admin.into_bytes())]),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let mode = entry.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let back = ClusterCas::load_state_dir(&dir).unwrap();
    assert_eq!(back.cluster.cert_pem(), pki.cas.cluster.cert_pem());
}

/// A CA made elsewhere (openssl, as the seeds' cfssl made them) is adopted:
/// loaded in each private-key format openssl writes, then used to sign.
#[test]
fn adopts_an_openssl_made_ca_in_every_key_format() {
    use kubeseed_provision::pki::{CertificateAuthority, Validity};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run = |args: &[&str]| {
        let (ok, text) = openssl(args, dir);
        assert!(ok, "openssl {args:?}: {text}");
    };
    let ca_ext = [
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ];
    let mut rsa = vec![
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "rsa-pkcs8.key",
        "-out",
        "rsa.crt",
        "-subj",
        "/CN=etcd CA",
        "-days",
        "3650",
    ];
    rsa.extend(ca_ext);
    run(&rsa);
    run(&[
        "rsa",
        "-in",
        "rsa-pkcs8.key",
        "-traditional",
        "-out",
        "rsa-pkcs1.key",
    ]);
    let mut ec = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ec-pkcs8.key",
        "-out",
        "ec.crt",
        "-subj",
        "/CN=kubernetes",
        "-days",
        "3650",
    ];
    ec.extend(ca_ext);
    run(&ec);
    run(&["ec", "-in", "ec-pkcs8.key", "-out", "ec-sec1.key"]);

    for (crt, key, header) in [
        ("rsa.crt", "rsa-pkcs8.key", "BEGIN PRIVATE KEY"),
        ("rsa.crt", "rsa-pkcs1.key", "BEGIN RSA PRIVATE KEY"),
        ("ec.crt", "ec-pkcs8.key", "BEGIN PRIVATE KEY"),
        ("ec.crt", "ec-sec1.key", "BEGIN EC PRIVATE KEY"),
    ] {
        let cert_pem = std::fs::read_to_string(dir.join(crt)).unwrap();
        let key_pem = std::fs::read_to_string(dir.join(key)).unwrap();
        assert!(key_pem.contains(header), "{key}: {key_pem:.40}");
        let ca = CertificateAuthority::from_pem(key, &cert_pem, &key_pem)
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        let leaf = ca
            .issue(
                &profiles::etcd_server("etcd-1", &[ip("10.213.0.11")]),
                KeyAlgorithm::EcdsaP256,
                &Validity::default(),
            )
            .unwrap();
        std::fs::write(dir.join("leaf.crt"), &leaf.cert_pem).unwrap();
        let (ok, text) = openssl(
            &[
                "verify",
                "-CAfile",
                crt,
                "-purpose",
                "sslserver",
                "-verify_ip",
                "10.213.0.11",
                "leaf.crt",
            ],
            dir,
        );
        assert!(ok, "{key}: {text}");
    }

    // The RSA certificate with the EC key: refused as a mismatch, not a crash.
    let err = CertificateAuthority::from_pem(
        "etcd CA",
        &std::fs::read_to_string(dir.join("rsa.crt")).unwrap(),
        &std::fs::read_to_string(dir.join("ec-pkcs8.key")).unwrap(),
    )
    .unwrap_err();
    assert!(matches!(err, PkiError::KeyMismatch { .. }), "{err}");
}

#[test]
fn rsa_store_round_trips_through_secret_data() {
    let cas = ClusterCas::generate(KeyAlgorithm::Rsa2048, &Default::default()).unwrap();
    let back = ClusterCas::from_secret_data("Secret x/y", &cas.to_secret_data()).unwrap();
    assert_eq!(back.to_secret_data(), cas.to_secret_data());
}
