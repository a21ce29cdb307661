#!/usr/bin/env bash
# Proves the OCI archive from build.sh is an image containerd accepts and can
# run: starts a private containerd (temporary root, state and socket; stopped by
# its PID on exit), `ctr images import`s the archive, checks the name and
# platform, and runs `kubeseed-operator --version` in a container as the
# image's non-root user.
#
# Usage:   bash operator/image/verify.sh [ARCHIVE]
# Needs:   containerd, ctr and runc (Debian: apt-get install containerd).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ARCHIVE="${1:-$ROOT/target/image/kubeseed-operator.oci.tar}"
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)"
IMAGE="${IMAGE_NAME:-localhost/kubeseed-operator:$VERSION}"
NS=kubeseed-verify
PASSED=0 FAILED=0

for p in containerd ctr runc; do
  command -v "$p" >/dev/null || { echo "image/verify.sh: $p not found (apt-get install containerd)" >&2; exit 2; }
done
[[ -f "$ARCHIVE" ]] || { echo "image/verify.sh: $ARCHIVE missing; run operator/image/build.sh" >&2; exit 2; }

TMP="$(mktemp -d)"
CPID=""
cleanup() {
  if [[ -n "$CPID" ]] && kill -0 "$CPID" 2>/dev/null; then
    kill -TERM "$CPID"
    for _ in $(seq 50); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$CPID" 2>/dev/null && kill -KILL "$CPID"
    wait "$CPID" 2>/dev/null || true
  fi
  # Snapshots of the native snapshotter are plain directories; mounts are gone
  # with the container.
  rm -rf "$TMP"
}
trap cleanup EXIT

SOCK="$TMP/containerd.sock"
cat >"$TMP/config.toml" <<EOF
version = 2
root = "$TMP/root"
state = "$TMP/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$TMP/opt"
EOF
containerd --config "$TMP/config.toml" >"$TMP/containerd.log" 2>&1 &
CPID=$!
for _ in $(seq 100); do [[ -S "$SOCK" ]] && break; sleep 0.1; done
[[ -S "$SOCK" ]] || { cat "$TMP/containerd.log" >&2; echo "image/verify.sh: containerd did not start" >&2; exit 1; }
ctr_() { ctr --address "$SOCK" --namespace "$NS" "$@"; }

check() { # check NAME COMMAND...
  local name="$1"; shift
  if out="$("$@" 2>&1)"; then
    echo "ok   $name"; PASSED=$((PASSED + 1))
  else
    echo "FAIL $name"; printf '%s\n' "$out" | sed 's/^/     /'; FAILED=$((FAILED + 1))
  fi
}

check "ctr images import" ctr_ images import --snapshotter native "$ARCHIVE"
check "image is named $IMAGE" bash -c "ctr --address '$SOCK' --namespace $NS images ls -q | grep -qx '$IMAGE'"
check "image is linux/amd64" bash -c "ctr --address '$SOCK' --namespace $NS images ls | grep -F '$IMAGE' | grep -q 'linux/amd64'"
check "content verifies" ctr_ images check
run_version() {
  local out
  out="$(ctr_ run --rm --snapshotter native "$IMAGE" "verify-$$" /usr/local/bin/kubeseed-operator --version)"
  echo "$out"
  [[ "$out" == "kubeseed-operator $VERSION" ]]
}
check "runs: kubeseed-operator --version" run_version
config_user() {
  # The image config names the non-root user the chart's securityContext expects.
  local cfg
  cfg="$(ctr_ images ls | awk -v i="$IMAGE" '$1 == i {print $3}')"
  ctr_ content get "$(ctr_ content get "$cfg" | sed -n 's/.*"config":{[^}]*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p')" | grep -q '"User":"65532:65532"'
}
check "image config runs as 65532:65532" config_user

echo "image/verify.sh: $PASSED passed, $FAILED failed"
[[ "$FAILED" == 0 ]]
