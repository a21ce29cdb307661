#!/usr/bin/env bash
# Build the real Kubernetes, etcd and Helm programs kubeseed's tests run, from
# their Go modules (the only source this machine can reach: the Go module proxy).
#
# Usage:   bash e2e/toolchain/build.sh [--verify]
# Output:  the last stdout line is  KUBESEED_TOOLCHAIN=<bin dir>
#          (logs and timings go to stderr).
#
# Idempotent: each program is built once into a directory keyed by every pinned
# version plus the Go version and platform; when everything is there a second
# call only checks a stamp and returns at once. `--verify` also re-checks the
# SHA256SUMS manifest.
#
# Why the wrapper modules: k8s.io/kubernetes points its staging modules
# (k8s.io/api, k8s.io/client-go, ...) at ./staging/src with `replace`, and
# `replace` is ignored outside the main module, so `go install` refuses it.
# A one-line wrapper module that requires k8s.io/kubernetes and replaces each
# staging module by its published v0.X.Y twin builds the same code. The staging
# list is read from that tag's own go.mod, so newer minors work unchanged.
# etcd's server module has relative `replace` lines too, so it gets the same
# treatment; Helm gets a wrapper only so every product is built the same way.
# Each wrapper's go.sum is seeded from sums/<product>-<version>.go.sum, which
# pins every module's hash in this repository. README.md has the details and
# the measured build times.
#
# Environment (all optional):
#   K8S_VERSION ETCD_VERSION HELM4_VERSION HELM3_VERSION  versions to build
#   KUBESEED_CACHE   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/kubeseed)
#   GOMODCACHE GOCACHE GOPATH  default to $KUBESEED_CACHE/go/{mod,build,path} so CI on the
#                    same machine reuses downloads and compiled packages, and one
#                    directory holds everything this script ever wrote.
#   SOURCE_DATE_EPOCH  buildDate stamped into Kubernetes binaries (default: the
#                    release's publication time reported by the module proxy,
#                    which keeps rebuilds byte-for-byte reproducible).
#   KUBELET_CGO      1 (default, like upstream: kubelet is not in
#                    KUBE_STATIC_BINARIES) or 0.
set -euo pipefail

# The whole script is one compound command, so bash parses all of it before
# running any: editing or updating this file during a 20-minute build cannot
# change what the running build does.
{

# ---- pinned versions ------------------------------------------------------
# Newest patch releases the module proxy serves (checked with
# `go list -m -versions MODULE` and `go list -m MODULE@vX.Y.Z`, 2026-11-24).
# v1.35.8 is the newest k8s.io/kubernetes v1.35 the proxy has, although
# staging modules go up to v0.35.10: v1.35.9/10 answer "not available".
K8S_VERSION="${K8S_VERSION:-v1.35.8}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM4_VERSION="${HELM4_VERSION:-v4.3.1}"
HELM3_VERSION="${HELM3_VERSION:-v3.22.0}"
KUBELET_CGO="${KUBELET_CGO:-1}"

VERIFY=0
case "${1:-}" in
  "") ;;
  --verify) VERIFY=1 ;;
  -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
  *) echo "build.sh: unknown argument '$1' (expected nothing or --verify)" >&2; exit 2 ;;
esac

