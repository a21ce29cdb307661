# kubeseed preflight: gathers facts about this host. READ-ONLY: it changes
# nothing. POSIX sh with coreutils-level tools; every section falls back to
# /proc or /sys when an optional program is missing. Output: sections, each
# starting with a line "@@kubeseed:NAME", then raw content.
export LC_ALL=C
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
s() { printf '\n@@kubeseed:%s\n' "$1"; }
s version; echo 1
s clock-start; date +%s.%N
s uid; id -u
s user; printf '%s\n' "${SUDO_USER:-$(id -un 2>/dev/null)}"
s uname; uname -s; uname -r; uname -m
s hostname; uname -n
s machine-id; cat /etc/machine-id 2>/dev/null
s product-uuid; cat /sys/class/dmi/id/product_uuid 2>/dev/null
s container; cat /run/systemd/container 2>/dev/null || { [ -e /.dockerenv ] && echo docker; }
s links
for d in /sys/class/net/*; do
  [ -e "$d" ] || continue
  t=-; a=-
  read -r t 2>/dev/null <"$d/type"
  read -r a 2>/dev/null <"$d/address"
  printf '%s %s %s\n' "${d##*/}" "${t:--}" "${a:--}"
done
s addresses; ip -o addr show 2>/dev/null
s swaps; cat /proc/swaps 2>/dev/null
s init
[ -d /run/systemd/system ] && echo systemd
c=; read -r c 2>/dev/null </proc/1/comm && echo "pid1 $c"
s modules
r=$(uname -r)
for m in overlay br_netfilter; do
  l=no; [ -d "/sys/module/$m" ] && l=yes
  p=no; grep -q "^$m " /proc/modules 2>/dev/null && p=yes
  b=no; grep -q "/$m\.ko" "/lib/modules/$r/modules.builtin" 2>/dev/null && b=yes
  f=no; grep -q "/$m\.ko" "/lib/modules/$r/modules.dep" 2>/dev/null && f=yes
  echo "$m sys=$l proc=$p builtin=$b file=$f"
done
grep -q '[[:space:]]overlay$' /proc/filesystems 2>/dev/null && echo "filesystem overlay"
s sysctl
for k in net/bridge/bridge-nf-call-iptables net/ipv4/ip_forward vm/overcommit_memory vm/panic_on_oom \
  kernel/panic kernel/panic_on_oops kernel/keys/root_maxkeys kernel/keys/root_maxbytes; do
  f=/proc/sys/$k
  if [ -e "$f" ]; then
    # Not `read`: dash reads byte by byte, and a sysctl read at an offset
    # returns nothing (only the first digit would arrive).
    v=$(cat "$f" 2>/dev/null); w=ro; [ -w "$f" ] && w=rw
    echo "$k $w $v"
  else
    echo "$k absent"
  fi
done
s proc-mounts; grep ' /proc' /proc/self/mountinfo 2>/dev/null
s cgroup-fs; stat -f -c %T /sys/fs/cgroup 2>/dev/null
s cgroup-mounts; grep ' cgroup' /proc/self/mounts 2>/dev/null
s proc-cgroups; cat /proc/cgroups 2>/dev/null
s cgroup2-controllers; cat /sys/fs/cgroup/cgroup.controllers 2>/dev/null
s capabilities; grep '^Cap' /proc/self/status 2>/dev/null
s cpus; nproc 2>/dev/null || grep -c '^processor' /proc/cpuinfo
s meminfo; grep '^MemTotal:' /proc/meminfo
s os-release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null
s programs
for p in sh mount umount ip iptables sha256sum stat tar systemctl journalctl mktemp install modprobe sysctl conntrack socat ss sudo; do
  echo "$p $(command -v "$p" 2>/dev/null || echo -)"
done
s listeners
if out=$(ss -tlnp 2>/dev/null); then
  echo '#ss'; printf '%s\n' "$out"
else
  echo '#proc'; cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
  s socket-owners; ls -l /proc/[0-9]*/fd 2>/dev/null | grep -e '^/proc/' -e 'socket:'
  s process-names; grep -H '' /proc/[0-9]*/comm 2>/dev/null
fi
s etc-kubernetes
if [ -d /etc/kubernetes ]; then
  echo '#dir'
  for f in /etc/kubernetes/* /etc/kubernetes/*/* /etc/kubernetes/*/*/* /etc/kubernetes/*/*/*/*; do
    [ -f "$f" ] && echo "$f"
  done
fi
s var-lib-etcd
if [ -d /var/lib/etcd ]; then
  echo '#dir'
  for f in /var/lib/etcd/* /var/lib/etcd/.[!.]*; do
    [ -e "$f" ] && echo "${f##*/}"
  done
fi
s var-lib-kubeseed
if [ -d /var/lib/kubeseed ]; then
  echo '#dir'
  for f in /var/lib/kubeseed/* /var/lib/kubeseed/*/*; do
    [ -f "$f" ] && echo "$f"
  done
fi
s cluster-id; head -c 512 /var/lib/kubeseed/cluster-id 2>/dev/null
s ca-crt; head -c 65536 /etc/kubernetes/pki/ca.crt 2>/dev/null
s etcd-ca-crt; head -c 65536 /etc/kubernetes/pki/etcd/ca.crt 2>/dev/null
s clock-end; date +%s.%N
s end
true
