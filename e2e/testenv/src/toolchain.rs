//! Where the real Kubernetes, etcd, Helm, containerd, runc and CNI programs
//! (and the pause image) built by `e2e/toolchain/build.sh` live.
//!
//! Tests never build the toolchain themselves (a cold build takes tens of
//! minutes); they locate a finished one and fail with instructions when there
//! is none, because CI always builds it first and a silent skip would hide a
//! broken pipeline.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Versions `e2e/toolchain/build.sh` pins by default. A unit test keeps the two
/// in step.
pub const K8S_VERSION: &str = "v1.35.8";
/// etcd and etcdctl version built by default.
pub const ETCD_VERSION: &str = "v3.6.16";
/// Helm 4 version built by default (installed as `helm`).
pub const HELM4_VERSION: &str = "v4.3.1";
/// Helm 3 version built by default (installed as `helm3`).
pub const HELM3_VERSION: &str = "v3.22.0";
/// containerd (containerd, containerd-shim-runc-v2, ctr) version built by default.
pub const CONTAINERD_VERSION: &str = "v2.4.2";
/// runc version built by default.
pub const RUNC_VERSION: &str = "v1.5.3";
/// Version of the CNI plugins (bridge, host-local, loopback, portmap) built by default.
pub const CNI_PLUGINS_VERSION: &str = "v1.10.0";
/// Tag of the pause image, as the Kubernetes module's `build/pause/Makefile` says.
pub const PAUSE_VERSION: &str = "3.10.1";
/// Name the pause image archive gives itself when imported into containerd.
pub const PAUSE_IMAGE: &str = "localhost/kubeseed/pause:3.10.1";
/// CoreDNS version built by default (the cluster's DNS).
pub const COREDNS_VERSION: &str = "v1.15.0";
/// Name the CoreDNS image archive gives itself when imported into containerd.
pub const COREDNS_IMAGE: &str = "localhost/kubeseed/coredns:1.15.0";

/// The versions build.sh records in `versions.env` that are not part of the
/// toolchain directory's name; a directory whose `versions.env` lacks one of
/// these lines was built for other versions (or before they existed).
const UNKEYED_VERSIONS: &[(&str, &str)] = &[
    ("CONTAINERD_VERSION", CONTAINERD_VERSION),
    ("RUNC_VERSION", RUNC_VERSION),
    ("CNI_PLUGINS_VERSION", CNI_PLUGINS_VERSION),
    ("PAUSE_VERSION", PAUSE_VERSION),
    ("COREDNS_VERSION", COREDNS_VERSION),
];

/// Every program the build script installs into the bin directory. The CNI
/// plugins are in its `cni/` subdirectory (the layout of `/opt/cni/bin`).
pub const PROGRAMS: &[&str] = &[
    "etcd",
    "etcdctl",
    "helm",
    "helm3",
    "kube-apiserver",
    "kubectl",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubeadm",
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "runc",
    "cni/bridge",
    "cni/host-local",
    "cni/loopback",
    "cni/portmap",
    "coredns",
];

/// Files in the bin directory that are not programs: the pause and CoreDNS
/// images as OCI archives (`ctr -n k8s.io images import` names them
/// [`PAUSE_IMAGE`] and [`COREDNS_IMAGE`]).
pub const FILES: &[&str] = &["pause.oci.tar", "coredns.oci.tar"];

/// Environment variable naming the toolchain's bin directory explicitly
/// (the last line `build.sh` prints is `KUBESEED_TOOLCHAIN=<dir>`).
pub const TOOLCHAIN_ENV: &str = "KUBESEED_TOOLCHAIN";

