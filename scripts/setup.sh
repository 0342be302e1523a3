#!/usr/bin/env bash
# Installs what kflan's build, tests and lab need on a fresh Debian/Ubuntu machine:
# Debian packages for the lab (systemd-nspawn hosts; gcc and libc6-dev for the static flanneld
# build, busybox-static for the lab's container image; tinyproxy, the real HTTP proxy that
# test/e2e/proxy.test.ts downloads through) and the npm dependencies. The lab's
# bundles are built with Go at /usr/local/go (not a Debian package: bookworm's is too old).
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(debootstrap systemd-container iproute2 iptables openssl openssh-client etcd-client jq curl ca-certificates util-linux
  busybox-static gcc libc6-dev tinyproxy)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# The lab builds its etcd bundle with `apt-get download etcd-server etcd-client`: the package
# lists must know them.
lists_stale=0
apt-cache policy etcd-server 2>/dev/null | grep -q 'Candidate: [0-9]' || lists_stale=1
if [ ${#missing[@]} -gt 0 ] || [ $lists_stale -eq 1 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages or package lists: ${missing[*]:-apt-get update} (run as root)" >&2
    exit 1
  fi
  apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

[ -x /usr/local/go/bin/go ] || echo "setup: warning: no Go at /usr/local/go/bin: the lab cannot build its flannel/etcd bundles" >&2
# The Vagrant job's packages (vagrant, vagrant-libvirt, libvirt, QEMU, actionlint) are installed by the
# commands that boot VMs, `npm test` and `npm run test:vagrant` (scripts/setup-vagrant.sh), not here:
# the demo does not need them.

# `npm ci`: exactly the locked versions (a lock file out of step with package.json is an error,
# as in any CI). Skipped when node_modules was installed from this very lock file.
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.kflan-lock-sha256 2>/dev/null)" != "$lock_sum" ]; then
  npm ci --no-audit --no-fund
  echo "$lock_sum" >node_modules/.kflan-lock-sha256
fi
