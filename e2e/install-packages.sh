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

# The API load balancer's renderers are checked by the real programs
# (`haproxy -c`, `nginx -t` with the stream module, `keepalived -t`):
# provision/tests/render_load_balancer.rs. kubeseed runs them under units of
# its own on load-balancer hosts; on the runner only their test modes run, so
# their distribution services must not start (nginx would take port 80): see
# below.
lb_packages=(haproxy keepalived nginx-light libnginx-mod-stream)

is_missing() {
  ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for p in "${packages[@]}"; do
  if is_missing "$p"; then missing+=("$p"); fi
done
lb_missing=()
for p in "${lb_packages[@]}"; do
  if is_missing "$p"; then lb_missing+=("$p"); fi
done
export DEBIAN_FRONTEND=noninteractive
if [ "${#missing[@]}" -gt 0 ] || [ "${#lb_missing[@]}" -gt 0 ]; then
  apt-get update -qq
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "${#lb_missing[@]}" -gt 0 ]; then
  echo "== installing Debian packages without starting their services: ${lb_missing[*]}"
  # invoke-rc.d asks policy-rc.d before it starts a service; 101 means "not
  # allowed". Only for this install, and a policy-rc.d already there (a
  # container image's) is left as it is.
  policy=/usr/sbin/policy-rc.d
  own_policy=false
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# kubeseed e2e/install-packages.sh: no service starts during this install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=true
    trap 'rm -f "$policy"' EXIT
  fi
  # Nor at the next boot of a runner with systemd: the units this install
  # brings are disabled (ones already there are left as they were).
  new_units=()
  for unit in haproxy.service nginx.service keepalived.service; do
    if [ ! -e "/lib/systemd/system/$unit" ]; then new_units+=("$unit"); fi
  done
  apt-get install -y -qq --no-install-recommends "${lb_missing[@]}"
  for unit in "${new_units[@]}"; do
    systemctl disable --quiet "$unit" 2>/dev/null || true
  done
  if [ "$own_policy" = true ]; then
    rm -f "$policy"
    trap - EXIT
  fi
fi
