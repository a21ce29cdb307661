#!/usr/bin/env bash
# Build the real Kubernetes, etcd, Helm, containerd, runc and CNI programs (and
# the pause and CoreDNS images) kubeseed runs, from their Go modules: the only source this
# machine can reach is the Go module proxy.
#
# Usage:   bash e2e/toolchain/build.sh [--verify]
# Output:  the last stdout line is  KUBESEED_TOOLCHAIN=<bin dir>
#          (logs and timings go to stderr).
#
# Idempotent: each program is built once into a directory keyed by the
# Kubernetes, etcd and Helm versions plus the Go version and platform; when
# everything is there a second call compares one stamp and returns at once.
# `--verify` also re-checks the SHA256SUMS manifest.
#
# Why the wrapper modules: k8s.io/kubernetes points its staging modules
# (k8s.io/api, k8s.io/client-go, ...) at ./staging/src with `replace`, and
# `replace` is ignored outside the main module, so `go install` refuses it.
# A one-line wrapper module that requires k8s.io/kubernetes and replaces each
# staging module by its published v0.X.Y twin builds the same code. The staging
# list is read from that tag's own go.mod, so newer minors work unchanged.
# etcd's server module has relative `replace` lines too, so it gets the same
# treatment; Helm, containerd, runc and the CNI plugins get a wrapper only so
# every product is built the same way. Each wrapper's go.sum is seeded from
# sums/<product>-<version>.go.sum, which pins every module's hash in this
# repository. README.md has the details and the measured build times.
#
# Environment (all optional):
#   K8S_VERSION ETCD_VERSION HELM4_VERSION HELM3_VERSION CONTAINERD_VERSION
#   RUNC_VERSION CNI_PLUGINS_VERSION PAUSE_VERSION
#   COREDNS_VERSION                                  versions to build
#   KUBESEED_CACHE   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/kubeseed)
#   GOMODCACHE GOCACHE GOPATH  default to $KUBESEED_CACHE/go/{mod,build,path} so CI on the
#                    same machine reuses downloads and compiled packages, and one
#                    directory holds everything this script ever wrote.
#   SOURCE_DATE_EPOCH  buildDate stamped into Kubernetes binaries and the pause
#                    image's timestamps (default: the Kubernetes release's
#                    publication time reported by the module proxy, which keeps
#                    rebuilds byte-for-byte reproducible). Changing it later
#                    rebuilds those programs: the stamped date is part of
#                    their recipe.
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
# The container runtime a seed installs (newest the proxy serves, 2026-12-02).
# containerd 2.x still runs on cgroup v1 (deprecated since 2.2, kept until at
# least May 2029 per its RELEASES.md), proven in a lab host: see README.md.
# containerd v2.4.2's own CI pins runc v1.5.2 (script/setup/runc-version);
# v1.5.3 is the bug-fix release of that line. CNI plugins v1.10.0's go.mod
# asks for go 1.26.8.
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
RUNC_VERSION="${RUNC_VERSION:-v1.5.3}"
CNI_PLUGINS_VERSION="${CNI_PLUGINS_VERSION:-v1.10.0}"
# The TAG in the Kubernetes module's build/pause/Makefile; pinned here so the
# image name is known without building, and checked against the Makefile.
PAUSE_VERSION="${PAUSE_VERSION:-3.10.1}"
# Cluster DNS, deployed by kubeseed from an image built here (nothing is pulled).
COREDNS_VERSION="${COREDNS_VERSION:-v1.15.0}"
KUBELET_CGO="${KUBELET_CGO:-1}"

VERIFY=0
case "${1:-}" in
  "") ;;
  --verify) VERIFY=1 ;;
  -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
  *) echo "build.sh: unknown argument '$1' (expected nothing or --verify)" >&2; exit 2 ;;
esac

