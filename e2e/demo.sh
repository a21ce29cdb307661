#!/usr/bin/env bash
# kubeseed's whole story on one Linux machine, for someone trying it: a lab of
# seven real hosts (systemd-nspawn machines), host1 seeded with `bootstrap
# seed`, then everything else asked of the operator with `kubectl apply`:
# host2 and host3 as masters, host4 and host5 as an HAProxy + keepalived pair
# holding a VIP, host6 and host7 as workers; the admin kubeconfig moved to the
# VIP (`bootstrap use-endpoint`) and a Deployment of a locally built image
# spread over the workers. Builds or reuses what it needs (the toolchain from
# Go modules: ~40-60 min the first time on 2 cores, then seconds). Running it
# again picks up where it stopped.
#
# Usage:   bash e2e/demo.sh         bring it all up (needs root)
#          bash e2e/demo.sh down    remove everything it made: hosts, links,
#                                   namespaces, the cluster's state directory
#                                   and kubeconfig (the build caches stay)
# Env:     KUBESEED_LAB_NAME (default kslab), KUBESEED_LAB_SUBNET (default
#          10.213.0.0/24), KUBESEED_CACHE, KUBESEED_BUNDLE (a bundle you
#          already have; default: build or reuse the cached one).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "e2e/demo.sh: the lab needs root (network namespaces, systemd-nspawn); run it with sudo" >&2
  exit 2
fi
HOSTS=7
name="${KUBESEED_LAB_NAME:-kslab}"
export KUBESEED_LAB_NAME="$name"
data="${KUBESEED_LAB_DIR:-/var/lib/kubeseed-lab}/$name"
# The demo's cluster lives and dies with its lab: its state directory (CA
# keys, admin.conf) is inside the lab's data directory, which `lab down`
# removes whole.
export KUBESEED_STATE_DIR="$data/cluster"
cache="${KUBESEED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kubeseed}"
last_value() { printf '%s\n' "$2" | sed -n "s/^$1=//p" | tail -n 1; }

cargo build --locked -q -p kubeseed-e2e --bin lab -p kubeseed-bootstrap --bin bootstrap
target_dir=$(cargo metadata --format-version 1 --no-deps --locked | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
lab="$target_dir/debug/lab"
bootstrap="$target_dir/debug/bootstrap"

if [ "${1:-up}" = down ]; then
  if "$lab" status >/dev/null 2>&1; then
    "$lab" down
  else
    echo "lab $name is not up: nothing to remove"
  fi
  echo "kept: the build caches in $cache ($(du -sh "$cache" 2>/dev/null | cut -f1)); remove them with: rm -rf $cache"
  exit 0
elif [ "${1:-up}" != up ]; then
  echo "usage: bash e2e/demo.sh [up|down]" >&2
  exit 2
fi

if "$lab" status >/dev/null 2>&1; then
  have=$("$lab" status --json | grep -o '"address":"[0-9.]*"' | wc -l)
  if [ "$have" -lt "$HOSTS" ]; then
    echo "e2e/demo.sh: lab $name is up with $have hosts; the demo needs $HOSTS." >&2
    echo "  Remove it with 'bash e2e/demo.sh down', or use another lab: KUBESEED_LAB_NAME=demo KUBESEED_LAB_SUBNET=10.214.0.0/24 bash e2e/demo.sh" >&2
    exit 1
  fi
fi

# host1: `bootstrap seed` (brings the lab up first when it is not).
bash e2e/seed-lab.sh "$HOSTS"

toolchain=$(last_value KUBESEED_TOOLCHAIN "$(bash e2e/toolchain/build.sh)")
kubeconfig="$KUBESEED_STATE_DIR/admin.conf"
kubectl() { "$toolchain/kubectl" --kubeconfig "$kubeconfig" "$@"; }
addresses=$("$lab" status --json | grep -o '"address":"[0-9.]*"' | cut -d'"' -f4)
address() { printf '%s\n' "$addresses" | sed -n "${1}p"; }
# Pinned host keys, from the lab's known_hosts (a real user copies them from
# each host's /etc/ssh/ssh_host_ed25519_key.pub).
host_key() { awk -v a="$1" '$1 == a { print $2 " " $3 }' "$data/known_hosts"; }
vip="$(address 1 | cut -d. -f1-3).100"
host_yaml() {
  printf '    address: %s\n    hostKey: %s\n    sshKeySecretRef:\n      name: kubeseed-ssh\n' \
    "$(address "$1")" "$(host_key "$(address "$1")")"
}

echo "== kubectl apply: masters host2 and host3, the load balancer pair host4 + host5 (VIP $vip), workers host6 and host7" >&2
{
  for i in 2 3; do
    printf 'apiVersion: kubeseed.io/v1alpha1\nkind: ControlPlaneMember\nmetadata:\n  name: host%s\nspec:\n  host:\n' "$i"
    host_yaml "$i"
    printf '  etcd:\n    topology: Stacked\n---\n'
  done
  printf 'apiVersion: kubeseed.io/v1alpha1\nkind: ApiLoadBalancer\nmetadata:\n  name: api\nspec:\n  vip: %s/24\n  implementation: HAProxy\n  hosts:\n' "$vip"
  for i in 4 5; do
    printf '  - host:\n'
    host_yaml "$i" | sed 's/^/    /'
  done
  for i in 6 7; do
    printf -- '---\napiVersion: kubeseed.io/v1alpha1\nkind: WorkerNode\nmetadata:\n  name: host%s\nspec:\n  host:\n' "$i"
    host_yaml "$i"
  done
} | tee "$KUBESEED_STATE_DIR/demo-members.yaml" | kubectl apply -f -

# Until the kubeconfig moves to the VIP it names host1, whose apiserver
# restarts once while the VIP's certificates roll through the masters:
# `kubectl wait` gives up on a refused connection, so it is asked again.
wait_ready() {
  echo "== waiting for $1 to be Ready" >&2
  local deadline=$((SECONDS + $2))
  until kubectl wait --for=condition=Ready "$1" --timeout=60s 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "e2e/demo.sh: $1 is not Ready after $2 s; its conditions:" >&2
      kubectl get "$1" -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}' >&2 || true
      exit 1
    fi
    sleep 5
  done
}
wait_ready controlplanemember/host2 1200
wait_ready controlplanemember/host3 1200
wait_ready apiloadbalancer/api 600
wait_ready workernode/host6 900
wait_ready workernode/host7 900

