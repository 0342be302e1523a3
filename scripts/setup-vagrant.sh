#!/usr/bin/env bash
# Installs what the Vagrant job (test/vagrant/, docs/vagrant.md) needs on a Debian machine:
# Vagrant with the libvirt provider, libvirt + QEMU, qemu-img for the box, debootstrap for the box's root,
# and the tools the job uses around them. Called by `npm test` and `npm run test:vagrant`; safe to re-run.
set -euo pipefail

debs=(vagrant vagrant-libvirt libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
  debootstrap extlinux syslinux-common fdisk e2fsprogs dnsmasq-base iproute2 openssh-client jq tini)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# actionlint (GitHub workflow checker, used by test/vagrant/check-static.sh) is not packaged by Debian: built from
# its Go module (Go at /usr/local/go, as for the lab's flannel and etcd builds) into the Vagrant cache.
ACTIONLINT_VERSION=v1.7.12
al=${KFLAN_VAGRANT_CACHE:-/var/cache/kflan-vagrant}/bin/actionlint
if [ "$("$al" -version 2>/dev/null | head -n1)" != "$ACTIONLINT_VERSION" ]; then
  go=$(command -v go || echo /usr/local/go/bin/go)
  [ -x "$go" ] || { echo "setup-vagrant: Go is needed to build actionlint (/usr/local/go/bin/go)" >&2; exit 1; }
  echo "setup-vagrant: building actionlint $ACTIONLINT_VERSION"
  GOBIN=$(dirname "$al") "$go" install "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
fi

((${#missing[@]})) || exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-vagrant: missing Debian packages: ${missing[*]} (run as root)" >&2
  exit 1
fi
apt-cache policy vagrant-libvirt 2>/dev/null | grep -q 'Candidate: [0-9]' || apt-get update -qq
echo "setup-vagrant: installing ${missing[*]}"
# Recommends stay off (no desktop bits); policy-rc.d is not touched: on a machine whose PID 1 is not systemd the
# packages' postinst cannot start libvirtd anyway, and test/vagrant/run.sh starts (and stops) the daemons it needs.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
