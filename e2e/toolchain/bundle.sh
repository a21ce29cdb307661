#!/usr/bin/env bash
# Assembles the artifact bundle a seed installs from: the toolchain's programs,
# the CNI plugins, the pause, CoreDNS and operator images and the Helm chart, with a
# SHA256SUMS manifest, in a directory named after that manifest's hash.
#
# Usage:   bash e2e/toolchain/bundle.sh [--operator-image PATH NAME] [--verify]
#   --operator-image  use this OCI archive (image NAME, e.g.
#                     localhost/kubeseed-operator:0.1.0) instead of building it
#                     with operator/image/build.sh (a cargo release build)
#   --verify          re-hash every file of the bundle (sha256sum -c)
# Output:  the last stdout line is  KUBESEED_BUNDLE=<dir>  (logs go to stderr)
#
# Layout of <dir> = ${KUBESEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeseed}/bundle/<key>/
# (other code depends on it; <key> = first 16 hex of sha256(SHA256SUMS)):
#   SHA256SUMS   "<hex>  <relative path>" for every file below, sorted by path
#   VERSIONS     KUBERNETES_VERSION ETCD_VERSION CONTAINERD_VERSION RUNC_VERSION
#                CNI_PLUGINS_VERSION HELM_VERSION PAUSE_IMAGE COREDNS_IMAGE
#                OPERATOR_IMAGE OPERATOR_VERSION, as KEY=VALUE lines
#   bin/         kube-apiserver kube-controller-manager kube-scheduler kubelet
#                kube-proxy kubectl etcd etcdctl helm containerd
#                containerd-shim-runc-v2 ctr runc
#   cni/         bridge host-local loopback portmap
#   images/      pause.oci.tar coredns.oci.tar kubeseed-operator.oci.tar
#   charts/kubeseed/  a copy of the repository's chart
# A bundle never changes once renamed into place: identical inputs give the
# same key and the existing directory is reused; different inputs give a new one.
set -euo pipefail

{

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OPERATOR_IMAGE_PATH="" OPERATOR_IMAGE="" VERIFY=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --operator-image)
      if [[ $# -lt 3 ]]; then
        echo "bundle.sh: --operator-image needs PATH and NAME (e.g. --operator-image target/image/kubeseed-operator.oci.tar localhost/kubeseed-operator:0.1.0)" >&2
        exit 2
      fi
      OPERATOR_IMAGE_PATH="$2" OPERATOR_IMAGE="$3"; shift 3 ;;
    --verify) VERIFY=1; shift ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) echo "bundle.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

KUBESEED_CACHE="${KUBESEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeseed}"
BUNDLES="$KUBESEED_CACHE/bundle"
# Programs the bundle takes from the toolchain's bin directory: helm is Helm 4;
# kubeadm (a benchmark's reference) and helm3 stay out.
BIN_PROGRAMS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl
              etcd etcdctl helm containerd containerd-shim-runc-v2 ctr runc)
CNI_PLUGINS=(bridge host-local loopback portmap)

