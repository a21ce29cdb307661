//! Keeping what a host already has where it is still right.
//!
//! Issuing is not idempotent: every call makes new keys and serials. A plan
//! that runs again (after a kill, or to check a healthy host) must not
//! replace a host's valid certificates — that would restart every component
//! for nothing. So the freshly issued set is compared with what the host
//! holds, and an existing certificate is kept when it says the same thing
//! (subject, groups, names, purpose), was signed by the same CA, matches its
//! key, and is not close to expiry. Kubeconfigs are kept when, besides their
//! client certificate, their server, names and CA are the same.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rcgen::KeyPair;
use time::{Duration, OffsetDateTime};

use super::cluster_cas::ClusterCas;
use super::inspect::{self, CertificateInfo};
use super::kubeconfig;
use crate::files::{HostFiles, PRIVATE_MODE};

/// A certificate this close to its end is re-issued rather than kept.
pub const RENEW_BEFORE: Duration = Duration::days(90);

/// `fresh` with every file replaced by the host's copy where that copy is
/// still right (see the module docs). `existing` maps paths to what the host
/// holds now.
pub fn keep_valid(
    cas: &ClusterCas,
    fresh: &HostFiles,
    existing: &BTreeMap<PathBuf, String>,
    now: OffsetDateTime,
) -> HostFiles {
    let mut out = fresh.clone();
    for (path, file) in fresh.iter() {
        let Some(old) = existing.get(path) else {
            continue;
        };
        if old == &file.contents {
            continue;
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("crt") => {
                // A certificate is only kept together with its key.
                let key_path = path.with_extension("key");
                let Some(old_key) = existing.get(&key_path) else {
                    continue;
                };
                if fresh.get(&key_path).is_none() {
                    continue;
                }
                if leaf_still_right(cas, path, &file.contents, old, old_key, now) {
                    out.insert(path.to_path_buf(), old.clone(), file.mode);
                    out.insert(key_path, old_key.clone(), PRIVATE_MODE);
                }
            }
            Some("conf") if kubeconfig_still_right(cas, path, &file.contents, old, now) => {
                out.insert(path.to_path_buf(), old.clone(), file.mode);
            }
            _ => {}
        }
    }
    out
}

fn leaf_still_right(
    cas: &ClusterCas,
    path: &Path,
    fresh_pem: &str,
    old_pem: &str,
    old_key_pem: &str,
    now: OffsetDateTime,
) -> bool {
    let what = path.display().to_string();
    let check = || -> Option<bool> {
        let fresh_der = inspect::pem_to_der(&what, fresh_pem).ok()?;
        let fresh = inspect::parse_der(&what, &fresh_der).ok()?;
        if fresh.is_ca() {
            return Some(false);
        }
        let old_der = inspect::pem_to_der(&what, old_pem).ok()?;
        let old = inspect::parse_der(&what, &old_der).ok()?;
        let same_spec = same_leaf(&what, &fresh, &old)?;
        let ca = [&cas.cluster, &cas.etcd, &cas.front_proxy]
            .into_iter()
            .find(|ca| ca.signed(&fresh))?;
        let info = CertificateInfo::from_x509(&old);
        let fresh_enough = info.not_before <= now && info.not_after - now > RENEW_BEFORE;
        let key = KeyPair::from_pem(old_key_pem).ok()?;
        let key_matches = key.public_key_raw() == old.public_key().subject_public_key.data.as_ref();
        Some(same_spec && ca.signed(&old) && fresh_enough && key_matches)
    };
    check().unwrap_or(false)
}

/// Whether two leaves say the same: subject name, groups, names (as a set)
/// and purpose.
fn same_leaf(
    what: &str,
    a: &x509_parser::certificate::X509Certificate<'_>,
    b: &x509_parser::certificate::X509Certificate<'_>,
) -> Option<bool> {
    let a = inspect::leaf_spec_of(what, a).ok()?;
    let b = inspect::leaf_spec_of(what, b).ok()?;
    let mut sa = a.sans.clone();
    let mut sb = b.sans.clone();
    sa.sort();
    sb.sort();
    Some(
        a.common_name == b.common_name
            && a.organizations == b.organizations
            && sa == sb
            && a.usage == b.usage,
    )
}

