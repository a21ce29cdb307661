#!/usr/bin/env bash
# One seeded host on one Linux box (e2e/demo.sh builds the whole story on
# it): build (or reuse) the bundle, bring up a lab of real hosts
# (systemd-nspawn machines) unless it is up, and seed its first host with
# `bootstrap seed`, as a user would seed a real machine.
#
# Usage:   bash e2e/seed-lab.sh [HOSTS]        (default 3 hosts; needs root)
# Env:     KUBESEED_LAB_NAME (default kslab), KUBESEED_LAB_SUBNET (default
#          10.213.0.0/24), KUBESEED_CACHE; extra `bootstrap seed` flags in
#          KUBESEED_SEED_ARGS (e.g. "--dry-run"); KUBESEED_BUNDLE to seed from
#          a bundle you already have instead of building or reusing the cached one.
# Output:  the seed's progress, then where the admin kubeconfig is and what
#          to try next. Remove everything with: cargo run -p kubeseed-e2e --bin lab -- down
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "e2e/seed-lab.sh: the lab needs root (network namespaces, systemd-nspawn); run it with sudo" >&2
  exit 2
fi
hosts="${1:-3}"
name="${KUBESEED_LAB_NAME:-kslab}"
export KUBESEED_LAB_NAME="$name"

if [ -n "${KUBESEED_BUNDLE:-}" ]; then
  echo "== the bundle: $KUBESEED_BUNDLE (KUBESEED_BUNDLE)" >&2
  bundle="$KUBESEED_BUNDLE"
else
  echo "== the bundle (toolchain from Go modules, operator image, chart); first time ~40-60 min on 2 cores, then seconds" >&2
  bundle_out=$(bash e2e/toolchain/bundle.sh)
  bundle=$(printf '%s\n' "$bundle_out" | sed -n 's/^KUBESEED_BUNDLE=//p' | tail -n 1)
fi

echo "== building the lab and bootstrap commands" >&2
cargo build --locked -q -p kubeseed-e2e --bin lab -p kubeseed-bootstrap --bin bootstrap
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
lab="$target_dir/debug/lab"
bootstrap="$target_dir/debug/bootstrap"

if ! "$lab" status >/dev/null 2>&1; then
  echo "== lab $name: $hosts hosts" >&2
  "$lab" up "$hosts" --detach >&2
fi
address=$("$lab" status --json | sed -n 's/.*"hosts":\[{"address":"\([0-9.]*\)".*/\1/p')
dir="${KUBESEED_LAB_DIR:-/var/lib/kubeseed-lab}/$name"

echo "== bootstrap seed $address" >&2
# The lab's key logs in as root and is the operator's key too (a real user
# gives the operator a key of its own); known_hosts pins every lab host.
# shellcheck disable=SC2086
exec "$bootstrap" seed "$address" \
  --identity "$dir/id_ed25519" --known-hosts "$dir/known_hosts" \
  --operator-ssh-key "$dir/id_ed25519" --bundle "$bundle" ${KUBESEED_SEED_ARGS:-}
