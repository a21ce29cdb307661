//! The workstation's state directory of one cluster: the only place outside
//! the cluster that holds its CA keys.
//!
//! ```text
//! ~/.kubeseed/clusters/<name>/      0700
//!   cluster.json                    what the cluster is (id, ranges, versions, seed host)
//!   pki/                            the CA store (ca.*, etcd-ca.*, front-proxy-ca.*, sa.*)
//!   encryption-key                  the key Secrets are encrypted with at rest
//!   known_hosts                     host keys first seen, enforced from then on
//!   admin.conf                      the admin kubeconfig
//!   seed-report.json                the last seed run, task by task
//! ```
//!
//! Files are 0600 and written atomically; loading never makes a second CA
//! for a cluster that already has one.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use base64::Engine as _;

pub use kubeseed_provision::cluster::{ClusterRecord, SeedRecord};
use kubeseed_provision::pki::state_dir::{ensure_private_dir, write_private_file};
use kubeseed_provision::pki::{ClusterCas, KeyAlgorithm, Validity};

/// One cluster's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// `$KUBESEED_STATE_DIR`, else `~/.kubeseed/clusters/<name>`.
    pub fn default_for(name: &str) -> anyhow::Result<PathBuf> {
        if let Some(dir) = std::env::var_os("KUBESEED_STATE_DIR").filter(|d| !d.is_empty()) {
            return Ok(PathBuf::from(dir));
        }
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .context("HOME is not set: give the state directory with --state-dir")?;
        Ok(PathBuf::from(home)
            .join(".kubeseed")
            .join("clusters")
            .join(name))
    }

    /// Opens (creating, 0700) the directory.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        ensure_private_dir(dir)
            .with_context(|| format!("cannot prepare the state directory {}", dir.display()))?;
        Ok(StateDir {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `cluster.json`.
    pub fn record_path(&self) -> PathBuf {
        self.dir.join("cluster.json")
    }

    /// The known_hosts file of hosts first seen by this cluster's tools.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// The admin kubeconfig.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.join("admin.conf")
    }

    fn pki_dir(&self) -> PathBuf {
        self.dir.join("pki")
    }

    /// The recorded cluster, if this directory has one.
    pub fn record(&self) -> anyhow::Result<Option<ClusterRecord>> {
        let path = self.record_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("{} is not a kubeseed cluster record", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Records the cluster.
    pub fn save_record(&self, record: &ClusterRecord) -> anyhow::Result<()> {
        let text = serde_json::to_vec_pretty(record)?;
        self.write("cluster.json", &text)
    }

    /// The CAs: loaded if the directory has them, else made and saved. A
    /// directory with a cluster record but no CAs is refused: making new ones
    /// would split the cluster in two.
    pub fn cas(&self, record_existed: bool) -> anyhow::Result<(ClusterCas, bool)> {
        let dir = self.pki_dir();
        if dir.join(kubeseed_provision::pki::CA_CRT).exists() {
            let cas = ClusterCas::load_state_dir(&dir)
                .with_context(|| format!("cannot load the cluster's CAs from {}", dir.display()))?;
            return Ok((cas, false));
        }
        if record_existed {
            bail!(
                "{} records a cluster but holds no CAs in {}: restore them from a backup \
                 (or from the cluster's Secret kubeseed-system/kubeseed-cluster) instead of \
                 making new ones, which would split the cluster",
                self.record_path().display(),
                dir.display()
            );
        }
        let cas = ClusterCas::generate(KeyAlgorithm::default(), &Validity::default())
            .context("cannot create the cluster's CAs")?;
        cas.write_state_dir(&dir)
            .with_context(|| format!("cannot save the CAs into {}", dir.display()))?;
        Ok((cas, true))
    }

    /// Whether the CA store exists (a dry run must not create it).
    pub fn has_cas(&self) -> bool {
        self.pki_dir()
            .join(kubeseed_provision::pki::CA_CRT)
            .exists()
    }

    /// Whether the encryption key exists.
    pub fn has_encryption_key(&self) -> bool {
        self.dir.join("encryption-key").exists()
    }

    /// The 32-byte key Secrets are encrypted with at rest: loaded, or made once.
    pub fn encryption_key(&self) -> anyhow::Result<[u8; 32]> {
        let path = self.dir.join("encryption-key");
        let engine = base64::engine::general_purpose::STANDARD;
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = engine
                    .decode(text.trim())
                    .with_context(|| format!("{} is not base64", path.display()))?;
                bytes.try_into().map_err(|b: Vec<u8>| {
                    anyhow::anyhow!(
                        "{} holds {} bytes; an encryption key has 32",
                        path.display(),
                        b.len()
                    )
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key: [u8; 32] = rand::random();
                self.write(
                    "encryption-key",
                    format!("{}\n", engine.encode(key)).as_bytes(),
                )?;
                Ok(key)
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes `name` (0600, atomically).
    pub fn write(&self, name: &str, contents: &[u8]) -> anyhow::Result<()> {
        let path = self.dir.join(name);
        write_private_file(&path, contents)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn seed() -> SeedRecord {
        SeedRecord {
            address: "10.213.0.11".into(),
            port: 22,
            user: "root".into(),
            node_name: "host1".into(),
            advertise_address: "10.213.0.11".parse().unwrap(),
        }
    }

    #[test]
    fn cas_and_key_are_made_once_and_then_loaded() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(&tmp.path().join("c")).unwrap();
        let (cas, made) = state.cas(false).unwrap();
        assert!(made);
        let (again, made) = state.cas(true).unwrap();
        assert!(!made);
        assert_eq!(cas.cluster.cert_pem(), again.cluster.cert_pem());
        let key = state.encryption_key().unwrap();
        assert_eq!(key, state.encryption_key().unwrap());
        let mode = std::fs::metadata(state.path().join("encryption-key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_record_without_cas_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(&tmp.path().join("c")).unwrap();
        let err = state.cas(true).unwrap_err().to_string();
        assert!(err.contains("split the cluster"), "{err}");
    }

    #[test]
    fn the_record_round_trips_and_describes_the_seed() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(&tmp.path().join("c")).unwrap();
        assert!(state.record().unwrap().is_none());
        let record = ClusterRecord::new("kubernetes", seed());
        state.save_record(&record).unwrap();
        assert_eq!(state.record().unwrap(), Some(record.clone()));
        let spec = record.spec();
        spec.check().unwrap();
        assert_eq!(spec.server_url().unwrap(), "https://10.213.0.11:6443");
        assert_eq!(record.id.len(), 32);
    }
}