/// Why no usable toolchain was found. `Debug` prints the `Display` text so
/// a test's `.unwrap()` says what to do.
#[derive(thiserror::Error)]
pub enum ToolchainError {
    /// Nothing was found where the build script puts it.
    #[error(
        "no Kubernetes toolchain found: {detail}. Build it with `bash e2e/toolchain/build.sh` \
         (cold: tens of minutes; afterwards instant) or point {TOOLCHAIN_ENV} at an existing bin directory"
    )]
    NotBuilt {
        /// What was looked at.
        detail: String,
    },
    /// The directory exists but a program is missing or not executable.
    #[error(
        "toolchain at {dir} is incomplete: {program} is missing or not executable. \
         Re-run `bash e2e/toolchain/build.sh` (it rebuilds only what is missing)"
    )]
    Incomplete {
        /// The bin directory.
        dir: PathBuf,
        /// The missing program.
        program: String,
    },
}

impl std::fmt::Debug for ToolchainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// A finished toolchain: a directory holding [`PROGRAMS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    bin: PathBuf,
}

impl Toolchain {
    /// Finds the toolchain: `$KUBESEED_TOOLCHAIN` if set, else the build
    /// script's default cache location for the pinned versions.
    pub fn locate() -> Result<Self, ToolchainError> {
        if let Some(dir) = std::env::var_os(TOOLCHAIN_ENV).filter(|v| !v.is_empty()) {
            return Self::at(PathBuf::from(dir));
        }
        let root = cache_root(&EnvLookup).join("toolchain");
        let bin = find_complete(&root)?;
        Self::at(bin)
    }

    /// Uses `bin` as the toolchain directory after checking every program is there.
    pub fn at(bin: PathBuf) -> Result<Self, ToolchainError> {
        if !bin.is_dir() {
            return Err(ToolchainError::NotBuilt {
                detail: format!("{} is not a directory", bin.display()),
            });
        }
        for program in PROGRAMS {
            if !is_executable(&bin.join(program)) {
                return Err(ToolchainError::Incomplete {
                    dir: bin,
                    program: (*program).to_owned(),
                });
            }
        }
        for file in FILES {
            if !bin.join(file).is_file() {
                return Err(ToolchainError::Incomplete {
                    dir: bin,
                    program: (*file).to_owned(),
                });
            }
        }
        Ok(Self { bin })
    }

    /// The bin directory.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// Path of one program in the toolchain (e.g. `"kube-apiserver"`).
    pub fn program(&self, name: impl AsRef<OsStr>) -> PathBuf {
        self.bin.join(name.as_ref())
    }

    /// `kube-apiserver`.
    pub fn kube_apiserver(&self) -> PathBuf {
        self.program("kube-apiserver")
    }

    /// `etcd`.
    pub fn etcd(&self) -> PathBuf {
        self.program("etcd")
    }

    /// `etcdctl`.
    pub fn etcdctl(&self) -> PathBuf {
        self.program("etcdctl")
    }

    /// `kubectl` (never the machine's `/usr/bin/kubectl`).
    pub fn kubectl(&self) -> PathBuf {
        self.program("kubectl")
    }

    /// Helm 4.
    pub fn helm(&self) -> PathBuf {
        self.program("helm")
    }

    /// Helm 3.
    pub fn helm3(&self) -> PathBuf {
        self.program("helm3")
    }

    /// `kubeadm` (the seed benchmark's reference).
    pub fn kubeadm(&self) -> PathBuf {
        self.program("kubeadm")
    }

    /// `containerd`.
    pub fn containerd(&self) -> PathBuf {
        self.program("containerd")
    }

    /// `containerd-shim-runc-v2`.
    pub fn containerd_shim(&self) -> PathBuf {
        self.program("containerd-shim-runc-v2")
    }

    /// `ctr`.
    pub fn ctr(&self) -> PathBuf {
        self.program("ctr")
    }

    /// `runc` (static, with seccomp).
    pub fn runc(&self) -> PathBuf {
        self.program("runc")
    }

    /// Directory of the CNI plugins (bridge, host-local, loopback, portmap):
    /// what goes to a host's `/opt/cni/bin`.
    pub fn cni_bin_dir(&self) -> PathBuf {
        self.bin.join("cni")
    }

