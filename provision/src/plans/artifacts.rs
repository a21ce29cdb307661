//! Binaries and images from the bundle: staged on the host under their
//! bundle's key, checked by sha256 there, linked into place.
//!
//! Staging keeps the bundle's manifest beside the files on every master
//! (`/var/lib/kubeseed/bundle/<key>/`), so the cluster can later install the
//! same verified binaries on a new host without the workstation or any
//! registry. Installing is a symlink flip, so a host switches bundles
//! atomically and the previous one stays for a rollback.

use std::path::PathBuf;

use futures::future::BoxFuture;

use crate::host::Host;
use crate::ssh::FileSpec;
use crate::ssh::shell::quote;
use crate::tasks::{Check, Failure, Progress, Task, check_exit, reasons};

/// Artifacts uploaded at once.
const UPLOADS_IN_FLIGHT: usize = 3;

/// Where bundles are staged on a host.
pub const BUNDLE_ROOT: &str = "/var/lib/kubeseed/bundle";

/// One file of the bundle, already verified on the workstation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedArtifact {
    /// Path inside the bundle, such as `bin/etcd`.
    pub rel: String,
    /// Where the verified bytes are locally.
    pub local: PathBuf,
    /// Their sha256 (hex), from the bundle's manifest.
    pub sha256: String,
}

/// The bundle directory on the host.
pub fn bundle_dir(key: &str) -> String {
    format!("{BUNDLE_ROOT}/{key}")
}

/// Uploads the artifacts a host lacks into its bundle directory and checks
/// every one by sha256 on the host.
#[derive(Debug, Clone)]
pub struct StageArtifacts {
    key: String,
    artifacts: Vec<StagedArtifact>,
    /// SHA256SUMS and VERSIONS, kept beside the files.
    manifests: Vec<(String, Vec<u8>)>,
}

impl StageArtifacts {
    /// Stages `artifacts` of bundle `key`; `manifests` (name, bytes) are
    /// written beside them.
    pub fn new(
        key: impl Into<String>,
        artifacts: Vec<StagedArtifact>,
        manifests: Vec<(String, Vec<u8>)>,
    ) -> Self {
        StageArtifacts {
            key: key.into(),
            artifacts,
            manifests,
        }
    }

    /// The artifacts among `which` that are missing on the host or whose
    /// sha256 there differs from the manifest's. One round trip; `openssl`
    /// hashes where the host has it (coreutils' sha256sum has no SHA-NI
    /// code path and is several times slower on 500 MiB of binaries).
    async fn bad_on_host<'b>(
        &self,
        host: &dyn Host,
        which: &[&'b StagedArtifact],
    ) -> Result<Vec<&'b StagedArtifact>, Failure> {
        let dir = bundle_dir(&self.key);
        let files: Vec<String> = which.iter().map(|a| quote(&a.rel)).collect();
        let script = format!(
            "cd {d} 2>/dev/null || {{ echo kubeseed-no-bundle; exit 0; }}; \
             for f in {files}; do [ -f \"$f\" ] && printf '%s\\0' \"$f\"; done \
             | if command -v openssl >/dev/null; then xargs -0 -r openssl dgst -sha256 -r --; \
               else xargs -0 -r sha256sum --; fi",
            d = quote(&dir),
            files = files.join(" ")
        );
        let out = host.run(&script).await?;
        let text = out.stdout_text();
        if text.trim() == "kubeseed-no-bundle" {
            return Ok(which.to_vec());
        }
        // `HEX *path` (openssl -r) or `HEX  path` (sha256sum).
        let found: std::collections::BTreeMap<&str, &str> = text
            .lines()
            .filter_map(|l| {
                let (hex, path) = l.split_once(' ')?;
                Some((path.trim_start_matches([' ', '*']), hex))
            })
            .collect();
        Ok(which
            .iter()
            .filter(|a| found.get(a.rel.as_str()) != Some(&a.sha256.as_str()))
            .copied()
            .collect())
    }

    fn all(&self) -> Vec<&StagedArtifact> {
        self.artifacts.iter().collect()
    }
}

