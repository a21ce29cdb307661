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

threads="${KUBESEED_TEST_THREADS:-2}"
echo "== cargo test (all but the lab scenarios)"
cargo test --workspace --locked --exclude kubeseed-e2e -- --test-threads="$threads"
cargo test --locked -p kubeseed-e2e --lib --bins --test cli --test lab -- --test-threads="$threads"

# The scenarios each bring up a lab of their own (own name and subnet).
# They run one after another: run two at once on a 2-core runner and the
# control-plane scenario's apiservers, polled every 200 ms, time out under
# the other lab's load (measured: what it asserts, never two apiservers not
# ready at once, then reads 3), and the benchmarks' figures skew.
echo "== the lab scenarios, one at a time"
built=$(cargo test --locked -p kubeseed-e2e --no-run \
  --test seed --test control_plane --test external_etcd --test seed_bench --test control_plane_bench 2>&1 | tee /dev/stderr)
binary() { printf '%s\n' "$built" | sed -n "s|.*Executable tests/$1\.rs (\(.*\))|\1|p" | tail -n 1; }
run_group() {
  local name status=0
  for name in "$@"; do
    local bin
    bin=$(binary "$name")
    [ -n "$bin" ] || { echo "e2e/test.sh: no test binary for $name" >&2; return 1; }
    bin=$(realpath "$bin")
    echo "== scenario $name"
    # cargo runs a test in its package's directory; so do we.
    (cd e2e && "$bin" --nocapture 2>&1 | sed -u "s/^/[$name] /"; exit "${PIPESTATUS[0]}") || status=1
  done
  return "$status"
}
run_group seed control_plane external_etcd seed_bench control_plane_bench ||
  { echo "e2e/test.sh: a lab scenario failed (see the [name]-prefixed lines above)" >&2; exit 1; }

echo "== operator image: imported and run by a private containerd (built above by bundle.sh)"
bash operator/image/verify.sh
