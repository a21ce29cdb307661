//! Opening and verifying a bundle directory.
//!
//! Kind of test: real files in a temporary directory, with `SHA256SUMS`
//! written and checked by GNU coreutils' `sha256sum`, so the format parsed is
//! the one the tool writes and accepts. No network, no root.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "bundle_fixture.rs"]
mod fixture;

use fixture::*;
use kubeseed_provision::bundle::*;

async fn open(f: &Fixture) -> Result<Bundle, BundleError> {
    Bundle::open(&Source::Dir(f.path().into()), &OpenOptions::default()).await
}

#[tokio::test]
async fn sha256sum_output_opens_and_every_file_verifies() {
    init_tracing();
    let f = Fixture::build();
    let (ok, out) = f.sha256sum_check();
    assert!(ok, "sha256sum -c refuses its own output: {out}");

    let bundle = open(&f).await.unwrap();
    // The key, computed by the tool: first 16 hex digits of sha256(SHA256SUMS).
    let manifest_digest = sha256sum_of(&f.path().join("SHA256SUMS"));
    assert_eq!(bundle.key(), &manifest_digest[..16]);
    assert_eq!(bundle.manifest_sha256().to_string(), manifest_digest);
    assert_eq!(bundle.local_root(), f.path().canonicalize().unwrap());

    let listed: Vec<_> = bundle.artifacts().iter().map(|e| e.path.clone()).collect();
    assert_eq!(listed, Fixture::manifest_paths());
    let chart: Vec<_> = bundle
        .artifacts_under("charts/kubeseed/")
        .map(|e| e.path.as_str())
        .collect();
    let mut want_chart = CHART.to_vec();
    want_chart.sort();
    assert_eq!(chart, want_chart);
    assert_eq!(
        bundle.artifacts_under("charts/kubeseed").count(),
        CHART.len()
    );
    assert_eq!(bundle.artifacts_under("charts/kube").count(), 0);

    let v = bundle.versions();
    assert_eq!(
        (v.kubernetes(), v.etcd(), v.operator_image()),
        ("v1.35.8", "v3.6.5", "kubeseed.io/operator:0.1.0")
    );
    assert_eq!(v.get("PAUSE_IMAGE"), Some("registry.k8s.io/pause:3.10.1"));

    let all = bundle.verify_all().await.unwrap();
    assert_eq!(all.len(), Fixture::manifest_paths().len());
    for a in &all {
        assert_eq!(a.local_path, bundle.local_root().join(&a.path));
        assert_eq!(a.sha256.to_string(), f.expected(&a.path), "{}", a.path);
        assert_eq!(a.sha256.to_string(), sha256sum_of(&a.local_path));
        assert_eq!(a.size, std::fs::metadata(&a.local_path).unwrap().len());
    }
    let big = all.iter().find(|a| a.path == BIG).unwrap();
    assert_eq!(big.size, BIG_SIZE as u64);

    // A plan's own list: in its order, duplicates once.
    let plan = [
        "bin/kubelet",
        "cni/bridge",
        "bin/kubelet",
        "images/pause.oci.tar",
    ];
    let got = bundle.verify(plan).await.unwrap();
    let paths: Vec<_> = got.iter().map(|a| a.path.as_str()).collect();
    assert_eq!(paths, ["bin/kubelet", "cni/bridge", "images/pause.oci.tar"]);
    assert!(
        bundle
            .verify(Vec::<String>::new())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn binary_mode_and_dot_slash_manifests_from_sha256sum_are_accepted() {
    let f = Fixture::build();
    let plain = open(&f).await.unwrap();
    let plain: Vec<_> = plain.artifacts().to_vec();

    f.write_manifest_with_sha256sum("-b");
    assert!(f.manifest().lines().all(|l| l.as_bytes()[65] == b'*'));
    assert!(f.sha256sum_check().0);
    assert_eq!(open(&f).await.unwrap().artifacts(), plain.as_slice());

    sh(
        f.path(),
        "find . -type f ! -name SHA256SUMS -printf './%P\\n' | LC_ALL=C sort \
         | xargs -d '\\n' sha256sum > SHA256SUMS",
    );
    assert!(f.manifest().lines().all(|l| l[66..].starts_with("./")));
    assert!(f.sha256sum_check().0);
    let bundle = open(&f).await.unwrap();
    assert_eq!(bundle.artifacts(), plain.as_slice());
    bundle.verify_all().await.unwrap();
}

#[tokio::test]
async fn a_flipped_byte_is_refused_named_and_nothing_is_returned() {
    init_tracing();
    let f = Fixture::build();
    let bundle = open(&f).await.unwrap();
    f.flip_byte("bin/kubelet");
    let (ok, out) = f.sha256sum_check();
    assert!(!ok && out.contains("bin/kubelet: FAILED"), "{out}");

    let e = bundle.verify(BINARIES).await.unwrap_err();
    assert_eq!(e.reason(), "ArtifactHashMismatch");
    assert_eq!(e.artifact(), Some("bin/kubelet"));
    let BundleError::ArtifactHashMismatch {
        path,
        expected,
        actual,
        location,
    } = &e
    else {
        panic!("{e:?}")
    };
    assert_eq!(path, "bin/kubelet");
    assert_eq!(expected.to_string(), f.expected("bin/kubelet"));
    assert_eq!(
        actual.to_string(),
        sha256sum_of(&f.path().join("bin/kubelet"))
    );
    assert!(location.ends_with("/bin/kubelet"));
    let msg = e.to_string();
    assert!(msg.starts_with("bin/kubelet: sha256 is "), "{msg}");
    assert!(msg.contains(&expected.to_string()) && msg.contains(&actual.to_string()));
    assert!(msg.contains("bash e2e/toolchain/bundle.sh"), "{msg}");
    assert!(!e.is_transient());

    // The other files are still good on their own.
    bundle.verify(["bin/etcd", "bin/kubectl"]).await.unwrap();
}

#[tokio::test]
async fn a_missing_file_is_named() {
    let f = Fixture::build();
    let bundle = open(&f).await.unwrap();
    f.remove("cni/portmap");
    let e = bundle.verify(CNI).await.unwrap_err();
    assert_eq!(
        (e.reason(), e.artifact()),
        ("ArtifactMissing", Some("cni/portmap"))
    );
    let msg = e.to_string();
    assert!(msg.starts_with("cni/portmap: listed in the bundle's SHA256SUMS but missing"));
    assert!(msg.contains("no such file"), "{msg}");
}

#[tokio::test]
async fn a_path_not_in_the_manifest_is_named() {
    let f = Fixture::build();
    let bundle = open(&f).await.unwrap();
    let e = bundle
        .verify(["bin/etcd", "bin/kubeadm"])
        .await
        .unwrap_err();
    assert_eq!(
        (e.reason(), e.artifact()),
        ("ArtifactNotInManifest", Some("bin/kubeadm"))
    );
    assert!(
        e.to_string()
            .contains("not listed in the bundle's SHA256SUMS")
    );
}

#[tokio::test]
async fn several_bad_files_are_all_listed_in_the_order_asked() {
    let f = Fixture::build();
    let bundle = open(&f).await.unwrap();
    f.flip_byte("bin/etcd");
    f.flip_byte("images/pause.oci.tar");
    f.remove("bin/runc");
    let plan = [
        "bin/etcd",
        "bin/kubelet",
        "bin/runc",
        "bin/kubeadm",
        "images/pause.oci.tar",
    ];
    let e = bundle.verify(plan).await.unwrap_err();
    assert_eq!(e.reason(), "ArtifactsRejected");
    let named: Vec<_> = e
        .problems()
        .iter()
        .map(|p| (p.artifact().unwrap(), p.reason()))
        .collect();
    assert_eq!(
        named,
        [
            ("bin/etcd", "ArtifactHashMismatch"),
            ("bin/runc", "ArtifactMissing"),
            ("bin/kubeadm", "ArtifactNotInManifest"),
            ("images/pause.oci.tar", "ArtifactHashMismatch"),
        ]
    );
    let msg = e.to_string();
    assert!(msg.starts_with("4 artifacts of the bundle were refused, nothing was used"));
    for p in [
        "bin/etcd",
        "bin/runc",
        "bin/kubeadm",
        "images/pause.oci.tar",
    ] {
        assert!(msg.contains(&format!("\n  - {p}: ")), "{p} in {msg}");
    }
}

#[tokio::test]
async fn malformed_manifests_are_refused_with_their_line_number() {
    let f = Fixture::build();
    let good = f.manifest();
    let lines: Vec<&str> = good.lines().collect();
    let with_line = |n: usize, line: String| {
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        l[n - 1] = line;
        l.join("\n") + "\n"
    };
    let hex = &lines[2][..64];
    let cases = [
        (
            with_line(3, format!("{}  bin/x", &hex[..60])),
            3,
            "not a sha256",
        ),
        (with_line(4, format!("{hex}  /usr/bin/etcd")), 4, "absolute"),
        (
            with_line(5, format!("{hex}  ../../etc/shadow")),
            5,
            "leaves the bundle",
        ),
        (
            with_line(6, lines[1].to_string()),
            6,
            "listed twice (first on line 2)",
        ),
        (with_line(7, String::new()), 7, "expected"),
        (with_line(8, format!("{hex} bin/one-space")), 8, "expected"),
    ];
    for (text, line, words) in cases {
        f.set_manifest(&text);
        // The tool refuses these too (strict mode), except a duplicate and a
        // blank line, which GNU sha256sum passes over; the bundle is stricter
        // (a manifest written by `sha256sum` never has either) ...
        if line != 6 && line != 7 {
            assert!(!f.sha256sum_check().0, "sha256sum accepted line {line}");
        }
        // ... and the bundle refuses all of them, naming the line.
        let e = open(&f).await.unwrap_err();
        assert_eq!(e.reason(), "BundleManifestMalformed", "{e}");
        let BundleError::ManifestMalformed {
            line: got, problem, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(*got, line, "{e}");
        assert!(problem.contains(words), "{e}");
        assert!(
            e.to_string().contains(&format!("SHA256SUMS line {line}: ")),
            "{e}"
        );
    }
}

#[tokio::test]
async fn a_pinned_manifest_digest_must_match() {
    let f = Fixture::build();
    let digest: Sha256Digest = sha256sum_of(&f.path().join("SHA256SUMS")).parse().unwrap();
    let source = Source::Dir(f.path().into());
    let bundle = Bundle::open(&source, &OpenOptions::pinned(digest))
        .await
        .unwrap();
    assert_eq!(bundle.manifest_sha256(), digest);

    // Any change to the manifest, even one that keeps it consistent with the
    // files (here: a file dropped from it), is refused under the pin.
    let fewer: String = f
        .manifest()
        .lines()
        .filter(|l| !l.ends_with("bin/ctr"))
        .map(|l| format!("{l}\n"))
        .collect();
    f.set_manifest(&fewer);
    assert!(f.sha256sum_check().0);
    let e = Bundle::open(&source, &OpenOptions::pinned(digest))
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "BundleManifestMismatch");
    let msg = e.to_string();
    assert!(msg.contains(&digest.to_string()), "{msg}");
    assert!(
        msg.contains(&sha256sum_of(&f.path().join("SHA256SUMS"))),
        "{msg}"
    );
    assert!(msg.contains("--bundle-sha256"), "{msg}");
}

#[tokio::test]
async fn versions_are_trusted_only_through_the_manifest() {
    let f = Fixture::build();
    // Changed after the manifest was written: refused at open.
    std::fs::write(
        f.path().join("VERSIONS"),
        VERSIONS_TEXT.replace("v1.35.8", "v1.35.9"),
    )
    .unwrap();
    let e = open(&f).await.unwrap_err();
    assert_eq!(
        (e.reason(), e.artifact()),
        ("ArtifactHashMismatch", Some("VERSIONS"))
    );

    // Consistent but incomplete: the missing key is named.
    std::fs::write(
        f.path().join("VERSIONS"),
        VERSIONS_TEXT.replace("HELM_VERSION=v3.19.0\n", ""),
    )
    .unwrap();
    f.write_manifest_with_sha256sum("");
    let e = open(&f).await.unwrap_err();
    assert_eq!(e.reason(), "BundleVersionsMalformed");
    assert!(e.to_string().contains("HELM_VERSION"), "{e}");

    // Not in the manifest at all.
    let without: String = f
        .manifest()
        .lines()
        .filter(|l| !l.ends_with("  VERSIONS"))
        .map(|l| format!("{l}\n"))
        .collect();
    f.set_manifest(&without);
    let e = open(&f).await.unwrap_err();
    assert_eq!(
        (e.reason(), e.artifact()),
        ("ArtifactNotInManifest", Some("VERSIONS"))
    );
}

#[tokio::test]
async fn a_directory_that_is_not_a_bundle_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let e = Bundle::open(&Source::Dir(t.path().into()), &OpenOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "BundleManifestMissing");
    assert!(
        e.to_string().contains("bash e2e/toolchain/bundle.sh"),
        "{e}"
    );
    let e = Bundle::open(&Source::Dir(t.path().join("nope")), &OpenOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "BundleManifestMissing");
    assert!(e.to_string().contains("no such directory"), "{e}");
}