for v in "$K8S_VERSION" "$ETCD_VERSION" "$HELM4_VERSION" "$HELM3_VERSION"; do
  if ! [[ "$v" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "build.sh: version '$v' is not of the form vMAJOR.MINOR.PATCH (e.g. K8S_VERSION=v1.35.8)" >&2
    exit 2
  fi
done
# Go's own installer puts it in /usr/local/go, which non-login shells (CI)
# often lack on PATH.
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null; then
  echo "build.sh: 'go' is not on PATH; install Go >= 1.25 (https://go.dev/dl, into /usr/local/go)" >&2
  exit 2
fi
if [[ "$KUBELET_CGO" == 1 ]] && ! command -v gcc >/dev/null; then
  echo "build.sh: kubelet is built with cgo like upstream, which needs gcc: apt-get install gcc libc6-dev (or set KUBELET_CGO=0)" >&2
  exit 2
fi

KUBESEED_CACHE="${KUBESEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeseed}"
export GOMODCACHE="${GOMODCACHE:-$KUBESEED_CACHE/go/mod}"
export GOCACHE="${GOCACHE:-$KUBESEED_CACHE/go/build}"
export GOPATH="${GOPATH:-$KUBESEED_CACHE/go/path}"
# The toolchain on PATH builds everything; never let a go.mod's `toolchain`
# line download another one.
export GOTOOLCHAIN=local
export GOFLAGS="-mod=mod -buildvcs=false"

GO_VERSION="$(go env GOVERSION)"
GOOS="$(go env GOOS)"
GOARCH="$(go env GOARCH)"
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM4_VERSION}-${HELM3_VERSION}_${GO_VERSION}_${GOOS}-${GOARCH}"
ROOT="$KUBESEED_CACHE/toolchain/$KEY"
BIN="$ROOT/bin"
SRC="$ROOT/src"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STAMP="$ROOT/.complete"
PROGRAMS=(etcd etcdctl helm helm3 kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet kube-proxy)

log() { printf '%s build.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

finish() {
  if [[ "$VERIFY" == 1 ]]; then
    (cd "$BIN" && sha256sum --quiet -c SHA256SUMS) >&2
    log "SHA256SUMS verified"
  fi
  echo "KUBESEED_TOOLCHAIN=$BIN"
  exit 0
}

# Fast path: no lock, no go invocation beyond `go env` above.
if [[ -f "$STAMP" ]]; then
  finish
fi

mkdir -p "$BIN" "$SRC" "$GOMODCACHE" "$GOCACHE"
chmod 0755 "$KUBESEED_CACHE" 2>/dev/null || true
# Two concurrent callers (CI and a developer) would race on the same files.
exec 9>"$ROOT/.lock"
if ! flock -n 9; then
  log "another build.sh holds $ROOT/.lock; waiting for it"
  flock 9
fi
if [[ -f "$STAMP" ]]; then
  finish
fi

T_ALL=$(date +%s)

# module_info MODULE@VERSION FIELD -> value of FIELD in `go mod download -json`.
module_info() {
  local json
  if ! json="$(cd "$SRC" && go mod download -json "$1" 2>&1)"; then
    echo "build.sh: cannot fetch $1 from the module proxy ($(go env GOPROXY)):" >&2
    echo "$json" >&2
    echo "build.sh: pick a version the proxy has: go list -m -versions ${1%@*}" >&2
    exit 1
  fi
  printf '%s\n' "$json" | sed -n "s/^[[:space:]]*\"$2\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p"
}

# build_one NAME WRAPDIR PACKAGE CGO LDFLAGS [TAGS]
# Builds into a temporary name and renames, so a killed build never leaves a
# half-written program that a later call would take for finished.
build_one() {
  local name="$1" dir="$2" pkg="$3" cgo="$4" ldflags="$5" tags="${6:-}"
  if [[ -x "$BIN/$name" ]]; then
    log "$name: already built"
    return
  fi
  local t0
  t0=$(date +%s)
  log "$name: building $pkg (CGO_ENABLED=$cgo${tags:+, tags $tags})"
  (cd "$dir" && CGO_ENABLED="$cgo" go build -trimpath ${tags:+-tags "$tags"} \
      -ldflags "-s -w $ldflags" -o "$BIN/.$name.tmp" "$pkg")
  mv -f "$BIN/.$name.tmp" "$BIN/$name"
  log "$name: built in $(( $(date +%s) - t0 ))s, $(du -h "$BIN/$name" | cut -f1)"
}

# write_wrapper DIR MODULE-NAME GO-LINE BODY [SUMS-NAME]
# Seeds go.sum from e2e/toolchain/sums/<SUMS-NAME>.go.sum when the repository
# has one for these versions: every module's hash is then pinned here, not
# only by the checksum database, and a changed module fails the build.
write_wrapper() {
  mkdir -p "$1"
  if [[ ! -f "$1/go.mod" ]]; then
    printf 'module %s\n\ngo %s\n\n%s\n' "$2" "$3" "$4" >"$1/go.mod"
  fi
  local sums="$SCRIPT_DIR/sums/${5:-$(basename "$1")}.go.sum"
  if [[ ! -f "$1/go.sum" ]]; then
    if [[ -f "$sums" ]]; then
      cp "$sums" "$1/go.sum"
    else
      log "no $sums: module hashes are checked against $(go env GOSUMDB) only; record them with: cp $1/go.sum $sums"
    fi
  fi
}

# Resolve every top-level module first, so a version the proxy does not have
# fails in seconds, before anything is built.
for m in "k8s.io/kubernetes@$K8S_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" \
         "helm.sh/helm/v4@$HELM4_VERSION" "helm.sh/helm/v3@$HELM3_VERSION"; do
  module_info "$m" Version >/dev/null
done

# ---- etcd -----------------------------------------------------------------
ETCD_DIR="$SRC/etcd-$ETCD_VERSION"
write_wrapper "$ETCD_DIR" kubeseed.invalid/toolchain/etcd 1.24 "require (
	go.etcd.io/etcd/server/v3 $ETCD_VERSION
	go.etcd.io/etcd/etcdctl/v3 $ETCD_VERSION
	go.etcd.io/etcd/api/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/pkg/v3 $ETCD_VERSION
	go.etcd.io/etcd/client/v3 $ETCD_VERSION
	go.etcd.io/etcd/pkg/v3 $ETCD_VERSION
)"
# Upstream (scripts/build-lib.sh) builds etcd static with CGO_ENABLED=0. GitSHA
# stays at its default: the proxy does not carry the commit hash.
build_one etcd "$ETCD_DIR" go.etcd.io/etcd/server/v3 0 ""
build_one etcdctl "$ETCD_DIR" go.etcd.io/etcd/etcdctl/v3 0 ""

# ---- helm -----------------------------------------------------------------
# helm_build BINNAME MAJOR VERSION
helm_build() {
  local name="$1" major="$2" ver="$3"
  local dir="$SRC/helm-$ver" mod="helm.sh/helm/$major"
  write_wrapper "$dir" "kubeseed.invalid/toolchain/helm-$major" 1.24 "require $mod $ver"
  local ld="-X $mod/internal/version.version=$ver -X $mod/internal/version.metadata= -X $mod/internal/version.gitTreeState=clean"
  if [[ "$major" == v3 ]]; then
    # Helm 3's Makefile derives the Kubernetes version its lint and
    # capabilities assume from the client-go it was built with.
    local gomod cg maj min
    gomod="$(module_info "$mod@$ver" GoMod)"
    cg="$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | head -1)"
    if [[ -z "$cg" ]]; then
      echo "build.sh: cannot find k8s.io/client-go in $gomod" >&2
      exit 1
    fi
    maj=1 min="$cg"
    ld="$ld -X $mod/pkg/lint/rules.k8sVersionMajor=$maj -X $mod/pkg/lint/rules.k8sVersionMinor=$min"
    ld="$ld -X $mod/pkg/chartutil.k8sVersionMajor=$maj -X $mod/pkg/chartutil.k8sVersionMinor=$min"
  fi
  build_one "$name" "$dir" "$mod/cmd/helm" 0 "$ld"
}
helm_build helm v4 "$HELM4_VERSION"
helm_build helm3 v3 "$HELM3_VERSION"

# ---- kubernetes -------------------------------------------------------------
K8S_DIR="$SRC/kubernetes-$K8S_VERSION"
if [[ ! -f "$K8S_DIR/go.mod" ]]; then
  K8S_GOMOD="$(module_info "k8s.io/kubernetes@$K8S_VERSION" GoMod)"
  # v1.MINOR.PATCH is published as v0.MINOR.PATCH for every staging module.
  STAGING_VERSION="v0.${K8S_VERSION#v1.}"
  GO_LINE="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$K8S_GOMOD")"
  GODEBUG_LINE="$(grep -E '^godebug ' "$K8S_GOMOD" || true)"
  mapfile -t STAGING < <(sed -n 's|^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/src/.*|\1|p' "$K8S_GOMOD")
  if [[ "${#STAGING[@]}" -eq 0 ]]; then
    echo "build.sh: found no './staging/src' replace lines in $K8S_GOMOD; the recipe needs updating for $K8S_VERSION" >&2
    exit 1
  fi
  log "kubernetes $K8S_VERSION: replacing ${#STAGING[@]} staging modules by $STAGING_VERSION"
  body="require k8s.io/kubernetes $K8S_VERSION