    /// The pause image as an OCI archive; its name is [`PAUSE_IMAGE`].
    pub fn pause_image(&self) -> PathBuf {
        self.bin.join("pause.oci.tar")
    }
}

/// Reads environment variables; a trait so the path logic is testable.
trait Env {
    fn var(&self, name: &str) -> Option<String>;
}

struct EnvLookup;

impl Env for EnvLookup {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// `${KUBESEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeseed}`, as in build.sh.
fn cache_root(env: &dyn Env) -> PathBuf {
    if let Some(dir) = env.var("KUBESEED_CACHE") {
        return PathBuf::from(dir);
    }
    let base = env
        .var("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env.var("HOME").unwrap_or_else(|| "/root".into())).join(".cache")
        });
    base.join("kubeseed")
}

/// Directory-name prefix build.sh uses for the pinned versions; the rest of
/// the key (Go version, platform) may differ between machines.
fn key_prefix() -> String {
    format!("k8s-{K8S_VERSION}_etcd-{ETCD_VERSION}_helm-{HELM4_VERSION}-{HELM3_VERSION}_")
}

/// Does `bin/versions.env` record every pinned version the directory name
/// does not carry? build.sh keeps the name of a toolchain built before
/// containerd, runc and CNI joined, and adds those programs in place.
fn records_pinned_versions(bin: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(bin.join("versions.env")) else {
        return false;
    };
    UNKEYED_VERSIONS.iter().all(|(var, want)| {
        text.lines()
            .any(|l| l.strip_prefix(var).and_then(|r| r.strip_prefix('=')) == Some(want))
    })
}

