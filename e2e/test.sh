#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh Debian
# machine (idempotent, fast when everything is there), builds or reuses the
# cached Kubernetes/etcd/helm toolchain, then runs every test suite.
#
# Needs root (the SSH tests create local users, the lab creates network
# namespaces and systemd-nspawn machines).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "e2e/test.sh: the tests need root (they start sshd, create test users and lab hosts); run it with sudo" >&2
  exit 2
fi

bash e2e/install-packages.sh

# last_value NAME OUTPUT: the value of the last NAME=... line a script printed.
last_value() { printf '%s\n' "$2" | sed -n "s/^$1=//p" | tail -n 1; }

echo "== toolchain (Kubernetes, etcd, helm, containerd, runc, CNI plugins, kubeadm) from Go modules, cached"
toolchain_out=$(bash e2e/toolchain/build.sh | tee /dev/stderr)
KUBESEED_TOOLCHAIN=$(last_value KUBESEED_TOOLCHAIN "$toolchain_out")
export KUBESEED_TOOLCHAIN

echo "== the bundle a seed installs from (toolchain + operator image + chart), cached by content"
bundle_out=$(bash e2e/toolchain/bundle.sh | tee /dev/stderr)
KUBESEED_BUNDLE=$(last_value KUBESEED_BUNDLE "$bundle_out")
export KUBESEED_BUNDLE

echo "== kubeadm's control-plane images, for the seed benchmark's reference"
images_out=$(bash e2e/toolchain/kubeadm-images.sh | tee /dev/stderr)
KUBEADM_IMAGES=$(last_value KUBEADM_IMAGES "$images_out")
export KUBEADM_IMAGES

echo "== the bootstrap binary the lab scenarios run"
cargo build --locked -p kubeseed-bootstrap

echo "== cargo test"
cargo test --workspace --locked -- --test-threads="${KUBESEED_TEST_THREADS:-2}"

echo "== operator image: imported and run by a private containerd (built above by bundle.sh)"
bash operator/image/verify.sh
