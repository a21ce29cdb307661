#!/bin/sh
# Turns a fresh debootstrap tree into the lab's base root file system.
# Usage: prepare-base.sh ROOT
# Runs on the runner, before the tree is published in the cache; every host
# boots from an overlay of this tree, so whatever must differ per host
# (machine-id, SSH host key, hostname) is removed here and written by the lab
# into each host's own upper layer.
set -eu
root=$1

: > "$root/etc/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*
rm -f "$root/var/lib/dbus/machine-id"

mkdir -p "$root/etc/ssh/sshd_config.d"
cat > "$root/etc/ssh/sshd_config.d/kubeseed-lab.conf" <<'CONF'
# The lab writes exactly one host key per host and pins it on the runner.
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UseDNS no
CONF

# Hosts have no route off the lab's bridge: nothing should try to resolve
# names through the runner's resolvers.
rm -f "$root/etc/resolv.conf"
: > "$root/etc/resolv.conf"

# A host's journal lives only as long as the host; writing it to the overlay
# would only cost disk time.
mkdir -p "$root/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\n' > "$root/etc/systemd/journald.conf.d/kubeseed-lab.conf"

# Load balancers start only when kubeseed configures them; timers that would
# reach for the network have nowhere to go.
systemctl --root="$root" disable haproxy.service nginx.service >/dev/null 2>&1 || true
systemctl --root="$root" mask apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true

# nspawn mounts the cgroup v1 controllers read-only inside a machine; the
# lab gives each host its own cgroup subtree (and cgroup namespace), so
# making the host's view writable lets containerd and the kubelet manage
# cgroups for their containers without touching any other host's.
cat > "$root/etc/systemd/system/kubeseed-lab-cgroups.service" <<'UNIT'
[Unit]
Description=Make this lab host's cgroup controllers writable
DefaultDependencies=no
Before=sysinit.target containerd.service
ConditionVirtualization=container

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for m in /sys/fs/cgroup/*/; do if mountpoint -q "$m"; then mount -o remount,bind,rw "$m"; fi; done'

[Install]
WantedBy=sysinit.target
UNIT
systemctl --root="$root" enable kubeseed-lab-cgroups.service >/dev/null 2>&1

# nspawn mounts /sys before the machine joins its network namespace, so
# /sys/class/net would list the runner's links (and the runner's MACs). A
# sysfs mounted from inside the host shows its own; bind its net parts over.
cat > "$root/etc/systemd/system/kubeseed-lab-sysfs-net.service" <<'UNIT'
[Unit]
Description=Show this lab host's own network links in /sys
DefaultDependencies=no
Before=sysinit.target containerd.service
ConditionVirtualization=container

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'mkdir -p /run/kubeseed-lab/sysfs && mount -t sysfs -o ro sysfs /run/kubeseed-lab/sysfs && mount --bind /run/kubeseed-lab/sysfs/class/net /sys/class/net && mount --bind /run/kubeseed-lab/sysfs/devices/virtual/net /sys/devices/virtual/net'

[Install]
WantedBy=sysinit.target
UNIT
systemctl --root="$root" enable kubeseed-lab-sysfs-net.service >/dev/null 2>&1

# nspawn mounts /proc/sys read-only, /proc/sys/net included, although each
# host has a network namespace of its own: what a node sets there (forwarding
# for its pods, route_localnet, bridge netfilter) would fail. Writes under
# /proc/sys/net only reach the writer's own namespace, so making that subtree
# writable gives each host what a real machine has, and nothing of the
# runner's (vm/, kernel/ stay read-only).
cat > "$root/etc/systemd/system/kubeseed-lab-procsys-net.service" <<'UNIT'
[Unit]
Description=Make this lab host's own network sysctls writable
DefaultDependencies=no
Before=sysinit.target systemd-sysctl.service containerd.service
ConditionVirtualization=container

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net'

[Install]
WantedBy=sysinit.target
UNIT
systemctl --root="$root" enable kubeseed-lab-procsys-net.service >/dev/null 2>&1

# A tiny OCI image (static busybox) so containerd can run a container without
# any registry: `ctr images import /usr/local/share/kubeseed-lab/busybox-oci.tar`.
sh "$(dirname "$0")/oci-busybox.sh" "$root/bin/busybox" "$root/usr/local/share/kubeseed-lab/busybox-oci.tar"