fn kubeconfig_still_right(
    cas: &ClusterCas,
    path: &Path,
    fresh: &str,
    old: &str,
    now: OffsetDateTime,
) -> bool {
    let what = path.display().to_string();
    let check = || -> Option<bool> {
        if kubeconfig::parts(&what, fresh).ok()? != kubeconfig::parts(&what, old).ok()? {
            return Some(false);
        }
        let (_, fresh_ca) = kubeconfig::key_and_ca(&what, fresh).ok()?;
        let (old_key, old_ca) = kubeconfig::key_and_ca(&what, old).ok()?;
        if fresh_ca != old_ca {
            return Some(false);
        }
        match (
            kubeconfig::client_certificate(&what, fresh).ok()?,
            kubeconfig::client_certificate(&what, old).ok()?,
            old_key,
        ) {
            (Some(fresh_cert), Some(old_cert), Some(old_key)) => Some(leaf_still_right(
                cas,
                path,
                &fresh_cert,
                &old_cert,
                &old_key,
                now,
            )),
            // A token kubeconfig (bootstrap) carries no certificate: the
            // parts and CA decide, but a new token is always wanted.
            _ => Some(false),
        }
    };
    check().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{ClusterSpec, Member};
    use crate::pki::{KeyAlgorithm, Validity};

    fn setup() -> (ClusterCas, ClusterSpec) {
        let spec = ClusterSpec::stacked(Member::new("master-1", "10.213.0.11".parse().unwrap()));
        let cas = ClusterCas::generate(KeyAlgorithm::EcdsaP256, &Validity::default()).unwrap();
        (cas, spec)
    }

    fn as_existing(files: &HostFiles) -> BTreeMap<PathBuf, String> {
        files
            .iter()
            .map(|(p, f)| (p.to_path_buf(), f.contents.clone()))
            .collect()
    }

    #[test]
    fn a_second_issue_keeps_everything_the_host_has() {
        let (cas, spec) = setup();
        let first = cas.control_plane_files(&spec, "master-1").unwrap();
        let second = cas.control_plane_files(&spec, "master-1").unwrap();
        assert_ne!(first, second, "issuing twice makes new keys");
        let kept = keep_valid(
            &cas,
            &second,
            &as_existing(&first),
            OffsetDateTime::now_utc(),
        );
        assert_eq!(kept, first);
    }

    #[test]
    fn changed_names_or_another_ca_are_reissued() {
        let (cas, mut spec) = setup();
        let first = cas.control_plane_files(&spec, "master-1").unwrap();
        spec.extra_sans.push("api.example.org".into());
        let second = cas.control_plane_files(&spec, "master-1").unwrap();
        let kept = keep_valid(
            &cas,
            &second,
            &as_existing(&first),
            OffsetDateTime::now_utc(),
        );
        let apiserver = Path::new("/etc/kubernetes/pki/apiserver.crt");
        assert_eq!(kept.get(apiserver), second.get(apiserver));
        let etcd_peer = Path::new("/etc/kubernetes/pki/etcd/peer.crt");
        assert_eq!(kept.get(etcd_peer), first.get(etcd_peer));
        // The admin kubeconfig names the same server and user: kept.
        let admin = Path::new("/etc/kubernetes/admin.conf");
        assert_eq!(kept.get(admin), first.get(admin));

        let (other, _) = setup();
        let foreign = other.control_plane_files(&spec, "master-1").unwrap();
        let kept = keep_valid(
            &cas,
            &second,
            &as_existing(&foreign),
            OffsetDateTime::now_utc(),
        );
        assert_eq!(kept, second, "nothing signed by another CA is kept");
    }

    #[test]
    fn a_certificate_near_its_end_is_reissued() {
        let (cas, spec) = setup();
        let first = cas.control_plane_files(&spec, "master-1").unwrap();
        let second = cas.control_plane_files(&spec, "master-1").unwrap();
        let late = OffsetDateTime::now_utc() + Duration::days(365 - 30);
        let kept = keep_valid(&cas, &second, &as_existing(&first), late);
        let apiserver = Path::new("/etc/kubernetes/pki/apiserver.crt");
        assert_eq!(kept.get(apiserver), second.get(apiserver));
    }
}
