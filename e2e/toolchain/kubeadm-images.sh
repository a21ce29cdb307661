#!/usr/bin/env bash
# The images `kubeadm init` runs its control plane from, built locally from the
# toolchain's own binaries (nothing can be pulled here): single-binary OCI
# archives tagged as `kubeadm config images list` names them. Only the seed
# benchmark uses them, to compare `bootstrap seed` with `kubeadm init` on the
# same binaries.
#
# Usage:  bash e2e/toolchain/kubeadm-images.sh
# Output: the last stdout line is  KUBEADM_IMAGES=<dir>  holding one
#         <name>.oci.tar per image and images.txt ("<archive> <image>" lines).
set -euo pipefail
{
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
toolchain_out=$(bash "$HERE/build.sh")
BIN=$(printf '%s\n' "$toolchain_out" | sed -n 's/^KUBESEED_TOOLCHAIN=//p' | tail -n 1)
KUBESEED_CACHE="${KUBESEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeseed}"
K8S_VERSION="$(sed -n 's/^K8S_VERSION=//p' "$BIN/versions.env")"
OUT="$KUBESEED_CACHE/kubeadm-images/$K8S_VERSION-$(sha256sum "$BIN/SHA256SUMS" | cut -c1-12)"
log() { printf '%s kubeadm-images.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if [[ -f "$OUT/images.txt" ]]; then
  echo "KUBEADM_IMAGES=$OUT"
  exit 0
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/out"
: > "$WORK/out/images.txt"
PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# image NAME FILE PROGRAM...: the programs under /usr/local/bin, the first
# one the entrypoint (kubeadm's manifests give the command anyway).
image() {
  local name="$1" file="$2"; shift 2
  local root="$WORK/root-$file"
  mkdir -p "$root/usr/local/bin"
  for p in "$@"; do cp "$BIN/$p" "$root/usr/local/bin/$p"; done
  bash "$HERE/oci-image.sh" --rootfs "$root" --name "$name" --out "$WORK/out/$file.oci.tar" \
    --entrypoint "/usr/local/bin/$1" --env "$PATH_ENV" >/dev/null
  echo "$file.oci.tar $name" >> "$WORK/out/images.txt"
  log "$name"
}

mapfile -t WANTED < <("$BIN/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null)
for ref in "${WANTED[@]}"; do
  case "$ref" in
    */kube-apiserver:*) image "$ref" kube-apiserver kube-apiserver ;;
    */kube-controller-manager:*) image "$ref" kube-controller-manager kube-controller-manager ;;
    */kube-scheduler:*) image "$ref" kube-scheduler kube-scheduler ;;
    */kube-proxy:*) image "$ref" kube-proxy kube-proxy ;;
    # kubeadm pins its own etcd tag; the toolchain's etcd is run under it.
    */etcd:*) image "$ref" etcd etcd etcdctl ;;
    */pause:*)
      # The toolchain's pause image, re-tagged: one archive per name.
      mkdir -p "$WORK/pause" && tar -xf "$BIN/pause.oci.tar" -C "$WORK/pause"
      root="$WORK/root-pause"; mkdir -p "$root"
      layer="$(find "$WORK/pause/blobs/sha256" -type f -size +100k | head -n 1)"
      tar -xzf "$layer" -C "$root"
      bash "$HERE/oci-image.sh" --rootfs "$root" --name "$ref" --out "$WORK/out/pause.oci.tar" \
        --entrypoint /pause --user 65535:65535 >/dev/null
      echo "pause.oci.tar $ref" >> "$WORK/out/images.txt"
      log "$ref" ;;
    *) log "skipping $ref (the benchmark skips the addons)" ;;
  esac
done
mkdir -p "$(dirname "$OUT")"
rm -rf "$OUT.tmp" && mv "$WORK/out" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
echo "KUBEADM_IMAGES=$OUT"
}
