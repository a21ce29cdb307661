//! A bundle in a temporary directory with the real layout, its `SHA256SUMS`
//! written by GNU `sha256sum` itself; shared by `bundle_dir.rs` and
//! `bundle_http.rs` (included with `#[path]`). On its own this target holds
//! no tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

pub const BINARIES: &[&str] = &[
    "bin/kube-apiserver",
    "bin/kube-controller-manager",
    "bin/kube-scheduler",
    "bin/kubelet",
    "bin/kube-proxy",
    "bin/kubectl",
    "bin/etcd",
    "bin/etcdctl",
    "bin/helm",
    "bin/containerd",
    "bin/containerd-shim-runc-v2",
    "bin/ctr",
    "bin/runc",
];
pub const CNI: &[&str] = &[
    "cni/bridge",
    "cni/host-local",
    "cni/loopback",
    "cni/portmap",
];
pub const IMAGES: &[&str] = &[
    "images/pause.oci.tar",
    "images/coredns.oci.tar",
    "images/kubeseed-operator.oci.tar",
];
pub const CHART: &[&str] = &[
    "charts/kubeseed/Chart.yaml",
    "charts/kubeseed/values.yaml",
    "charts/kubeseed/templates/deployment.yaml",
    "charts/kubeseed/templates/rbac.yaml",
];
/// The one file big enough to take many reads and many HTTP frames.
pub const BIG: &str = "bin/kube-apiserver";
pub const BIG_SIZE: usize = 6 << 20;

pub const VERSIONS_TEXT: &str = "\
KUBERNETES_VERSION=v1.35.8
ETCD_VERSION=v3.6.5
CONTAINERD_VERSION=v2.1.4
RUNC_VERSION=v1.3.0
CNI_PLUGINS_VERSION=v1.8.0
HELM_VERSION=v3.19.0
PAUSE_IMAGE=registry.k8s.io/pause:3.10.1
COREDNS_IMAGE=localhost/kubeseed/coredns:1.15.0
OPERATOR_IMAGE=kubeseed.io/operator:0.1.0
OPERATOR_VERSION=0.1.0
";

#[derive(Debug)]
pub struct Fixture {
    pub dir: TempDir,
}

impl Fixture {
    /// Every file of the layout with distinct contents, `VERSIONS`, and
    /// `SHA256SUMS` from `sha256sum`.
    pub fn build() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for (i, path) in Self::artifact_paths().iter().enumerate() {
            let size = if *path == BIG {
                BIG_SIZE
            } else {
                1000 + i * 3001
            };
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, contents(path, size)).unwrap();
        }
        std::fs::write(dir.path().join("VERSIONS"), VERSIONS_TEXT).unwrap();
        let f = Self { dir };
        f.write_manifest_with_sha256sum("");
        f
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Everything but SHA256SUMS and VERSIONS.
    pub fn artifact_paths() -> Vec<&'static str> {
        [BINARIES, CNI, IMAGES, CHART].concat()
    }

    /// Every path the manifest lists.
    pub fn manifest_paths() -> Vec<String> {
        let mut all: Vec<String> = Self::artifact_paths()
            .iter()
            .map(|p| p.to_string())
            .collect();
        all.push("VERSIONS".into());
        all.sort();
        all
    }

    /// (Re)writes SHA256SUMS: `sha256sum FLAGS` over every other file,
    /// sorted by path (`LC_ALL=C`).
    pub fn write_manifest_with_sha256sum(&self, flags: &str) {
        let script = format!(
            "find . -type f ! -name SHA256SUMS ! -name '.*' -printf '%P\\n' | LC_ALL=C sort \
             | xargs -d '\\n' sha256sum {flags} > SHA256SUMS"
        );
        sh(self.path(), &script);
    }

    pub fn manifest(&self) -> String {
        std::fs::read_to_string(self.path().join("SHA256SUMS")).unwrap()
    }

    pub fn set_manifest(&self, text: &str) {
        std::fs::write(self.path().join("SHA256SUMS"), text).unwrap();
    }

    /// Inverts one byte in the middle of `rel`.
    pub fn flip_byte(&self, rel: &str) {
        flip_byte(&self.path().join(rel));
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.path().join(rel)).unwrap();
    }

    /// `sha256sum -c --strict SHA256SUMS` in the bundle: (success, output).
    pub fn sha256sum_check(&self) -> (bool, String) {
        sha256sum_check(self.path())
    }

    /// The manifest line of `rel`'s digest.
    pub fn expected(&self, rel: &str) -> String {
        self.manifest()
            .lines()
            .find(|l| l.ends_with(&format!("  {rel}")))
            .unwrap()[..64]
            .to_string()
    }
}

/// `sha256sum -c --strict SHA256SUMS` in `dir`: (success, stdout + stderr).
pub fn sha256sum_check(dir: &Path) -> (bool, String) {
    let out = Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// `sha256sum FILE`'s digest, computed by the tool, not by the code under test.
pub fn sha256sum_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

pub fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

pub fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .args(["-ec", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Deterministic bytes, different per path.
fn contents(path: &str, size: usize) -> Vec<u8> {
    let mut state: u64 = path.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The cache directory of a test: inside a temp dir, not yet created.
pub fn cache_in(t: &TempDir) -> PathBuf {
    t.path().join("cache")
}
