#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh Debian
# machine (idempotent, fast when everything is there), builds or reuses the
# cached Kubernetes/etcd/helm toolchain, then runs every test suite.
#
# Needs root (the SSH tests create local users, the lab creates network
# namespaces and systemd-nspawn machines).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step says when it began (UTC), so a run's log shows where its time went.
step() { echo "== [$(date -u +%H:%M:%S)] $*"; }

if [ "$(id -u)" != 0 ]; then
  echo "e2e/test.sh: the tests need root (they start sshd, create test users and lab hosts); run it with sudo" >&2
  exit 2
fi

bash e2e/install-packages.sh

# last_value NAME OUTPUT: the value of the last NAME=... line a script printed.
last_value() { printf '%s\n' "$2" | sed -n "s/^$1=//p" | tail -n 1; }

# One debug build serves the suites, the lab scenarios and the operator image
# they install: the image takes this build's binary with its shared libraries
# (operator/image/build.sh --binary) instead of a static release build of its
# own, which would cost a cold run ~10 min more. Published images and the
# benchmarks (e2e/bench.sh) use the release build. It compiles while the
# toolchain builds from Go modules in the background: each fills the other's
# single-threaded stretches.
step "toolchain (Kubernetes, etcd, helm, containerd, runc, CNI plugins, kubeadm) from Go modules, cached: in the background"
toolchain_log=$(mktemp)
bash e2e/toolchain/build.sh >"$toolchain_log" 2>&1 &
toolchain_pid=$!
step "the programs the lab scenarios run: bootstrap and the operator (debug build)"
cargo build --locked -p kubeseed-bootstrap -p kubeseed-operator
if ! wait "$toolchain_pid"; then
  cat "$toolchain_log" >&2
  echo "e2e/test.sh: the toolchain build failed (its output is above)" >&2
  exit 1
fi
cat "$toolchain_log" >&2
rm -f "$toolchain_log"
toolchain_out=$(bash e2e/toolchain/build.sh)
KUBESEED_TOOLCHAIN=$(last_value KUBESEED_TOOLCHAIN "$toolchain_out")
export KUBESEED_TOOLCHAIN
target_dir=$(cargo metadata --format-version 1 --no-deps --locked | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
image="$target_dir/image/kubeseed-operator-debug.oci.tar"
image_out=$(bash operator/image/build.sh --binary "$target_dir/debug/kubeseed-operator" "$image" | tee /dev/stderr)
image_line=$(last_value KUBESEED_OPERATOR_IMAGE "$image_out")

step "the bundle a seed installs from (toolchain + that operator image + chart), cached by content"
# shellcheck disable=SC2086 # "PATH NAME": two arguments
bundle_out=$(bash e2e/toolchain/bundle.sh --operator-image $image_line | tee /dev/stderr)
KUBESEED_BUNDLE=$(last_value KUBESEED_BUNDLE "$bundle_out")
export KUBESEED_BUNDLE

threads="${KUBESEED_TEST_THREADS:-2}"
step "cargo test (all but the lab scenarios)"
cargo test --workspace --locked --exclude kubeseed-e2e -- --test-threads="$threads"
cargo test --locked -p kubeseed-e2e --lib --bins --test cli --test lab -- --test-threads="$threads"

# The scenarios each bring up a lab of their own (own name and subnet).
# They run one after another: run two at once on a 2-core runner and the
# control-plane scenario's apiservers, polled every 200 ms, time out under
# the other lab's load (measured: what it asserts, never two apiservers not
# ready at once, then reads 3), and the benchmarks' figures skew.
step "the lab scenarios, one at a time"
built=$(cargo test --locked -p kubeseed-e2e --no-run \
  --test seed --test workers --test control_plane --test external_etcd 2>&1 | tee /dev/stderr)
binary() { printf '%s\n' "$built" | sed -n "s|.*Executable tests/$1\.rs (\(.*\))|\1|p" | tail -n 1; }
run_group() {
  local name status=0
  for name in "$@"; do
    local bin
    bin=$(binary "$name")
    [ -n "$bin" ] || { echo "e2e/test.sh: no test binary for $name" >&2; return 1; }
    bin=$(realpath "$bin")
    step "scenario $name"
    # cargo runs a test in its package's directory; so do we.
    (cd e2e && "$bin" --nocapture 2>&1 | sed -u "s/^/[$name] /"; exit "${PIPESTATUS[0]}") || status=1
  done
  return "$status"
}
# The benchmarks (seed vs kubeadm, joins vs by hand, operator memory) are
# not tests: `bash e2e/bench.sh` runs them against the release image.
run_group seed workers control_plane external_etcd ||
  { echo "e2e/test.sh: a lab scenario failed (see the [name]-prefixed lines above)" >&2; exit 1; }

step "operator image: imported and run by a private containerd (built above)"
bash operator/image/verify.sh "$image"
step "all suites passed"