log() { printf '%s bundle.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
T0=$(date +%s%N)
elapsed() { local ms=$(( ($(date +%s%N) - T0) / 1000000 )); printf '%d.%02ds' $((ms / 1000)) $((ms % 1000 / 10)); }

mkdir -p "$BUNDLES"
# One assembly at a time: operator/image/build.sh writes a fixed output path,
# and two identical assemblies would race for the same final name.
exec 9>"$BUNDLES/.lock"
if ! flock -n 9; then
  log "another bundle.sh holds $BUNDLES/.lock; waiting for it"
  flock 9
fi

# ---- inputs ----------------------------------------------------------------
# build.sh returns at once when the toolchain is complete.
TC_OUT="$(bash "$REPO/e2e/toolchain/build.sh")"
TC="${TC_OUT##*KUBESEED_TOOLCHAIN=}"
if [[ "$TC_OUT" != *KUBESEED_TOOLCHAIN=* || ! -f "$TC/SHA256SUMS" || ! -f "$TC/versions.env" ]]; then
  echo "bundle.sh: e2e/toolchain/build.sh did not name a finished toolchain (got: ${TC_OUT##*$'\n'})" >&2
  exit 1
fi

if [[ -z "$OPERATOR_IMAGE_PATH" ]]; then
  OP_OUT="$(bash "$REPO/operator/image/build.sh")"
  OP_LINE="${OP_OUT##*KUBESEED_OPERATOR_IMAGE=}"
  if [[ "$OP_OUT" != *KUBESEED_OPERATOR_IMAGE=* || "$OP_LINE" != *" "* ]]; then
    echo "bundle.sh: operator/image/build.sh did not print 'KUBESEED_OPERATOR_IMAGE=<path> <name>' (got: ${OP_OUT##*$'\n'})" >&2
    exit 1
  fi
  OPERATOR_IMAGE_PATH="${OP_LINE%% *}" OPERATOR_IMAGE="${OP_LINE#* }"
fi
if [[ ! -f "$OPERATOR_IMAGE_PATH" ]]; then
  echo "bundle.sh: operator image archive $OPERATOR_IMAGE_PATH does not exist (build it: bash operator/image/build.sh)" >&2
  exit 1
fi
if [[ "$OPERATOR_IMAGE" != *:* ]]; then
  echo "bundle.sh: operator image name '$OPERATOR_IMAGE' has no tag (expected e.g. localhost/kubeseed-operator:0.1.0)" >&2
  exit 1
fi
OPERATOR_VERSION="${OPERATOR_IMAGE##*:}"

# versions.env is KEY=VALUE lines written by build.sh; read, never sourced.
declare -A TC_VERSION
while IFS='=' read -r k v; do
  [[ -n "$k" ]] && TC_VERSION["$k"]="$v"
done <"$TC/versions.env"
for k in K8S_VERSION ETCD_VERSION CONTAINERD_VERSION RUNC_VERSION CNI_PLUGINS_VERSION HELM4_VERSION PAUSE_IMAGE COREDNS_IMAGE; do
  if [[ -z "${TC_VERSION[$k]:-}" ]]; then
    echo "bundle.sh: $TC/versions.env has no $k; re-run bash e2e/toolchain/build.sh" >&2
    exit 1
  fi
done
VERSIONS="KUBERNETES_VERSION=${TC_VERSION[K8S_VERSION]}
ETCD_VERSION=${TC_VERSION[ETCD_VERSION]}
CONTAINERD_VERSION=${TC_VERSION[CONTAINERD_VERSION]}
RUNC_VERSION=${TC_VERSION[RUNC_VERSION]}
CNI_PLUGINS_VERSION=${TC_VERSION[CNI_PLUGINS_VERSION]}
HELM_VERSION=${TC_VERSION[HELM4_VERSION]}
PAUSE_IMAGE=${TC_VERSION[PAUSE_IMAGE]}
COREDNS_IMAGE=${TC_VERSION[COREDNS_IMAGE]}
OPERATOR_IMAGE=$OPERATOR_IMAGE
OPERATOR_VERSION=$OPERATOR_VERSION"

# ---- the manifest, before anything is copied -------------------------------
# Files from the toolchain take their digests from its SHA256SUMS (computed
# when each was built; the bundle hard-links the same inodes, and build.sh
# replaces programs by rename, never in place). Only the operator image, the
# chart and VERSIONS are hashed here, so a call whose bundle exists is quick.
# A new bundle is re-hashed in full before it is renamed into place.
declare -A TC_SUM
while read -r sum name; do
  TC_SUM["$name"]="$sum"
done <"$TC/SHA256SUMS"
for name in "${BIN_PROGRAMS[@]}" "${CNI_PLUGINS[@]/#/cni/}" pause.oci.tar coredns.oci.tar; do
  if [[ -z "${TC_SUM[$name]:-}" ]]; then
    echo "bundle.sh: $name is not in $TC/SHA256SUMS; re-run bash e2e/toolchain/build.sh" >&2
    exit 1
  fi
done
tc_sum() { printf '%s' "${TC_SUM[$1]}"; }
mapfile -t CHART_FILES < <(cd "$REPO/charts" && find kubeseed -type f | LC_ALL=C sort)
if [[ "${#CHART_FILES[@]}" -eq 0 ]]; then
  echo "bundle.sh: no files under $REPO/charts/kubeseed" >&2
  exit 1
fi

MANIFEST="$(
  {
    for p in "${BIN_PROGRAMS[@]}"; do printf '%s  bin/%s\n' "$(tc_sum "$p")" "$p"; done
    for p in "${CNI_PLUGINS[@]}"; do printf '%s  cni/%s\n' "$(tc_sum "cni/$p")" "$p"; done
    printf '%s  images/pause.oci.tar\n' "$(tc_sum pause.oci.tar)"
    printf '%s  images/coredns.oci.tar\n' "$(tc_sum coredns.oci.tar)"
    printf '%s  images/kubeseed-operator.oci.tar\n' "$(sha256sum <"$OPERATOR_IMAGE_PATH" | cut -c1-64)"
    (cd "$REPO/charts" && sha256sum "${CHART_FILES[@]}") | sed 's|  kubeseed/|  charts/kubeseed/|'
    printf '%s  VERSIONS\n' "$(printf '%s\n' "$VERSIONS" | sha256sum | cut -c1-64)"
  } | LC_ALL=C sort -k2
)"
KEY="$(printf '%s\n' "$MANIFEST" | sha256sum | cut -c1-16)"
DEST="$BUNDLES/$KEY"

