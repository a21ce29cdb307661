//! `bootstrap seed` on real lab hosts (kind: whole-system, real hosts).
//!
//! One lab serves every scenario, in sequence:
//!
//! 1. bad input, each on a host that must be left as it was: an unreachable
//!    address, a wrong SSH key, a pinned host key that is not the host's, a
//!    user without passwordless sudo, swap on, a port taken, a bundle with a
//!    corrupted and one with a missing binary, a `/var/lib/etcd` of another
//!    cluster;
//! 2. host1 seeded: the API answers with the written kubeconfig, the Node is
//!    Ready, the operator Pod runs and answers, the members are Ready,
//!    Secrets are ciphertext in etcd; a second run changes nothing;
//! 3. host2 seeded as another cluster by a user with passwordless sudo, the
//!    run killed half-way and run again: it finishes.
//!
//! Needs root, the toolchain and a bundle (`KUBESEED_BUNDLE`, printed by
//! `bash e2e/toolchain/bundle.sh`), and the `bootstrap` binary built
//! (`cargo build -p kubeseed-bootstrap`; `e2e/test.sh` does both).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test: a failed step must stop it

mod common;

use std::time::Instant;

use common::{Seeder, bundle_dir, lab_for};
use kubeseed_e2e::Lab;

const NAME: &str = "seedtest";
const SUBNET: &str = "10.213.10.0/24";

#[test]
fn seed_lab_hosts() {
    let bundle = bundle_dir();
    let lab = lab_for(NAME, SUBNET, 3);
    let work = tempfile::tempdir().unwrap();
    let seeder = Seeder::new(&lab, &bundle, work.path());

    bad_input_changes_nothing(&lab, &seeder, work.path());

    // ---- host1: the seed --------------------------------------------------------
    let state1 = work.path().join("cluster1");
    let started = Instant::now();
    let out = seeder.seed(&lab, "host1", &state1, &[]);
    assert!(out.ok, "seed of host1 failed:\n{}", out.text);
    let seed_seconds = started.elapsed().as_secs_f64();
    eprintln!("seed of host1: {seed_seconds:.1} s");
    common::the_seed_works(&lab, "host1", &state1);

    let report = work.path().join("second.json");
    let again = seeder.seed(
        &lab,
        "host1",
        &state1,
        &["--report", report.to_str().unwrap()],
    );
    assert!(again.ok, "second seed failed:\n{}", again.text);
    let changed = common::changed_tasks(&report);
    assert!(
        changed.is_empty(),
        "a second seed changed {changed:?}:\n{}",
        again.text
    );
    assert!(again.text.contains("already seeded"), "{}", again.text);

    // ---- host2: as a user with passwordless sudo; killed half-way, run again -------
    lab.exec_ok(
        "host2",
        "useradd -m -s /bin/sh admin && install -d -m 700 -o admin /home/admin/.ssh \
         && cp /root/.ssh/authorized_keys /home/admin/.ssh/ && chown admin /home/admin/.ssh/authorized_keys \
         && echo 'admin ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/admin && chmod 0440 /etc/sudoers.d/admin",
    )
    .unwrap();
    let state2 = work.path().join("cluster2");
    let killed_at =
        seeder.seed_killed_after(&lab, "host2", &state2, "etcd/health", &["--user", "admin"]);
    eprintln!("seed of host2 killed during {killed_at}");
    let resumed = seeder.seed(&lab, "host2", &state2, &["--user", "admin"]);
    assert!(resumed.ok, "the resumed seed failed:\n{}", resumed.text);
    common::the_seed_works(&lab, "host2", &state2);

    let down = lab.down().unwrap();
    assert!(down.left.is_empty(), "down left: {:?}", down.left);
}

