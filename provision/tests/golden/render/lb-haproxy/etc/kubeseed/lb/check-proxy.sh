#!/bin/bash
# Written by kubeseed; local changes are overwritten. Change the cluster's objects instead.
# keepalived's check of this host's proxy: 0 only if kubeseed-haproxy.service is
# active and 127.0.0.1:6443 accepts a TCP connection within 1 s. Two
# failures in a row put the VRRP instance in FAULT, which gives the VIP up.
: "${PATH:=/usr/sbin:/usr/bin:/sbin:/bin}"
systemctl is-active --quiet kubeseed-haproxy.service || exit 1
timeout 1 bash -c 'exec 3<>/dev/tcp/127.0.0.1/6443' 2>/dev/null || exit 1
exit 0