finish() {
  if [[ "$VERIFY" == 1 ]]; then
    (cd "$DEST" && sha256sum --quiet -c SHA256SUMS) >&2
    log "SHA256SUMS verified"
  fi
  echo "KUBESEED_BUNDLE=$DEST"
  exit 0
}

if [[ -d "$DEST" ]]; then
  if [[ "$(<"$DEST/SHA256SUMS")" == "$MANIFEST" ]]; then
    log "bundle $KEY is up to date ($(elapsed))"
    finish
  fi
  # Same key, other manifest: cannot happen unless someone edited the bundle.
  echo "bundle.sh: $DEST exists but its SHA256SUMS differs from the one computed now; remove that directory and re-run" >&2
  exit 1
fi

# ---- assemble in a temporary directory, then rename --------------------------
TMP="$(mktemp -d "$BUNDLES/.assemble.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/bin" "$TMP/cni" "$TMP/images" "$TMP/charts"
# Hard links cost no space; across file systems (a separate KUBESEED_CACHE
# mount) fall back to copies.
link() { ln -f "$1" "$2" 2>/dev/null || cp -f "$1" "$2"; }
for p in "${BIN_PROGRAMS[@]}"; do link "$TC/$p" "$TMP/bin/$p"; done
for p in "${CNI_PLUGINS[@]}"; do link "$TC/cni/$p" "$TMP/cni/$p"; done
link "$TC/pause.oci.tar" "$TMP/images/pause.oci.tar"
link "$TC/coredns.oci.tar" "$TMP/images/coredns.oci.tar"
link "$OPERATOR_IMAGE_PATH" "$TMP/images/kubeseed-operator.oci.tar"
# The chart is copied (the working tree changes under it), with plain modes.
for f in "${CHART_FILES[@]}"; do
  install -D -m 0644 "$REPO/charts/$f" "$TMP/charts/$f"
done
printf '%s\n' "$VERSIONS" >"$TMP/VERSIONS"
printf '%s\n' "$MANIFEST" >"$TMP/SHA256SUMS"
chmod 0644 "$TMP/VERSIONS" "$TMP/SHA256SUMS"
find "$TMP" -type d -exec chmod 0755 {} +

# Every file against the manifest, and nothing else in the directory.
if ! (cd "$TMP" && sha256sum --quiet --strict -c SHA256SUMS) >&2; then
  echo "bundle.sh: a file does not match its digest (a toolchain program changed after build.sh hashed it?); run bash e2e/toolchain/build.sh --verify" >&2
  exit 1
fi
EXTRA="$(cd "$TMP" && find . -type f ! -name SHA256SUMS | sed 's|^\./||' | LC_ALL=C sort \
  | LC_ALL=C comm -23 - <(printf '%s\n' "$MANIFEST" | cut -c67- | LC_ALL=C sort))"
if [[ -n "$EXTRA" ]]; then
  echo "bundle.sh: internal error: files not in SHA256SUMS: $EXTRA" >&2
  exit 1
fi

mv -T "$TMP" "$DEST"
trap - EXIT
log "bundle $KEY assembled in $(elapsed), $(du -sh --apparent-size "$DEST" | cut -f1): $DEST"
finish
}
