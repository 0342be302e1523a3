#!/usr/bin/env bash
# test/vagrant/inventory.sh: turns the running Vagrant machines into a kflan inventory.
#
#   inventory.sh ETCD_TARBALL FLANNEL_TARBALL [OUT]     (run in test/vagrant/, or set VAGRANT_CWD)
#
# Reads `vagrant ssh-config` (user, NAT address and port, the per-machine private key Vagrant inserted), then asks
# each machine once over that SSH connection for its eth1 (private network) address and its ed25519 host key. The
# inventory then names the eth1 address (what etcd and flanneld bind to), `interface: eth1`, the same private key,
# and the host key's fingerprint (kflan checks it when it connects to eth1; no trust on first use there).
# Roles: machines m* are masters (and etcd members), n* nodes; flanneld + docker run on the nodes, or on every
# machine when there are fewer than two nodes (doctor's data-plane check needs two flannel hosts).
# OUT defaults to stdout. Environment: KFLAN_VAGRANT_IFACE (default eth1), KFLAN_VAGRANT_POD_NETWORK
# (default 10.244.0.0/16), KFLAN_VAGRANT_CLUSTER (default vagrant); KFLAN_VAGRANT_LIBVIRT_DRIVER=qemu (software
# emulation, as the Vagrantfile) adds a `timeouts:` section for guests that need minutes where a real machine
# needs seconds (docs/inventory.md, "Timeouts").
set -Eeuo pipefail
# shellcheck disable=SC2154 # rc is set inside the trap
trap 'rc=$?; echo "inventory: error: \"$BASH_COMMAND\" failed (exit $rc) at line $LINENO" >&2; exit $rc' ERR

die() { printf 'inventory: error: %s\n' "$*" >&2; exit 1; }

(($# == 2 || $# == 3)) || die "usage: inventory.sh ETCD_TARBALL FLANNEL_TARBALL [OUT]"
ETCD_TGZ=$(readlink -f "$1")
FLANNEL_TGZ=$(readlink -f "$2")
OUT=${3:-/dev/stdout}
IFACE=${KFLAN_VAGRANT_IFACE:-eth1}
POD_NET=${KFLAN_VAGRANT_POD_NETWORK:-10.244.0.0/16}
CLUSTER=${KFLAN_VAGRANT_CLUSTER:-vagrant}
[[ $IFACE =~ ^[a-zA-Z0-9._-]{1,15}$ ]] || die "KFLAN_VAGRANT_IFACE=$IFACE is not an interface name"
[[ $CLUSTER =~ ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ ]] || die "KFLAN_VAGRANT_CLUSTER=$CLUSTER is not a DNS label"
for t in "$ETCD_TGZ" "$FLANNEL_TGZ"; do [[ -f $t ]] || die "$t: no such file"; done

# Release tarball name -> version: etcd-v3.5.35-linux-amd64.tar.gz -> 3.5.35.
version_of() {
  local v
  v=$(basename "$1" | sed -nE 's/^[a-z]+-v([0-9]+\.[0-9]+\.[0-9]+)-linux-[a-z0-9]+\.tar\.gz$/\1/p')
  [[ -n $v ]] || die "$1: not named like a release tarball (NAME-vX.Y.Z-linux-ARCH.tar.gz)"
  echo "$v"
}

# YAML double-quoted scalar (paths may hold anything).
q() { jq -Rn --arg s "$1" '$s'; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
vagrant ssh-config >"$tmp/ssh_config" 2>"$tmp/err" || die "vagrant ssh-config failed: $(cat "$tmp/err")"
mapfile -t names < <(awk '$1 == "Host" {print $2}' "$tmp/ssh_config")
((${#names[@]})) || die "vagrant ssh-config lists no running machine"

field() { awk -v h="$1" -v k="$2" '$1 == "Host" {cur = $2} cur == h && $1 == k {sub(/^[ \t]*[^ \t]+[ \t]+/, ""); print; exit}' "$tmp/ssh_config"; }

hosts_yaml= masters=() nodes=() all=()
for name in "${names[@]}"; do
  [[ $name =~ ^[a-z0-9]([a-z0-9-]*[a-z0-9])?$ ]] || die "machine name '$name' is not a DNS label"
  user=$(field "$name" User)
  key=$(field "$name" IdentityFile | sed -E 's/^"(.*)"$/\1/')
  [[ -f $key ]] || die "$name: identity file $key (from vagrant ssh-config) not found"
  # One round trip: the private address and the host key sshd serves.
  facts=$(ssh -F "$tmp/ssh_config" "$name" \
    "ip -4 -o addr show dev $IFACE scope global; cat /etc/ssh/ssh_host_ed25519_key.pub" 2>"$tmp/err") ||
    die "$name: ssh through vagrant ssh-config failed: $(tail -n3 "$tmp/err")"
  address=$(awk '$3 == "inet" {sub(/\/.*/, "", $4); print $4; exit}' <<<"$facts")
  [[ -n $address ]] || die "$name: no IPv4 address on $IFACE"
  grep '^ssh-ed25519 ' <<<"$facts" >"$tmp/$name.pub" || die "$name: no /etc/ssh/ssh_host_ed25519_key.pub"
  fp=$(ssh-keygen -lf "$tmp/$name.pub" | awk '{print $2}')
  [[ $fp == SHA256:* ]] || die "$name: cannot fingerprint its host key"
  hosts_yaml+="  - name: $name
    address: $address
    interface: $IFACE
    hostKey: \"$fp\"
    ssh: {user: $(q "$user"), identityFile: $(q "$key")}
"
  all+=("$name")
  case $name in m*) masters+=("$name") ;; *) nodes+=("$name") ;; esac
done

list() { local IFS=,; echo "[$*]" | sed 's/,/, /g'; }
etcd=("${masters[@]}")
((${#etcd[@]})) || etcd=("${all[0]}")
flannel=("${nodes[@]}")
((${#flannel[@]} >= 2)) || flannel=("${all[@]}")

cat >"$OUT" <<EOF
# Written by test/vagrant/inventory.sh from \`vagrant ssh-config\`: the running Vagrant machines as a kflan inventory.
cluster: $CLUSTER
hosts:
${hosts_yaml}roles:
  masters: $(list "${masters[@]}")
  nodes: $(list "${nodes[@]}")
  etcd: $(list "${etcd[@]}")
  flannel: $(list "${flannel[@]}")
etcd:
  version: "$(version_of "$ETCD_TGZ")"
  tarball: $(q "$ETCD_TGZ")
flannel:
  version: "$(version_of "$FLANNEL_TGZ")"
  tarball: $(q "$FLANNEL_TGZ")
  network: $POD_NET
  backend:
    type: vxlan
docker:
  enabled: true
EOF
if [[ ${KFLAN_VAGRANT_LIBVIRT_DRIVER:-} == qemu ]]; then
  # Several times kflan's defaults: under QEMU TCG on a loaded 2-core machine `systemctl restart docker` took more
  # than 90 s with 3 guests and doctor's checks script more than 20 s right after init; doctor's etcdctl requests
  # (2 s each by default, several at once on one emulated vCPU) timed out against a healthy member (docs/vagrant.md).
  cat >>"$OUT" <<EOF
timeouts: # software-emulated guests (KFLAN_VAGRANT_LIBVIRT_DRIVER=qemu)
  etcdStart: 4m
  flannelStart: 4m
  dockerStart: 6m
  doctorHost: 2m
  etcdRequest: 30s
EOF
fi