for v in "$K8S_VERSION" "$ETCD_VERSION" "$HELM4_VERSION" "$HELM3_VERSION" \
         "$CONTAINERD_VERSION" "$RUNC_VERSION" "$CNI_PLUGINS_VERSION" "$COREDNS_VERSION"; do
  if ! [[ "$v" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "build.sh: version '$v' is not of the form vMAJOR.MINOR.PATCH (e.g. K8S_VERSION=v1.35.8)" >&2
    exit 2
  fi
done
if ! [[ "$PAUSE_VERSION" =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]]; then
  echo "build.sh: PAUSE_VERSION '$PAUSE_VERSION' is not of the form MAJOR.MINOR[.PATCH] (e.g. 3.10.1, no v)" >&2
  exit 2
fi
# Go's own installer puts it in /usr/local/go, which non-login shells (CI)
# often lack on PATH.
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
  PATH="/usr/local/go/bin:$PATH"
fi
if ! command -v go >/dev/null; then
  echo "build.sh: 'go' is not on PATH; install Go >= 1.26.8 (https://go.dev/dl, into /usr/local/go)" >&2
  exit 2
fi
# runc's nsenter and seccomp and the pause program are C; kubelet links with
# cgo like upstream's.
if ! command -v gcc >/dev/null; then
  echo "build.sh: runc, the pause image and (like upstream) kubelet need gcc: bash e2e/install-packages.sh (or apt-get install gcc libc6-dev)" >&2
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

mapfile -t GO_ENV < <(go env GOVERSION GOOS GOARCH)
GO_VERSION="${GO_ENV[0]}" GOOS="${GO_ENV[1]}" GOARCH="${GO_ENV[2]}"
# The key names only what the first toolchain layout had: a cache built before
# containerd, runc, CNI and pause joined is reused, and only those are added.
# Their versions are checked per program (recipes/ below) instead.
KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM4_VERSION}-${HELM3_VERSION}_${GO_VERSION}_${GOOS}-${GOARCH}"
ROOT="$KUBESEED_CACHE/toolchain/$KEY"
BIN="$ROOT/bin"
SRC="$ROOT/src"
RECIPES="$ROOT/recipes"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STAMP="$ROOT/.complete"
# The CNI plugins go to bin/cni/: the layout of a host's /opt/cni/bin, and
# names like `bridge` and `loopback` stay off a PATH that holds bin/.
PROGRAMS=(etcd etcdctl helm helm3 kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet kube-proxy
          kubeadm containerd containerd-shim-runc-v2 ctr runc cni/bridge cni/host-local cni/loopback cni/portmap
          coredns)
# Files in the bin directory that are not programs.
FILES=(pause.oci.tar coredns.oci.tar)
PAUSE_IMAGE="localhost/kubeseed/pause:$PAUSE_VERSION"
COREDNS_IMAGE="localhost/kubeseed/coredns:${COREDNS_VERSION#v}"

log() { printf '%s build.sh: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

finish() {
  if [[ "$VERIFY" == 1 ]]; then
    (cd "$BIN" && sha256sum --quiet -c SHA256SUMS) >&2
    log "SHA256SUMS verified"
  fi
  echo "KUBESEED_TOOLCHAIN=$BIN"
  exit 0
}

# What a finished build of exactly these inputs writes into the stamp. The
# script's own hash is part of it: after any edit (a flag, a new program) the
# next call takes the slow path once, which compares every program's recipe
# and rebuilds only those whose recipe changed.
SCRIPT_SUM="$(sha256sum <"${BASH_SOURCE[0]}")"
SIGNATURE="$KEY containerd-$CONTAINERD_VERSION runc-$RUNC_VERSION cni-$CNI_PLUGINS_VERSION pause-$PAUSE_VERSION coredns-$COREDNS_VERSION kubelet_cgo-$KUBELET_CGO epoch-${SOURCE_DATE_EPOCH:-} script-${SCRIPT_SUM%% *}"

# Fast path: no lock, no go invocation beyond `go env` above.
if [[ -f "$STAMP" && "$(<"$STAMP")" == "$SIGNATURE" ]]; then
  finish
fi

mkdir -p "$BIN" "$SRC" "$RECIPES" "$GOMODCACHE" "$GOCACHE"
chmod 0755 "$KUBESEED_CACHE" 2>/dev/null || true
# Two concurrent callers (CI and a developer) would race on the same files.
exec 9>"$ROOT/.lock"
if ! flock -n 9; then
  log "another build.sh holds $ROOT/.lock; waiting for it"
  flock 9
fi
if [[ -f "$STAMP" && "$(<"$STAMP")" == "$SIGNATURE" ]]; then
  finish
fi

# runc is linked statically with libseccomp, as upstream's release is.
if ! pkg-config --exists libseccomp 2>/dev/null \
   || [[ ! -f "$(pkg-config --variable=libdir libseccomp)/libseccomp.a" ]]; then
  echo "build.sh: runc needs libseccomp.a and pkg-config: bash e2e/install-packages.sh (or apt-get install libseccomp-dev pkg-config)" >&2
  exit 2
fi

T_ALL=$(date +%s)
BUILT=0

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

# go_line MODULE@VERSION -> the `go` line of that module's go.mod.
go_line() {
  sed -n 's/^go \([0-9][0-9.]*\)[[:space:]]*$/\1/p' "$(module_info "$1" GoMod)"
}

# up_to_date NAME RECIPE: is NAME in the bin directory, built by RECIPE?
# recipes/NAME holds the recipe each program was built with (module, version,
# cgo, tags, flags); a program whose recipe changed is rebuilt. Programs of the
# first toolchain layout carry no recipe, but their versions are in the
# directory's key, so they are adopted as they are.
KEYED_PROGRAMS=" etcd etcdctl helm helm3 kube-apiserver kubectl kube-controller-manager kube-scheduler kubelet kube-proxy "
up_to_date() {
  local name="$1" recipe="$2" rec="$RECIPES/$1"
  [[ -e "$BIN/$name" ]] || return 1
  if [[ -f "$rec" ]]; then
    [[ "$(<"$rec")" == "$recipe" ]]
    return
  fi
  if [[ "$KEYED_PROGRAMS" == *" $name "* ]]; then
    record "$name" "$recipe"
    return 0
  fi
  return 1
}
record() { # record NAME RECIPE
  mkdir -p "$(dirname "$RECIPES/$1")"
  printf '%s\n' "$2" >"$RECIPES/$1.tmp"
  mv -f "$RECIPES/$1.tmp" "$RECIPES/$1"
}
# Something is about to change in the bin directory: it is no longer the
# finished toolchain its stamp describes until this run ends.
invalidate() {
  rm -f "$STAMP"
  BUILT=$((BUILT + 1))
}

# build_one NAME WRAPDIR PACKAGE CGO LDFLAGS TAGS [GO BUILD FLAGS...]
# Builds into a temporary name and renames, so a killed build never leaves a
# half-written program that a later call would take for finished.
build_one() {
  local name="$1" dir="$2" pkg="$3" cgo="$4" ldflags="$5" tags="$6"
  shift 6
  local recipe="$pkg from $(basename "$dir") cgo=$cgo tags=$tags ldflags=-s -w $ldflags flags=$*"
  if up_to_date "$name" "$recipe"; then
    log "$name: already built"
    return
  fi
  invalidate
  local t0 out tmp
  t0=$(date +%s)
  out="$BIN/$name"
  tmp="$(dirname "$out")/.$(basename "$out").tmp"
  mkdir -p "$(dirname "$out")"
  log "$name: building $pkg (CGO_ENABLED=$cgo${tags:+, tags $tags}${*:+, $*})"
  (cd "$dir" && CGO_ENABLED="$cgo" go build -trimpath "$@" ${tags:+-tags "$tags"} \
      -ldflags "-s -w $ldflags" -o "$tmp" "$pkg")
  mv -f "$tmp" "$out"
  record "$name" "$recipe"
  log "$name: built in $(( $(date +%s) - t0 ))s, $(du -h "$out" | cut -f1)"
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

# Resolve every top-level module first, so a version the proxy does not have,
# or a module that needs a newer Go, fails in seconds, before anything is built.
HAVE_GO="${GO_VERSION#go}"; HAVE_GO="${HAVE_GO%%[ -]*}"
for m in "k8s.io/kubernetes@$K8S_VERSION" "go.etcd.io/etcd/server/v3@$ETCD_VERSION" \
         "helm.sh/helm/v4@$HELM4_VERSION" "helm.sh/helm/v3@$HELM3_VERSION" \
         "github.com/containerd/containerd/v2@$CONTAINERD_VERSION" \
         "github.com/opencontainers/runc@$RUNC_VERSION" \
         "github.com/containernetworking/plugins@$CNI_PLUGINS_VERSION" \
         "github.com/coredns/coredns@$COREDNS_VERSION"; do
  need="$(go_line "$m")"
  if [[ -n "$need" && "$(printf '%s\n%s\n' "$need" "$HAVE_GO" | sort -V | head -1)" != "$need" ]]; then
    echo "build.sh: $m needs Go >= $need, but $GO_VERSION is installed (GOTOOLCHAIN=local: no other Go is downloaded); install Go >= $need" >&2
    exit 2
  fi
done

# simple_wrapper PRODUCT MODULE VERSION: prints the wrapper directory for a
# module without relative replaces. The wrapper copies the module's `go` line,
# so the default GODEBUG settings match an upstream build of that module.
simple_wrapper() {
  local dir="$SRC/$1-$3"
  write_wrapper "$dir" "kubeseed.invalid/toolchain/$1" "$(go_line "$2@$3")" "require $2 $3"
  echo "$dir"
}

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
build_one etcd "$ETCD_DIR" go.etcd.io/etcd/server/v3 0 "" ""
build_one etcdctl "$ETCD_DIR" go.etcd.io/etcd/etcdctl/v3 0 "" ""

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
  build_one "$name" "$dir" "$mod/cmd/helm" 0 "$ld" ""
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
  BUILD_EPOCH="$SOURCE_DATE_EPOCH"
else
  # The proxy's .info file holds the tag's publication time.
  K8S_INFO="$(module_info "k8s.io/kubernetes@$K8S_VERSION" Info)"
  K8S_TIME="$(sed -n 's/.*"Time": *"\([^"]*\)".*/\1/p' "$K8S_INFO")"
  if [[ -z "$K8S_TIME" ]]; then
    echo "build.sh: no \"Time\" in $K8S_INFO; set SOURCE_DATE_EPOCH to choose the build date" >&2
    exit 1
  fi
  BUILD_EPOCH="$(date -u -d "$K8S_TIME" +%s)"
fi
BUILD_DATE="$(date -u -d "@$BUILD_EPOCH" +%Y-%m-%dT%H:%M:%SZ)"
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

# ---- containerd -------------------------------------------------------------
# As containerd's Makefile: version.{Version,Revision,Package} stamped, tag
# urfave_cli_no_docs, and for the shim also no_grpc (it speaks ttrpc only).
# CGO_ENABLED=0 makes all three static, like the shim upstream: the only cgo
# code in containerd 2.4 is the btrfs snapshotter (`!no_btrfs && cgo`), which
# kubeseed does not use (overlayfs). Revision stays empty: the proxy does not
# carry the commit hash.
CTRD_DIR="$(simple_wrapper containerd github.com/containerd/containerd/v2 "$CONTAINERD_VERSION")"
CTRD_PKG=github.com/containerd/containerd/v2
CTRD_LD="-X $CTRD_PKG/version.Version=$CONTAINERD_VERSION -X $CTRD_PKG/version.Revision= -X $CTRD_PKG/version.Package=$CTRD_PKG"
build_one containerd "$CTRD_DIR" "$CTRD_PKG/cmd/containerd" 0 "$CTRD_LD" urfave_cli_no_docs
build_one containerd-shim-runc-v2 "$CTRD_DIR" "$CTRD_PKG/cmd/containerd-shim-runc-v2" 0 "$CTRD_LD" "urfave_cli_no_docs no_grpc"
build_one ctr "$CTRD_DIR" "$CTRD_PKG/cmd/ctr" 0 "$CTRD_LD" urfave_cli_no_docs

# ---- runc -------------------------------------------------------------------
# As runc's `make static` (what script/release_build.sh runs): cgo for nsenter,
# libseccomp linked in statically, a static PIE, tags seccomp,
# urfave_cli_no_docs, netgo, osusergo. Two differences from the release:
# libseccomp is Debian's (2.5.4, the release bundles 2.6.x), and the
# `libpathrs` tag is left out, because libpathrs is a Rust library nobody
# packages here; runc 1.5 supports building without it (its CHANGELOG), 1.6
# will not. The version comes from the module's embedded VERSION file;
# gitCommit stays empty as the proxy does not carry it.
RUNC_DIR="$(simple_wrapper runc github.com/opencontainers/runc "$RUNC_VERSION")"
build_one runc "$RUNC_DIR" github.com/opencontainers/runc 1 \
  "-X main.gitCommit= -linkmode external -extldflags -static-pie" \
  "seccomp urfave_cli_no_docs netgo osusergo" -buildmode=pie
# A runc that needs the build machine's libseccomp.so, or that lost seccomp,
# would fail only on a host; catch both here.
if readelf -d "$BIN/runc" | grep -q NEEDED; then
  echo "build.sh: $BIN/runc is dynamically linked ($(readelf -d "$BIN/runc" | grep NEEDED | tr -s ' ' | tr '\n' ' ')); is libseccomp.a installed?" >&2
  rm -f "$BIN/runc"; exit 1
fi
if ! "$BIN/runc" --version | grep -q '^libseccomp: '; then
  echo "build.sh: $BIN/runc was built without seccomp support (no 'libseccomp:' in runc --version)" >&2
  rm -f "$BIN/runc"; exit 1
fi

# ---- CNI plugins --------------------------------------------------------------
# As the plugins' release (build_linux.sh run with CGO_ENABLED=0): the version
# stamped into buildversion.BuildVersion. Into bin/cni/ as /opt/cni/bin wants them.
CNI_DIR="$(simple_wrapper cni-plugins github.com/containernetworking/plugins "$CNI_PLUGINS_VERSION")"
CNI_MOD=github.com/containernetworking/plugins
CNI_LD="-X $CNI_MOD/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION"
build_one cni/bridge "$CNI_DIR" "$CNI_MOD/plugins/main/bridge" 0 "$CNI_LD" ""
build_one cni/host-local "$CNI_DIR" "$CNI_MOD/plugins/ipam/host-local" 0 "$CNI_LD" ""
build_one cni/loopback "$CNI_DIR" "$CNI_MOD/plugins/main/loopback" 0 "$CNI_LD" ""
build_one cni/portmap "$CNI_DIR" "$CNI_MOD/plugins/meta/portmap" 0 "$CNI_LD" ""

# ---- CoreDNS ------------------------------------------------------------------
# As CoreDNS's Makefile: CGO_ENABLED=0, `-s -w` and coremain.GitCommit stamped
# (empty: the proxy does not carry the commit). The default plugin set of the
# release (plugin.cfg as published) is what the module's main package links.
CDNS_DIR="$(simple_wrapper coredns github.com/coredns/coredns "$COREDNS_VERSION")"
build_one coredns "$CDNS_DIR" github.com/coredns/coredns 0 "-X github.com/coredns/coredns/coremain.GitCommit=" ""

# ---- pause image ------------------------------------------------------------
# build/pause/Makefile: CFLAGS = -Os -Wall -Werror -static -DVERSION=v$(TAG)-$(REV),
# then strip; REV is `git describe --contains` of the source commit, which for
# a release's tree is that release's tag. The image: the one file /pause,
# USER 65535:65535, ENTRYPOINT ["/pause"] (build/pause/Dockerfile).
PAUSE_CFLAGS="-Os -Wall -Werror -static -DVERSION=v$PAUSE_VERSION-$K8S_VERSION"
PAUSE_RECIPE="build/pause/linux/pause.c from k8s.io/kubernetes@$K8S_VERSION cflags=$PAUSE_CFLAGS image=$PAUSE_IMAGE epoch=$BUILD_EPOCH"
if up_to_date pause.oci.tar "$PAUSE_RECIPE"; then
  log "pause.oci.tar: already built"
else
  invalidate
  t0=$(date +%s)
  K8S_SRC="$(module_info "k8s.io/kubernetes@$K8S_VERSION" Dir)"
  MAKE_TAG="$(sed -n 's/^TAG ?= *\([^[:space:]]*\).*/\1/p' "$K8S_SRC/build/pause/Makefile")"
  if [[ "$MAKE_TAG" != "$PAUSE_VERSION" ]]; then
    echo "build.sh: Kubernetes $K8S_VERSION's build/pause/Makefile has TAG '$MAKE_TAG', but PAUSE_VERSION is $PAUSE_VERSION; set PAUSE_VERSION=$MAKE_TAG (and the constant in e2e/testenv/src/toolchain.rs)" >&2
    exit 1
  fi
  PAUSE_WORK="$(mktemp -d)"
  mkdir "$PAUSE_WORK/rootfs"
  # Compiled from a copy so no module-cache path ends up in the object.
  cp "$K8S_SRC/build/pause/linux/pause.c" "$PAUSE_WORK/pause.c"
  # shellcheck disable=SC2086 # PAUSE_CFLAGS is a list of flags
  (cd "$PAUSE_WORK" && gcc $PAUSE_CFLAGS -o rootfs/pause pause.c && strip rootfs/pause)
  chmod 0755 "$PAUSE_WORK/rootfs/pause"
  bash "$SCRIPT_DIR/oci-image.sh" --rootfs "$PAUSE_WORK/rootfs" --name "$PAUSE_IMAGE" \
    --out "$BIN/pause.oci.tar" --entrypoint /pause --user 65535:65535 --epoch "$BUILD_EPOCH" --title pause
  rm -rf "$PAUSE_WORK"
  record pause.oci.tar "$PAUSE_RECIPE"
  log "pause.oci.tar: $PAUSE_IMAGE built in $(( $(date +%s) - t0 ))s"
fi

# ---- CoreDNS image ----------------------------------------------------------
# As CoreDNS's Dockerfile: the one program /coredns, run as the nonroot user
# 65532, ENTRYPOINT ["/coredns"]. No CA bundle: kubeseed's Corefile forwards
# plain DNS only.
COREDNS_SUM="$(sha256sum <"$BIN/coredns")"
COREDNS_RECIPE="coredns ${COREDNS_SUM%% *} image=$COREDNS_IMAGE epoch=$BUILD_EPOCH"
if up_to_date coredns.oci.tar "$COREDNS_RECIPE"; then
  log "coredns.oci.tar: already built"
else
  invalidate
  CDNS_WORK="$(mktemp -d)"
  mkdir "$CDNS_WORK/rootfs"
  install -m 0755 "$BIN/coredns" "$CDNS_WORK/rootfs/coredns"
  bash "$SCRIPT_DIR/oci-image.sh" --rootfs "$CDNS_WORK/rootfs" --name "$COREDNS_IMAGE" \
    --out "$BIN/coredns.oci.tar" --entrypoint /coredns --user 65532:65532 --epoch "$BUILD_EPOCH" --title coredns
  rm -rf "$CDNS_WORK"
  record coredns.oci.tar "$COREDNS_RECIPE"
  log "coredns.oci.tar: $COREDNS_IMAGE built"
fi

# ---- kubeadm ------------------------------------------------------------------
# Only the seed benchmark uses it (the reference `kubeadm init`), so it comes
# last. Static like upstream (it is in KUBE_STATIC_BINARIES).
build_one kubeadm "$K8S_DIR" k8s.io/kubernetes/cmd/kubeadm 0 "$K8S_LD" "$K8S_TAGS"

# ---- manifest and stamp ---------------------------------------------------
# Hashing ~800 MB takes seconds; when nothing was rebuilt and the manifest
# already lists exactly these files, it is still right.
if [[ "$BUILT" -eq 0 && -f "$BIN/SHA256SUMS" \
      && "$(cut -c67- "$BIN/SHA256SUMS")" == "$(printf '%s\n' "${PROGRAMS[@]}" "${FILES[@]}")" ]]; then
  log "SHA256SUMS kept: nothing was rebuilt"
else
  (cd "$BIN" && sha256sum "${PROGRAMS[@]}" "${FILES[@]}" >SHA256SUMS.tmp && mv -f SHA256SUMS.tmp SHA256SUMS)
fi
cat >"$ROOT/versions.env.tmp" <<EOF
K8S_VERSION=$K8S_VERSION
ETCD_VERSION=$ETCD_VERSION
HELM4_VERSION=$HELM4_VERSION
HELM3_VERSION=$HELM3_VERSION
CONTAINERD_VERSION=$CONTAINERD_VERSION
RUNC_VERSION=$RUNC_VERSION
CNI_PLUGINS_VERSION=$CNI_PLUGINS_VERSION
PAUSE_VERSION=$PAUSE_VERSION
PAUSE_IMAGE=$PAUSE_IMAGE
COREDNS_VERSION=$COREDNS_VERSION
COREDNS_IMAGE=$COREDNS_IMAGE
GO_VERSION=$GO_VERSION
BUILD_DATE=$BUILD_DATE
EOF
cp "$ROOT/versions.env.tmp" "$BIN/.versions.env.tmp"
mv -f "$BIN/.versions.env.tmp" "$BIN/versions.env"
mv -f "$ROOT/versions.env.tmp" "$ROOT/versions.env"
printf '%s' "$SIGNATURE" >"$STAMP.tmp"
mv -f "$STAMP.tmp" "$STAMP"
if [[ "$BUILT" -gt 0 ]]; then
  log "toolchain complete in $(( $(date +%s) - T_ALL ))s ($BUILT built): $BIN"
else
  log "toolchain checked in $(( $(date +%s) - T_ALL ))s, nothing to build: $BIN"
fi
finish
}
