#!/usr/bin/env bash
# The benchmarks: `bootstrap seed` vs `kubeadm init` vs the same units by
# hand, a master joined by the operator vs by hand with the operator's memory
# idle, during joins and with 100 members, one worker vs four at once, and
# SSH transfer vs OpenSSH; then the report (`cargo run -p kubeseed-e2e --bin
# report`): one Markdown table of every figure beside its reference from the
# same run, with JSON beside it (target/bench/report.json). Against the release
# operator image (what users install), so they are not part of the tests
# (e2e/test.sh), which reuse the debug build.
#
# Needs root, like e2e/test.sh. About 20 min with the caches warm.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "e2e/bench.sh: the benchmarks bring up lab hosts; run it with sudo" >&2
  exit 2
fi

bash e2e/install-packages.sh
last_value() { printf '%s\n' "$2" | sed -n "s/^$1=//p" | tail -n 1; }

toolchain_out=$(bash e2e/toolchain/build.sh | tee /dev/stderr)
KUBESEED_TOOLCHAIN=$(last_value KUBESEED_TOOLCHAIN "$toolchain_out")
bundle_out=$(bash e2e/toolchain/bundle.sh | tee /dev/stderr)
KUBESEED_BUNDLE=$(last_value KUBESEED_BUNDLE "$bundle_out")
images_out=$(bash e2e/toolchain/kubeadm-images.sh | tee /dev/stderr)
KUBEADM_IMAGES=$(last_value KUBEADM_IMAGES "$images_out")
export KUBESEED_TOOLCHAIN KUBESEED_BUNDLE KUBEADM_IMAGES

cargo build --locked -p kubeseed-bootstrap
for bench in seed_bench control_plane_bench workers_bench; do
  echo "== $bench"
  cargo test --locked -p kubeseed-e2e --test "$bench" -- --nocapture
done
echo "== SSH transfer vs OpenSSH scp/sftp"
cargo bench --locked -p kubeseed-provision --bench transfer
echo "== the report (VIP failover figures come from the control-plane scenario's last run)"
cargo run --locked -q -p kubeseed-e2e --bin report
