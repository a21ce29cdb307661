#!/usr/bin/env bash
# Installs the Debian packages kubeseed's tests use, only those missing.
set -euo pipefail

packages=(
  openssh-server openssh-client sudo   # the SSH engine's tests start a real sshd
  dropbear-bin                         # ... and a Dropbear server, as small hosts run
  openssl                              # PKI tests verify chains with `openssl verify`
  gcc libc6-dev                        # the toolchain: kubelet and runc link with cgo, the pause image is C
  libseccomp-dev pkg-config            # the toolchain: runc links libseccomp.a statically, as upstream's does
  util-linux                           # nsenter, setpriv: the lab and the harness
  debootstrap systemd-container        # the lab: base root file system, systemd-nspawn
  iproute2 iptables                    # the lab: namespaces, bridge, veth
  containerd                           # importing the operator image with `ctr`
  busybox-static                       # a tiny local image for containers in the lab
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
