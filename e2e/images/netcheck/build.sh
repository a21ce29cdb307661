#!/usr/bin/env bash
# Builds the netcheck image (the lab's workload, see main.go) as an OCI archive
# that `ctr images import` accepts: a static Go program, one layer, non-root.
# Cached by the hash of its sources and the Go version, so a second call is
# instant.
#
# Usage:   bash e2e/images/netcheck/build.sh
# Output:  the last stdout line is  KUBESEED_NETCHECK_IMAGE=<archive> <image name>
set -euo pipefail

DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KUBESEED_CACHE="${KUBESEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeseed}"
export GOMODCACHE="${GOMODCACHE:-$KUBESEED_CACHE/go/mod}" GOCACHE="${GOCACHE:-$KUBESEED_CACHE/go/build}"
# Nothing may be downloaded: not another Go, not a module (it has none).
export GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0

if ! command -v go >/dev/null; then
  echo "netcheck/build.sh: needs Go (bash e2e/install-packages.sh installs it)" >&2
  exit 2
fi
KEY="$( (cat "$DIR/go.mod" "$DIR/main.go" "$DIR/build.sh"; go env GOVERSION GOARCH) | sha256sum | cut -c1-12)"
NAME="localhost/kubeseed/netcheck:$KEY"
OUT="$KUBESEED_CACHE/images/netcheck-$KEY.oci.tar"
if [[ ! -f "$OUT" ]]; then
  mkdir -p "$(dirname "$OUT")"
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  mkdir "$WORK/rootfs"
  (cd "$DIR" && go build -trimpath -ldflags "-s -w" -o "$WORK/rootfs/netcheck" .)
  chmod 0755 "$WORK/rootfs/netcheck"
  bash "$DIR/../../toolchain/oci-image.sh" --rootfs "$WORK/rootfs" --name "$NAME" \
    --out "$OUT" --entrypoint /netcheck --user 65532:65532 --title netcheck >&2
fi
echo "KUBESEED_NETCHECK_IMAGE=$OUT $NAME"