${GODEBUG_LINE}

replace ("
  for m in "${STAGING[@]}"; do
    body="$body
	$m => $m $STAGING_VERSION"
  done
  body="$body
)"
  write_wrapper "$K8S_DIR.tmp" kubeseed.invalid/toolchain/kubernetes "$GO_LINE" "$body" "kubernetes-$K8S_VERSION"
  rm -rf "$K8S_DIR" && mv "$K8S_DIR.tmp" "$K8S_DIR"
fi

if [[ -n "${SOURCE_DATE_EPOCH:-}" ]]; then
  BUILD_DATE="$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
else
  # The proxy's .info file holds the tag's publication time.
  K8S_INFO="$(module_info "k8s.io/kubernetes@$K8S_VERSION" Info)"
  K8S_TIME="$(sed -n 's/.*"Time": *"\([^"]*\)".*/\1/p' "$K8S_INFO")"
  if [[ -z "$K8S_TIME" ]]; then
    echo "build.sh: no \"Time\" in $K8S_INFO; set SOURCE_DATE_EPOCH to choose the build date" >&2
    exit 1
  fi
  BUILD_DATE="$(date -u -d "$K8S_TIME" +%Y-%m-%dT%H:%M:%SZ)"
fi
K8S_MINOR="${K8S_VERSION#v1.}"; K8S_MINOR="${K8S_MINOR%%.*}"
# The same -X flags as hack/lib/version.sh, on both version packages, so
# `kubectl version` and the apiserver's /version report the release. gitCommit
# is set empty (not upstream's "$Format:%H$" placeholder): the proxy does not
# carry the commit hash.
K8S_LD=""
for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
  K8S_LD="$K8S_LD -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$K8S_MINOR"
  K8S_LD="$K8S_LD -X $pkg.gitTreeState=clean -X $pkg.buildDate=$BUILD_DATE -X $pkg.gitCommit="
done
# Tags as in hack/lib/golang.sh for a non-debug build.
K8S_TAGS="selinux,notest,grpcnotrace"
# Most wanted first, so the API server is there as early as possible.
build_one kube-apiserver "$K8S_DIR" k8s.io/kubernetes/cmd/kube-apiserver 0 "$K8S_LD" "$K8S_TAGS"
build_one kubectl "$K8S_DIR" k8s.io/kubernetes/cmd/kubectl 0 "$K8S_LD" "$K8S_TAGS"
build_one kube-controller-manager "$K8S_DIR" k8s.io/kubernetes/cmd/kube-controller-manager 0 "$K8S_LD" "$K8S_TAGS"
build_one kube-scheduler "$K8S_DIR" k8s.io/kubernetes/cmd/kube-scheduler 0 "$K8S_LD" "$K8S_TAGS"
build_one kube-proxy "$K8S_DIR" k8s.io/kubernetes/cmd/kube-proxy 0 "$K8S_LD" "$K8S_TAGS"
build_one kubelet "$K8S_DIR" k8s.io/kubernetes/cmd/kubelet "$KUBELET_CGO" "$K8S_LD" "$K8S_TAGS"

# ---- manifest and stamp ---------------------------------------------------
(cd "$BIN" && sha256sum "${PROGRAMS[@]}" >SHA256SUMS.tmp && mv -f SHA256SUMS.tmp SHA256SUMS)
cat >"$ROOT/versions.env" <<EOF
K8S_VERSION=$K8S_VERSION
ETCD_VERSION=$ETCD_VERSION
HELM4_VERSION=$HELM4_VERSION
HELM3_VERSION=$HELM3_VERSION
GO_VERSION=$GO_VERSION
BUILD_DATE=$BUILD_DATE
EOF
cp "$ROOT/versions.env" "$BIN/versions.env"
touch "$STAMP"
log "toolchain complete in $(( $(date +%s) - T_ALL ))s: $BIN"
finish
}
