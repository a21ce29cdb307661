#!/usr/bin/env bash
# Builds the kubeseed-operator container image offline: no registry, no
# daemon, no base image. The operator is linked statically (glibc, crt-static),
# so the image is one layer holding the binary and an /etc/passwd for its
# non-root user, assembled here as an OCI image layout and packed into a tar
# that `ctr images import`, `podman load` and `skopeo copy oci-archive:` accept.
#
# Usage:   bash operator/image/build.sh [OUTPUT]
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
OUT="${1:-$ROOT/target/image/kubeseed-operator.oci.tar}"
EPOCH="${SOURCE_DATE_EPOCH:-0}"
CREATED="$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

log() { printf '%s image/build.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# --- the binary ---------------------------------------------------------------
# An explicit --target keeps RUSTFLAGS away from build scripts and proc macros
# and puts the result in its own directory, so the workspace's debug build is
# not invalidated.
log "building kubeseed-operator $VERSION (release, static)"
(cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --release --locked --target "$TARGET" -p kubeseed-operator)
BIN="$TARGET_DIR/$TARGET/release/kubeseed-operator"
if readelf -l "$BIN" | grep -q 'INTERP' || readelf -d "$BIN" | grep -q 'NEEDED'; then
  echo "image/build.sh: $BIN is dynamically linked; an empty image cannot run it" >&2
  readelf -d "$BIN" | grep NEEDED >&2 || true
  exit 1
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs" LAYOUT="$WORK/layout"
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/etc" "$LAYOUT/blobs/sha256"

# --- the root file system -----------------------------------------------------
# Symbols and debug info are a dozen MiB nobody needs in the image.
strip --strip-all -o "$ROOTFS/usr/local/bin/kubeseed-operator" "$BIN"
chmod 0755 "$ROOTFS/usr/local/bin/kubeseed-operator"
# 65532 is the conventional "nonroot" user of distroless images; the chart's
# securityContext runs as it.
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$ROOTFS/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$ROOTFS/etc/group"
chmod 0644 "$ROOTFS/etc/passwd" "$ROOTFS/etc/group"

# Reproducible tar: sorted names, fixed owner and times, no atime/ctime.
det_tar() { # det_tar OUT DIR NAMES...
  local out="$1" dir="$2"; shift 2
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" \
    --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$dir" -cf "$out" "$@"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
blob() { # blob FILE -> moves FILE into blobs/, prints its digest
  local d; d="$(sha "$1")"
  mv "$1" "$LAYOUT/blobs/sha256/$d"
  echo "$d"
}

det_tar "$WORK/layer.tar" "$ROOTFS" etc usr
DIFF_ID="$(sha "$WORK/layer.tar")"
gzip -n -9 "$WORK/layer.tar"
LAYER_SIZE="$(size "$WORK/layer.tar.gz")"
LAYER="$(blob "$WORK/layer.tar.gz")"

cat >"$WORK/config.json" <<EOF
{"architecture":"amd64","os":"linux","created":"$CREATED","config":{"User":"65532:65532","Entrypoint":["/usr/local/bin/kubeseed-operator"],"Env":["PATH=/usr/local/bin"],"Labels":{"org.opencontainers.image.title":"kubeseed-operator","org.opencontainers.image.version":"$VERSION","org.opencontainers.image.licenses":"Apache-2.0"}},"rootfs":{"type":"layers","diff_ids":["sha256:$DIFF_ID"]},"history":[{"created":"$CREATED","created_by":"operator/image/build.sh"}]}
EOF
CONFIG_SIZE="$(size "$WORK/config.json")"
CONFIG="$(blob "$WORK/config.json")"

cat >"$WORK/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$CONFIG","size":$CONFIG_SIZE},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$LAYER","size":$LAYER_SIZE}],"annotations":{"org.opencontainers.image.title":"kubeseed-operator","org.opencontainers.image.version":"$VERSION","org.opencontainers.image.created":"$CREATED"}}
EOF
MANIFEST_SIZE="$(size "$WORK/manifest.json")"
MANIFEST="$(blob "$WORK/manifest.json")"

# containerd names the imported image after io.containerd.image.name; OCI
# tools use ref.name (the tag), as `docker save` writes both.
cat >"$LAYOUT/index.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$MANIFEST","size":$MANIFEST_SIZE,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"$IMAGE_NAME","org.opencontainers.image.ref.name":"${IMAGE_NAME##*:}"}}]}
EOF
printf '{"imageLayoutVersion":"1.0.0"}\n' >"$LAYOUT/oci-layout"

mkdir -p "$(dirname "$OUT")"
det_tar "$OUT.tmp" "$LAYOUT" oci-layout index.json blobs
mv -f "$OUT.tmp" "$OUT"
log "wrote $OUT ($(du -h "$OUT" | cut -f1)): $IMAGE_NAME, manifest sha256:$MANIFEST"
echo "KUBESEED_OPERATOR_IMAGE=$OUT $IMAGE_NAME"