/// The bin directory of a finished build (one with build.sh's `.complete`
/// stamp and a `versions.env` naming the pinned versions) under `root`. When
/// several Go versions built it, the lexically greatest key wins so the choice
/// is stable.
fn find_complete(root: &Path) -> Result<PathBuf, ToolchainError> {
    let prefix = key_prefix();
    let entries = std::fs::read_dir(root).map_err(|e| ToolchainError::NotBuilt {
        detail: format!("cannot read {}: {e}", root.display()),
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .filter(|p| p.join(".complete").is_file() && records_pinned_versions(&p.join("bin")))
        .collect();
    found.sort();
    found
        .pop()
        .map(|p| p.join("bin"))
        .ok_or_else(|| ToolchainError::NotBuilt {
            detail: format!(
                "no finished build named {prefix}* with containerd {CONTAINERD_VERSION}, \
                 runc {RUNC_VERSION}, CNI plugins {CNI_PLUGINS_VERSION} and pause {PAUSE_VERSION} \
                 in {}",
                root.display()
            ),
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct FakeEnv(HashMap<&'static str, &'static str>);

    impl Env for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).map(|v| (*v).to_owned())
        }
    }

    #[test]
    fn cache_root_follows_build_script_precedence() {
        let env = FakeEnv(HashMap::from([
            ("KUBESEED_CACHE", "/a"),
            ("XDG_CACHE_HOME", "/b"),
            ("HOME", "/c"),
        ]));
        assert_eq!(cache_root(&env), PathBuf::from("/a"));
        let env = FakeEnv(HashMap::from([("XDG_CACHE_HOME", "/b"), ("HOME", "/c")]));
        assert_eq!(cache_root(&env), PathBuf::from("/b/kubeseed"));
        let env = FakeEnv(HashMap::from([("HOME", "/c")]));
        assert_eq!(cache_root(&env), PathBuf::from("/c/.cache/kubeseed"));
    }

    #[test]
    fn pinned_versions_match_build_script() {
        let script = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../toolchain/build.sh"),
        )
        .unwrap();
        for (var, want) in [
            ("K8S_VERSION", K8S_VERSION),
            ("ETCD_VERSION", ETCD_VERSION),
            ("HELM4_VERSION", HELM4_VERSION),
            ("HELM3_VERSION", HELM3_VERSION),
            ("CONTAINERD_VERSION", CONTAINERD_VERSION),
            ("RUNC_VERSION", RUNC_VERSION),
            ("CNI_PLUGINS_VERSION", CNI_PLUGINS_VERSION),
            ("PAUSE_VERSION", PAUSE_VERSION),
            ("COREDNS_VERSION", COREDNS_VERSION),
        ] {
            let line = format!("{var}=\"${{{var}:-{want}}}\"");
            assert!(script.contains(&line), "build.sh should pin `{line}`");
        }
        for program in PROGRAMS.iter().chain(FILES) {
            assert!(script.contains(program), "build.sh should build {program}");
        }
        assert!(
            script.contains("PAUSE_IMAGE=\"localhost/kubeseed/pause:$PAUSE_VERSION\""),
            "build.sh should name the pause image {PAUSE_IMAGE}"
        );
        assert_eq!(
            PAUSE_IMAGE,
            format!("localhost/kubeseed/pause:{PAUSE_VERSION}")
        );
        assert!(
            script.contains("COREDNS_IMAGE=\"localhost/kubeseed/coredns:${COREDNS_VERSION#v}\""),
            "build.sh should name the CoreDNS image {COREDNS_IMAGE}"
        );
        assert_eq!(
            COREDNS_IMAGE,
            format!("localhost/kubeseed/coredns:{}", &COREDNS_VERSION[1..])
        );
    }

    #[test]
    fn module_hashes_are_recorded_for_pinned_versions() {
        let sums = Path::new(env!("CARGO_MANIFEST_DIR")).join("../toolchain/sums");
        for name in [
            format!("kubernetes-{K8S_VERSION}"),
            format!("etcd-{ETCD_VERSION}"),
            format!("helm-{HELM4_VERSION}"),
            format!("helm-{HELM3_VERSION}"),
            format!("containerd-{CONTAINERD_VERSION}"),
            format!("runc-{RUNC_VERSION}"),
            format!("cni-plugins-{CNI_PLUGINS_VERSION}"),
            format!("coredns-{COREDNS_VERSION}"),
        ] {
            let file = sums.join(format!("{name}.go.sum"));
            let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
                panic!("{}: {e} (see e2e/toolchain/README.md)", file.display())
            });
            assert!(
                text.lines().count() > 20,
                "{} looks truncated",
                file.display()
            );
        }
    }

    #[test]
    fn finds_only_completed_builds_of_pinned_versions() {
        let root = tempfile::tempdir().unwrap();
        let prefix = key_prefix();
        let unfinished = root.path().join(format!("{prefix}go1.26.8_linux-amd64"));
        std::fs::create_dir_all(unfinished.join("bin")).unwrap();
        let other = root
            .path()
            .join("k8s-v1.34.0_etcd-v3.6.0_helm-x-y_go1_linux-amd64");
        std::fs::create_dir_all(other.join("bin")).unwrap();
        std::fs::write(other.join(".complete"), "").unwrap();
        let err = find_complete(root.path()).unwrap_err();
        assert!(err.to_string().contains("e2e/toolchain/build.sh"), "{err}");

        // Stamped by a build.sh that knew only Kubernetes, etcd and Helm.
        std::fs::write(unfinished.join(".complete"), "").unwrap();
        std::fs::write(
            unfinished.join("bin/versions.env"),
            format!("K8S_VERSION={K8S_VERSION}\n"),
        )
        .unwrap();
        let err = find_complete(root.path()).unwrap_err();
        assert!(err.to_string().contains(CONTAINERD_VERSION), "{err}");

        let mut env = format!("K8S_VERSION={K8S_VERSION}\n");
        for (var, value) in UNKEYED_VERSIONS {
            env.push_str(&format!("{var}={value}\n"));
        }
        std::fs::write(unfinished.join("bin/versions.env"), env).unwrap();
        assert_eq!(find_complete(root.path()).unwrap(), unfinished.join("bin"));
    }

    #[test]
    fn missing_program_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = Toolchain::at(dir.path().to_path_buf()).unwrap_err();
        assert!(err.to_string().contains("etcd is missing"), "{err}");
    }
}
