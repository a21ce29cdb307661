#!/bin/sh
# Written by kubeseed; local changes are overwritten. Change the cluster's objects instead.
# Makes the kernel's routes of protocol 152 in the main table equal to the
# routes file, one route a line: `DESTINATION via NEXT-HOP # NODE`.
#
#   pod-routes.sh [FILE]           sync; exits 1 if a route could not be made
#   pod-routes.sh --check [FILE]   exits 0 only if the kernel already matches
#
# FILE defaults to /etc/kubeseed/pod-routes.
#
# Protocol 152 is kubeseed's own mark: no iproute2 rt_protos name, no
# kernel RTPROT_* value, and not a number FRR (186-198), BIRD (12) or Calico
# (80) uses. So every route carrying it is kubeseed's, and removing the ones
# the file no longer lists never touches a route anyone else made. A
# destination that a route of another protocol already holds (the node's own
# pod range on its bridge, an administrator's route) is reported and left
# alone: `ip route replace` would silently take it over.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
LC_ALL=C
export LC_ALL
# Words of `ip` output are split below; none of them is a pattern.
set -f
proto=152
mode=sync
if [ "${1:-}" = --check ]; then
  mode=check
  shift
fi
file=${1:-/etc/kubeseed/pod-routes}
nl='
'

if [ ! -r "$file" ]; then
  echo "pod-routes: cannot read $file" >&2
  exit 1
fi

family() {
  case $1 in
    *:*) echo -6 ;;
    *) echo -4 ;;
  esac
}

# "DESTINATION NEXT-HOP", one a line, for each route of the file.
wanted() {
  while read -r dst word via rest; do
    case $dst in '' | '#'*) continue ;; esac
    case $rest in '' | '#'*) ;; *) word= ;; esac
    if [ "$word" != via ] || [ -z "$via" ]; then
      echo "pod-routes: $file: not \`DESTINATION via NEXT-HOP # NODE\`: $dst $word $via $rest" >&2
      return 1
    fi
    echo "$dst $via"
  done <"$file"
}

# "DESTINATION NEXT-HOP", one a line, for each route of protocol $proto, in
# the file's notation (`ip` leaves /32 and /128 out). A route that is not a
# plain unicast one, which the file cannot hold, also gets its type.
current() {
  for f in -4 -6; do
    ip "$f" route show table main proto "$proto" | while read -r dst rest; do
      type=
      case $dst in
        unreachable | blackhole | prohibit | throw | local | broadcast | multicast | anycast | nat)
          type=$dst
          dst=${rest%% *}
          rest=${rest#"$dst"}
          ;;
      esac
      case $dst in
        default) if [ "$f" = -6 ]; then dst=::/0; else dst=0.0.0.0/0; fi ;;
        */*) ;;
        *) if [ "$f" = -6 ]; then dst=$dst/128; else dst=$dst/32; fi ;;
      esac
      via=-
      # shellcheck disable=SC2086 # split into words on purpose
      set -- $rest
      while [ $# -gt 1 ]; do
        if [ "$1" = via ]; then
          via=$2
          break
        fi
        shift
      done
      echo "$dst $via${type:+ $type}"
    done
  done
}

want=$(wanted) || exit 1

if [ "$mode" = check ]; then
  if [ "$(printf '%s\n' "$want" | sort)" = "$(current | sort)" ]; then
    exit 0
  fi
  echo "pod-routes: the kernel's routes of protocol $proto differ from $file" >&2
  exit 1
fi

# The unit at boot and a run over SSH take turns.
if command -v flock >/dev/null 2>&1; then
  exec 9<"$(dirname "$file")"
  flock -w 60 9
fi

# Routes already as the file says are not replaced: a run with nothing to
# do changes nothing in the kernel.
have=$(current)
status=0
while read -r dst via; do
  [ -n "$dst" ] || continue
  case "$nl$have$nl" in *"$nl$dst $via$nl"*) continue ;; esac
  f=$(family "$dst")
  all=$(ip "$f" route show table main exact "$dst" | grep -c .)
  ours=$(ip "$f" route show table main exact "$dst" proto "$proto" | grep -c .)
  if [ "$all" -gt "$ours" ]; then
    echo "pod-routes: $dst already has a route that is not kubeseed's; left alone:" >&2
    ip "$f" route show table main exact "$dst" >&2
    status=1
    continue
  fi
  ip "$f" route replace "$dst" via "$via" proto "$proto" || status=1
done <<EOF
$want
EOF

while read -r dst via type; do
  [ -n "$dst" ] || continue
  if [ -z "$type" ]; then
    case "$nl$want$nl" in *"$nl$dst $via$nl"*) continue ;; esac
  fi
  if ip "$(family "$dst")" route del ${type:+"$type"} "$dst" table main proto "$proto"; then
    echo "pod-routes: removed ${type:+$type }$dst via $via"
  else
    status=1
  fi
done <<EOF
$(current)
EOF

if [ "$status" -eq 0 ]; then
  echo "pod-routes: $(printf '%s' "$want" | grep -c .) routes of protocol $proto, as in $file"
fi
exit "$status"