impl Task for StageArtifacts {
    fn id(&self) -> &str {
        "bundle/stage"
    }

    fn describe(&self) -> String {
        format!("stage {} verified artifacts", self.artifacts.len())
    }

    fn check<'a>(&'a self, host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            let bad = self.bad_on_host(host, &self.all()).await?;
            Ok(match bad.first() {
                None => Check::UpToDate,
                Some(first) => {
                    Check::apply(format!("{} to upload, first {}", bad.len(), first.rel))
                }
            })
        })
    }

    fn apply<'a>(
        &'a self,
        host: &'a dyn Host,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let dir = bundle_dir(&self.key);
            let bad = self.bad_on_host(host, &self.all()).await?;
            // A few files at a time: one SSH channel is bound by one core's
            // cipher, the connection is not.
            let mut sent = 0;
            for chunk in bad.chunks(UPLOADS_IN_FLIGHT) {
                let mut uploads = Vec::with_capacity(chunk.len());
                for a in chunk {
                    uploads.push(upload_one(host, &dir, a));
                }
                futures::future::try_join_all(uploads).await?;
                sent += chunk.len();
                progress(format!("{sent}/{} uploaded", bad.len()));
            }
            for (name, bytes) in &self.manifests {
                host.write_file(bytes, &format!("{dir}/{name}"), &FileSpec::mode(0o644))
                    .await?;
            }
            // What was sent is checked again on the host: the bytes
            // installed are the bytes the manifest names.
            let still = self.bad_on_host(host, &bad).await?;
            if !still.is_empty() {
                let names: Vec<&str> = still.iter().map(|a| a.rel.as_str()).collect();
                return Err(Failure::new(
                    reasons::ARTIFACT_HASH_MISMATCH,
                    format!(
                        "after upload, sha256 on the host differs from the bundle's manifest for {}; \
                         the host's disk or the transfer is corrupting data",
                        names.join(", ")
                    ),
                ));
            }
            Ok(())
        })
    }
}

async fn upload_one(host: &dyn Host, dir: &str, a: &StagedArtifact) -> Result<(), Failure> {
    let mode = if a.rel.starts_with("bin/") || a.rel.starts_with("cni/") {
        0o755
    } else {
        0o644
    };
    host.upload(&a.local, &format!("{dir}/{}", a.rel), &FileSpec::mode(mode))
        .await?;
    Ok(())
}

/// Symlinks `(link, target)` pairs: the installed binaries point into the
/// staged bundle.
#[derive(Debug, Clone)]
pub struct LinkInto {
    id: String,
    links: Vec<(String, String)>,
}

impl LinkInto {
    /// A task making each `link` a symlink to its `target`.
    pub fn new(id: impl Into<String>, links: Vec<(String, String)>) -> Self {
        LinkInto {
            id: id.into(),
            links,
        }
    }
}

impl Task for LinkInto {
    fn id(&self) -> &str {
        &self.id
    }

    fn describe(&self) -> String {
        format!("install {} programs", self.links.len())
    }

    fn check<'a>(&'a self, host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            let tests: Vec<String> = self
                .links
                .iter()
                .map(|(l, t)| format!("[ \"$(readlink {})\" = {} ]", quote(l), quote(t)))
                .collect();
            check_exit(
                host,
                &tests.join(" && "),
                "links missing or pointing elsewhere",
            )
            .await
        })
    }

    fn apply<'a>(
        &'a self,
        host: &'a dyn Host,
        _progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let cmds: Vec<String> = self
                .links
                .iter()
                .map(|(l, t)| {
                    let parent = l.rsplit_once('/').map_or("/", |(p, _)| p);
                    // -T: a directory at the link's name is an error, not a
                    // place to put the link into.
                    format!(
                        "install -d -m 0755 {} && ln -sfnT {} {}",
                        quote(parent),
                        quote(t),
                        quote(l)
                    )
                })
                .collect();
            host.run(&cmds.join(" && ")).await?;
            Ok(())
        })
    }
}