/// Every refusal names the problem and its fix, and the host keeps nothing of
/// kubeseed's.
fn bad_input_changes_nothing(lab: &Lab, seeder: &Seeder, work: &std::path::Path) {
    let state = work.join("refused");
    let host3 = lab.host("host3").unwrap();

    // An address nothing answers on.
    let free = lab.subnet().address(99).to_string();
    let out = seeder.seed_address(&free, &state, &["--identity", seeder.key()]);
    assert!(!out.ok);
    assert!(out.text.contains("cannot reach"), "{}", out.text);

    // A key the host does not authorize.
    let wrong = work.join("wrong_key");
    common::keygen(&wrong);
    let out = seeder.seed(
        lab,
        "host3",
        &state,
        &["--identity", wrong.to_str().unwrap()],
    );
    assert!(!out.ok);
    assert!(out.text.contains("was rejected"), "{}", out.text);

    // A pinned key that is another host's.
    let other = lab.host("host1").unwrap().host_key;
    let out = seeder.seed_pinned(&host3.address.to_string(), &state, &other);
    assert!(!out.ok);
    assert!(out.text.contains("host key mismatch"), "{}", out.text);

    // A user whose sudo wants a password.
    lab.exec_ok(
        "host3",
        "useradd -m -s /bin/sh ops && install -d -m 700 -o ops /home/ops/.ssh \
         && cp /root/.ssh/authorized_keys /home/ops/.ssh/ && chown ops /home/ops/.ssh/authorized_keys \
         && echo 'ops ALL=(ALL) ALL' > /etc/sudoers.d/ops && chmod 0440 /etc/sudoers.d/ops",
    )
    .unwrap();
    let out = seeder.seed(lab, "host3", &state, &["--user", "ops"]);
    assert!(!out.ok);
    assert!(out.text.contains("NOPASSWD"), "{}", out.text);

    // Swap: /proc/swaps is global, so the host is shown one (a bind mount in
    // its own mount namespace) rather than the runner being given swap.
    lab.exec_ok(
        "host3",
        "printf 'Filename Type Size Used Priority\\n/swapfile file 1048572 0 -2\\n' > /run/fake-swaps \
         && mount --bind /run/fake-swaps /proc/swaps",
    )
    .unwrap();
    let out = seeder.seed(lab, "host3", &state, &[]);
    lab.exec_ok("host3", "umount /proc/swaps").unwrap();
    assert!(!out.ok);
    assert!(out.text.contains("swapoff -a"), "{}", out.text);

    // A port taken by someone else.
    lab.exec_ok(
        "host3",
        "systemd-run --unit=squatter socat TCP-LISTEN:2379,fork,reuseaddr /dev/null && sleep 1",
    )
    .unwrap();
    let out = seeder.seed(lab, "host3", &state, &[]);
    lab.exec_ok("host3", "systemctl stop squatter").unwrap();
    assert!(!out.ok);
    assert!(
        out.text.contains("2379") && out.text.contains("socat"),
        "{}",
        out.text
    );

    // A bundle with a corrupted binary, and one with a missing binary.
    let corrupt = common::copy_bundle(&seeder.bundle, &work.join("corrupt"));
    common::flip_a_byte(&corrupt.join("bin/etcd"));
    let out = seeder.seed_with_bundle(lab, "host3", &state, &corrupt);
    assert!(!out.ok);
    assert!(out.text.contains("bin/etcd"), "{}", out.text);
    let missing = common::copy_bundle(&seeder.bundle, &work.join("missing"));
    std::fs::remove_file(missing.join("bin/kubelet")).unwrap();
    let out = seeder.seed_with_bundle(lab, "host3", &state, &missing);
    assert!(!out.ok);
    assert!(out.text.contains("bin/kubelet"), "{}", out.text);

    // etcd data nobody can vouch for, then etcd data of another cluster.
    lab.exec_ok(
        "host3",
        "mkdir -p /var/lib/etcd/member/snap /var/lib/etcd/member/wal && echo other > /var/lib/etcd/member/wal/0.wal",
    )
    .unwrap();
    let out = seeder.seed(lab, "host3", &state, &[]);
    assert!(!out.ok);
    assert!(out.text.contains("unknown origin"), "{}", out.text);
    lab.exec_ok(
        "host3",
        "mkdir -p /var/lib/kubeseed && echo 0123456789abcdef0123456789abcdef > /var/lib/kubeseed/cluster-id",
    )
    .unwrap();
    let out = seeder.seed(lab, "host3", &state, &[]);
    assert!(!out.ok);
    assert!(out.text.contains("another cluster"), "{}", out.text);
    lab.exec_ok("host3", "rm -rf /var/lib/etcd /var/lib/kubeseed")
        .unwrap();

    // Nothing of kubeseed's was left on the host by any of them.
    let left = lab
        .exec_ok(
            "host3",
            "ls -d /var/lib/kubeseed /etc/kubernetes /usr/local/bin/kubelet /etc/systemd/system/etcd.service 2>/dev/null; true",
        )
        .unwrap();
    assert!(left.trim().is_empty(), "refused seeds left {left}");
    // A refused seed of a new cluster records no cluster in the workstation's
    // state, so a later seed is not taken for a resume.
    assert!(!state.join("cluster.json").exists());
}
