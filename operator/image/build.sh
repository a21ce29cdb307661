#!/usr/bin/env bash
# Builds the kubeseed-operator container image offline: no registry, no
# daemon, no base image. The operator is linked statically (glibc, crt-static),
# so the image is one layer holding the binary and an /etc/passwd for its
# non-root user, assembled here as an OCI image layout and packed into a tar
# that `ctr images import`, `podman load` and `skopeo copy oci-archive:` accept.
#
# Usage:   bash operator/image/build.sh [--binary PATH] [OUTPUT]
#   --binary  put this already-built kubeseed-operator in the image instead of
#             building the static release binary; a dynamically linked one
#             (the tests' debug build, which CI reuses to save a ~10 min
#             release build) brings the shared libraries `ldd` names and the
#             loader, copied from this machine
# Output:  OUTPUT (default target/image/kubeseed-operator.oci.tar); the last
#          stdout line is  KUBESEED_OPERATOR_IMAGE=<path> <image name>
# Env:     SOURCE_DATE_EPOCH  timestamps inside the image (default: 0), so the
#                             same binary always gives the same digests.
#          IMAGE_NAME         default localhost/kubeseed-operator:<version>
#          CARGO_TARGET_DIR   as cargo uses it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TARGET=x86_64-unknown-linux-gnu
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)"
IMAGE_NAME="${IMAGE_NAME:-localhost/kubeseed-operator:$VERSION}"
GIVEN_BIN=""
if [[ "${1:-}" == "--binary" ]]; then
  [[ -n "${2:-}" && -f "$2" ]] || { echo "image/build.sh: --binary needs an existing file (got '${2:-}')" >&2; exit 2; }
  GIVEN_BIN="$(realpath "$2")"
  shift 2
fi
OUT="${1:-$ROOT/target/image/kubeseed-operator.oci.tar}"
EPOCH="${SOURCE_DATE_EPOCH:-0}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

log() { printf '%s image/build.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# --- the binary ---------------------------------------------------------------
# An explicit --target keeps RUSTFLAGS away from build scripts and proc macros
# and puts the result in its own directory, so the workspace's debug build is
# not invalidated.
if [[ -n "$GIVEN_BIN" ]]; then
  BIN="$GIVEN_BIN"
  log "using $BIN"
else
  log "building kubeseed-operator $VERSION (release, static)"
  (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target "$TARGET" -p kubeseed-operator)
  BIN="$TARGET_DIR/$TARGET/release/kubeseed-operator"
  if readelf -l "$BIN" | grep -q 'INTERP' || readelf -d "$BIN" | grep -q 'NEEDED'; then
    echo "image/build.sh: $BIN is dynamically linked; an empty image cannot run it" >&2
    readelf -d "$BIN" | grep NEEDED >&2 || true
    exit 1
  fi
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/etc"

# --- the root file system -----------------------------------------------------
# Symbols and debug info are a dozen MiB nobody needs in the image.
strip --strip-all -o "$ROOTFS/usr/local/bin/kubeseed-operator" "$BIN"
chmod 0755 "$ROOTFS/usr/local/bin/kubeseed-operator"
# A dynamically linked binary: its libraries and loader, at the paths it
# names (glibc's loader also looks in the standard directories).
if readelf -l "$BIN" | grep -q 'INTERP'; then
  interp="$(readelf -l "$BIN" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')"
  libs="$(ldd "$BIN" | awk '/=> \// {print $3}')"
  for lib in $interp $libs; do
    mkdir -p "$ROOTFS$(dirname "$lib")"
    cp -L "$lib" "$ROOTFS$lib"
    chmod 0755 "$ROOTFS$lib"
  done
  log "dynamic binary: added $(printf '%s\n' $interp $libs | wc -l) libraries from this machine"
fi
# 65532 is the conventional "nonroot" user of distroless images; the chart's
# securityContext runs as it.
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$ROOTFS/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ROOTFS/etc/group"
chmod 0644 "$ROOTFS/etc/passwd" "$ROOTFS/etc/group"

# One layer, reproducible, assembled without a daemon: the same packer the
# toolchain's images use.
mkdir -p "$(dirname "$OUT")"
bash "$ROOT/e2e/toolchain/oci-image.sh" --rootfs "$ROOTFS" --name "$IMAGE_NAME" --out "$OUT" \
  --entrypoint /usr/local/bin/kubeseed-operator --user 65532:65532 --env PATH=/usr/local/bin \
  --label org.opencontainers.image.licenses=Apache-2.0 --title kubeseed-operator --epoch "$EPOCH"
log "wrote $OUT ($(du -h "$OUT" | cut -f1)): $IMAGE_NAME"
echo "KUBESEED_OPERATOR_IMAGE=$OUT $IMAGE_NAME"
