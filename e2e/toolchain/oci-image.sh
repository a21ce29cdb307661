#!/usr/bin/env bash
# Packs a directory into a single-layer OCI image archive, reproducibly and
# without a daemon or registry: the same technique as operator/image/build.sh
# (deterministic tar, gzip -n, an OCI layout whose index.json names the image
# with io.containerd.image.name so `ctr images import` tags it).
#
# Usage:  bash e2e/toolchain/oci-image.sh --rootfs DIR --name NAME --out FILE \
#              --entrypoint PATH [--user UID:GID] [--env KEY=VALUE]... [--label KEY=VALUE]...
#              [--epoch SECONDS] [--title TEXT]
#   DIR       what the image holds; every entry in it becomes one layer
#   NAME      full image name, e.g. localhost/kubeseed/pause:3.10.1
#   SECONDS   timestamps in the layer and "created" (default 0): the same
#             DIR always gives the same digests
# Writes FILE via FILE.tmp and a rename, so a killed run leaves no half archive.
set -euo pipefail

usage() { sed -n '2,13p' "$0" >&2; exit 2; }
ROOTFS="" NAME="" OUT="" ENTRYPOINT="" USER_ID="" EPOCH=0 TITLE="" ENVS=() LABELS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rootfs) ROOTFS="$2"; shift 2 ;;
    --name) NAME="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --entrypoint) ENTRYPOINT="$2"; shift 2 ;;
    --user) USER_ID="$2"; shift 2 ;;
    --env) ENVS+=("$2"); shift 2 ;;
    --label) LABELS+=("$2"); shift 2 ;;
    --epoch) EPOCH="$2"; shift 2 ;;
    --title) TITLE="$2"; shift 2 ;;
    -h|--help) usage ;;
    *) echo "oci-image.sh: unknown argument '$1'" >&2; usage ;;
  esac
done
if [[ -z "$ROOTFS" || -z "$NAME" || -z "$OUT" || -z "$ENTRYPOINT" ]]; then
  echo "oci-image.sh: --rootfs, --name, --out and --entrypoint are required" >&2
  usage
fi
if [[ ! -d "$ROOTFS" ]]; then
  echo "oci-image.sh: --rootfs $ROOTFS is not a directory" >&2
  exit 2
fi
if [[ "$NAME" != *:* ]]; then
  echo "oci-image.sh: --name $NAME has no tag (expected e.g. localhost/kubeseed/pause:3.10.1)" >&2
  exit 2
fi
TAG="${NAME##*:}"
TITLE="${TITLE:-$(basename "${NAME%:*}")}"
CREATED="$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
LAYOUT="$WORK/layout"
mkdir -p "$LAYOUT/blobs/sha256"

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

mapfile -t ENTRIES < <(cd "$ROOTFS" && LC_ALL=C ls -A)
if [[ "${#ENTRIES[@]}" -eq 0 ]]; then
  echo "oci-image.sh: $ROOTFS is empty" >&2
  exit 2
fi
det_tar "$WORK/layer.tar" "$ROOTFS" "${ENTRIES[@]}"
DIFF_ID="$(sha "$WORK/layer.tar")"
gzip -n -9 "$WORK/layer.tar"
LAYER_SIZE="$(size "$WORK/layer.tar.gz")"
LAYER="$(blob "$WORK/layer.tar.gz")"

USER_JSON=""
[[ -n "$USER_ID" ]] && USER_JSON="\"User\":\"$USER_ID\","
if [[ "${#ENVS[@]}" -gt 0 ]]; then
  for e in "${ENVS[@]}"; do
    if [[ "$e" != *=* || "$e" == *'"'* || "$e" == *'\'* ]]; then
      echo "oci-image.sh: --env $e is not KEY=VALUE (without quotes or backslashes)" >&2
      exit 2
    fi
  done
  USER_JSON="$USER_JSON\"Env\":[$(printf '"%s",' "${ENVS[@]}" | sed 's/,$//')],"
fi
EXTRA_LABELS=""
if [[ "${#LABELS[@]}" -gt 0 ]]; then
  for l in "${LABELS[@]}"; do
    if [[ "$l" != *=* || "$l" == *'"'* || "$l" == *'\'* ]]; then
      echo "oci-image.sh: --label $l is not KEY=VALUE (without quotes or backslashes)" >&2
      exit 2
    fi
    EXTRA_LABELS="$EXTRA_LABELS,\"${l%%=*}\":\"${l#*=}\""
  done
fi
cat >"$WORK/config.json" <<EOF
{"architecture":"amd64","os":"linux","created":"$CREATED","config":{${USER_JSON}"Entrypoint":["$ENTRYPOINT"],"Labels":{"org.opencontainers.image.title":"$TITLE","org.opencontainers.image.version":"$TAG"$EXTRA_LABELS}},"rootfs":{"type":"layers","diff_ids":["sha256:$DIFF_ID"]},"history":[{"created":"$CREATED","created_by":"e2e/toolchain/oci-image.sh"}]}
EOF
CONFIG_SIZE="$(size "$WORK/config.json")"
CONFIG="$(blob "$WORK/config.json")"

cat >"$WORK/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$CONFIG","size":$CONFIG_SIZE},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$LAYER","size":$LAYER_SIZE}],"annotations":{"org.opencontainers.image.title":"$TITLE","org.opencontainers.image.version":"$TAG","org.opencontainers.image.created":"$CREATED"}}
EOF
MANIFEST_SIZE="$(size "$WORK/manifest.json")"
MANIFEST="$(blob "$WORK/manifest.json")"

# containerd names the imported image after io.containerd.image.name; OCI
# tools use ref.name (the tag), as `docker save` writes both.
cat >"$LAYOUT/index.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$MANIFEST","size":$MANIFEST_SIZE,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"$NAME","org.opencontainers.image.ref.name":"$TAG"}}]}
EOF
printf '{"imageLayoutVersion":"1.0.0"}\n' >"$LAYOUT/oci-layout"

mkdir -p "$(dirname "$OUT")"
det_tar "$OUT.tmp" "$LAYOUT" oci-layout index.json blobs
mv -f "$OUT.tmp" "$OUT"
echo "oci-image.sh: wrote $OUT: $NAME, manifest sha256:$MANIFEST" >&2
