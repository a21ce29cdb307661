#!/bin/bash
# Written by kubeseed; local changes are overwritten. Change the cluster's objects instead.
# keepalived's notify script, called as: vrrp-notify.sh TYPE NAME STATE PRIORITY
# Appends "<unix seconds.nanoseconds> NAME STATE" to /var/lib/kubeseed/lb/vrrp-transitions.log
# and writes STATE to /run/kubeseed-keepalived/state. Always exits 0.
: "${PATH:=/usr/sbin:/usr/bin:/sbin:/bin}"
name=${2:-}
state=${3:-}
now=$(date +%s.%N)
{
  mkdir -p /var/lib/kubeseed/lb
  exec 9>>/var/lib/kubeseed/lb/vrrp-transitions.log
  flock -w 5 9
  last=$(tail -n 1 /var/lib/kubeseed/lb/vrrp-transitions.log | cut -d ' ' -f 1)
  [[ $last =~ ^[0-9]+\.[0-9]{9}$ ]] || last=0.000000000
  printf '%s %s %s\n' "$now" "$name" "$state" >&9
  # A transition reported late does not overwrite a newer one.
  if (( 10#${now/./} >= 10#${last/./} )); then
    mkdir -p /run/kubeseed-keepalived
    printf '%s\n' "$state" >/run/kubeseed-keepalived/state.tmp
    mv -f /run/kubeseed-keepalived/state.tmp /run/kubeseed-keepalived/state
  fi
} 2>/dev/null
exit 0
