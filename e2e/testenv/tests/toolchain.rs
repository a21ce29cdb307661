//! The toolchain's programs run and say the versions build.sh pinned
//! (proof that the ldflags stamping works). Needs `bash e2e/toolchain/build.sh`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kubeseed_testenv::Toolchain;
use kubeseed_testenv::toolchain::{
    CNI_PLUGINS_VERSION, CONTAINERD_VERSION, ETCD_VERSION, HELM3_VERSION, HELM4_VERSION,
    K8S_VERSION, PAUSE_IMAGE, RUNC_VERSION,
};

fn output(tc: &Toolchain, program: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(tc.program(program))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?} failed:\n{text}");
    eprintln!("$ {program} {}\n{}", args.join(" "), text.trim_end());
    text
}

#[test]
fn programs_report_the_pinned_versions() {
    let tc = Toolchain::locate().unwrap();
    let k8s = format!("Kubernetes {K8S_VERSION}");
    for program in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubelet",
        "kube-proxy",
    ] {
        let said = output(&tc, program, &["--version"]);
        assert_eq!(said.trim(), k8s, "{program}");
    }
    let kubectl: serde_json::Value = serde_json::from_str(&output(
        &tc,
        "kubectl",
        &["version", "--client", "-o", "json"],
    ))
    .unwrap();
    let client = &kubectl["clientVersion"];
    assert_eq!(client["gitVersion"], K8S_VERSION);
    assert_eq!(client["gitTreeState"], "clean");
    let minor = K8S_VERSION.split('.').nth(1).unwrap();
    assert_eq!(client["major"], "1");
    assert_eq!(client["minor"], minor);
    // build.sh stamps the tag's publication time and records it beside the programs.
    let recorded = std::fs::read_to_string(tc.bin_dir().join("versions.env")).unwrap();
    let build_date = recorded
        .lines()
        .find_map(|l| l.strip_prefix("BUILD_DATE="))
        .expect("versions.env has BUILD_DATE");
    assert_eq!(client["buildDate"], build_date);
    // Unknown from the module proxy: empty rather than a made-up hash.
    assert_eq!(client["gitCommit"], "");

    let etcd_version = ETCD_VERSION.trim_start_matches('v');
    assert!(output(&tc, "etcd", &["--version"]).contains(&format!("etcd Version: {etcd_version}")));
    assert!(
        output(&tc, "etcdctl", &["version"]).contains(&format!("etcdctl version: {etcd_version}"))
    );
    assert!(output(&tc, "helm", &["version", "--short"]).starts_with(HELM4_VERSION));
    assert!(output(&tc, "helm3", &["version", "--short"]).starts_with(HELM3_VERSION));
}

#[test]
fn runtime_programs_report_the_pinned_versions() {
    let tc = Toolchain::locate().unwrap();
    let kubeadm = output(&tc, "kubeadm", &["version", "-o", "short"]);
    assert_eq!(kubeadm.trim(), K8S_VERSION);
    assert_eq!(
        output(&tc, "containerd", &["--version"]).trim(),
        format!("containerd github.com/containerd/containerd/v2 {CONTAINERD_VERSION}")
    );
    assert!(output(&tc, "ctr", &["--version"]).contains(CONTAINERD_VERSION));
    assert!(output(&tc, "containerd-shim-runc-v2", &["-v"]).contains(CONTAINERD_VERSION));
    // Built with the seccomp tag and libseccomp linked in: the operator's Pod
    // asks for seccompProfile RuntimeDefault.
    let runc = output(&tc, "runc", &["--version"]);
    let runc_version = RUNC_VERSION.trim_start_matches('v');
    assert!(
        runc.starts_with(&format!("runc version {runc_version}\n")),
        "{runc}"
    );
    assert!(
        runc.contains("\nlibseccomp: "),
        "runc without seccomp:\n{runc}"
    );
    // Without CNI_COMMAND a plugin prints its "about" text and exits 0.
    for plugin in ["bridge", "host-local", "loopback", "portmap"] {
        let about = output(&tc, &format!("cni/{plugin}"), &[]);
        assert!(
            about.contains(&format!("CNI {plugin} plugin {CNI_PLUGINS_VERSION}")),
            "{about}"
        );
    }
    assert_eq!(tc.cni_bin_dir(), tc.bin_dir().join("cni"));
}

#[test]
fn pause_image_archive_names_the_pinned_image() {
    let tc = Toolchain::locate().unwrap();
    let out = std::process::Command::new("tar")
        .arg("-xOf")
        .arg(tc.pause_image())
        .arg("index.json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let index: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        PAUSE_IMAGE
    );
}

#[test]
fn manifest_lists_every_program_with_its_digest() {
    let tc = Toolchain::locate().unwrap();
    let manifest = std::fs::read_to_string(tc.bin_dir().join("SHA256SUMS")).unwrap();
    for program in kubeseed_testenv::toolchain::PROGRAMS
        .iter()
        .chain(kubeseed_testenv::toolchain::FILES)
    {
        let line = manifest
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(program))
            .unwrap_or_else(|| panic!("{program} missing from SHA256SUMS"));
        let digest = line.split_whitespace().next().unwrap();
        assert_eq!(digest.len(), 64, "{line}");
    }
}