/// Imports an OCI archive into containerd's `k8s.io` namespace (the one the
/// kubelet uses) and pins it, so image garbage collection never removes an
/// image no registry could give back.
#[derive(Debug, Clone)]
pub struct ImportImage {
    id: String,
    archive: String,
    image: String,
    sha256: String,
}

impl ImportImage {
    /// Imports `archive` (a path on the host, sha256 `sha256`) holding `image`.
    pub fn new(
        id: impl Into<String>,
        archive: impl Into<String>,
        image: impl Into<String>,
        sha256: impl Into<String>,
    ) -> Self {
        ImportImage {
            id: id.into(),
            archive: archive.into(),
            image: image.into(),
            sha256: sha256.into(),
        }
    }

    fn marker(&self) -> String {
        let safe: String = self
            .image
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("/var/lib/kubeseed/images/{safe}.sha256")
    }
}

/// `ctr` in the namespace the kubelet's images live in.
const CTR: &str = "ctr --address /run/containerd/containerd.sock -n k8s.io";

impl Task for ImportImage {
    fn id(&self) -> &str {
        &self.id
    }

    fn describe(&self) -> String {
        format!("import image {}", self.image)
    }

    fn check<'a>(&'a self, host: &'a dyn Host) -> BoxFuture<'a, Result<Check, Failure>> {
        Box::pin(async move {
            // The marker ties the image to the archive's bytes: a new bundle
            // with the same image name is imported again.
            let script = format!(
                "{CTR} images ls -q | grep -qxF {img} && [ \"$(cat {m} 2>/dev/null)\" = {sha} ]",
                img = quote(&self.image),
                m = quote(&self.marker()),
                sha = quote(&self.sha256)
            );
            check_exit(host, &script, "not imported from this archive").await
        })
    }

    fn apply<'a>(
        &'a self,
        host: &'a dyn Host,
        _progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let script = format!(
                "{CTR} images import {a} >/dev/null && {CTR} images label {img} io.cri-containerd.pinned=pinned >/dev/null \
                 && install -d -m 0755 /var/lib/kubeseed/images && printf '%s\\n' {sha} > {m}",
                a = quote(&self.archive),
                img = quote(&self.image),
                sha = quote(&self.sha256),
                m = quote(&self.marker())
            );
            host.run(&script).await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fake::{FakeHost, output};

    #[tokio::test]
    async fn stages_only_what_the_host_lacks_and_refuses_a_bad_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let local = tmp.path().join("etcd");
        std::fs::write(&local, b"etcd").unwrap();
        let artifacts = vec![
            StagedArtifact {
                rel: "bin/etcd".into(),
                local: local.clone(),
                sha256: "aa".into(),
            },
            StagedArtifact {
                rel: "bin/kubectl".into(),
                local,
                sha256: "bb".into(),
            },
        ];
        let task = StageArtifacts::new("k1", artifacts, vec![]);
        let host = FakeHost::new("h:22");
        // The host hashes only what exists: kubectl is right, etcd is not.
        host.on("openssl dgst", output(0, "bb *bin/kubectl\nff *bin/etcd\n"));
        assert!(matches!(
            task.check(&host).await.unwrap(),
            Check::Apply { .. }
        ));
        let err = task.apply(&host, &|_| {}).await.unwrap_err();
        assert_eq!(err.reason, reasons::ARTIFACT_HASH_MISMATCH);
        assert!(err.message.contains("bin/etcd"), "{}", err.message);
        assert!(host.file("/var/lib/kubeseed/bundle/k1/bin/etcd").is_some());
        assert!(
            host.file("/var/lib/kubeseed/bundle/k1/bin/kubectl")
                .is_none()
        );
    }
}
