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

echo "== toolchain (kube-apiserver, etcd, kubectl, helm) from Go modules, cached"
toolchain_out=$(bash e2e/toolchain/build.sh | tee /dev/stderr)
KUBESEED_TOOLCHAIN=$(printf '%s\n' "$toolchain_out" | sed -n 's/^KUBESEED_TOOLCHAIN=//p' | tail -n 1)
export KUBESEED_TOOLCHAIN

echo "== cargo test"
cargo test --workspace --locked -- --test-threads="${KUBESEED_TEST_THREADS:-2}"

echo "== operator image: built offline as an OCI archive, imported and run by a private containerd"
bash operator/image/build.sh
bash operator/image/verify.sh