echo "== the admin kubeconfig now goes through the VIP" >&2
# The masters' serving certificates are re-issued for the VIP one master at
# a time after the balancer is Ready; use-endpoint refuses (changing
# nothing) until they all name it, so it is asked again.
deadline=$((SECONDS + 900))
until "$bootstrap" use-endpoint; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "e2e/demo.sh: the masters' certificates still do not name $vip after 15 min" >&2
    kubectl get controlplanemembers >&2 || true
    exit 1
  fi
  sleep 10
done

echo "== a Deployment of a locally built image across the workers" >&2
image_line=$(last_value KUBESEED_NETCHECK_IMAGE "$(bash e2e/images/netcheck/build.sh)")
archive=${image_line%% *}
image=${image_line#* }
for i in 1 6 7; do
  ssh -i "$data/id_ed25519" -o UserKnownHostsFile="$data/known_hosts" -o StrictHostKeyChecking=yes \
    -o BatchMode=yes -o LogLevel=ERROR "root@$(address "$i")" \
    ctr --address /run/containerd/containerd.sock -n k8s.io images import --all-platforms - <"$archive" >/dev/null
done
sed "s|@IMAGE@|$image|" e2e/images/netcheck/manifests.yaml | kubectl apply -f -
kubectl rollout status deployment/netcheck --timeout=5m
kubectl get nodes -o wide
kubectl get pods -o wide

cat <<EOF

kubeseed's demo is up: 3 masters, an HA API endpoint on $vip, 2 workers.

  export KUBECONFIG=$kubeconfig
  export PATH=$toolchain:\$PATH
  kubectl get controlplanemembers,etcdmembers,apiloadbalancers,workernodes -A
  kubectl get --raw /api/v1/namespaces/default/services/netcheck:8080/proxy/healthz

Try next: delete a worker and watch it drain (kubectl delete workernode host7),
then apply it again (kubectl apply -f $KUBESEED_STATE_DIR/demo-members.yaml);
stop host1's apiserver (cargo run -p kubeseed-e2e --bin lab -- exec host1
'systemctl stop kube-apiserver') and keep using the API through the VIP.
Remove everything: bash e2e/demo.sh down
EOF
