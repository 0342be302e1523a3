#!/usr/bin/env bash
# test/vagrant/check-static.sh: checks what can be checked without booting anything (run.sh runs it first).
# Needs a running libvirtd (vagrant-libvirt validates against it).
# - `vagrant validate` of test/vagrant/Vagrantfile for the libvirt provider (kvm and qemu) and, without needing
#   VirtualBox installed, for VirtualBox (--ignore-provider), with the default and a bigger cluster;
# - a bad setting is refused with a message naming the variable;
# - .github/workflows/vagrant.yml against GitHub's workflow schema and expression rules (actionlint, installed by
#   scripts/setup-vagrant.sh from its Go module; shellcheck is applied to the run: steps when installed).
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${KFLAN_VAGRANT_CACHE:-/var/cache/kflan-vagrant}
export VAGRANT_CWD=$HERE VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_NO_COLOR=1 VAGRANT_HOME=${VAGRANT_HOME:-$CACHE/vagrant.d}
export VAGRANT_DOTFILE_PATH=${VAGRANT_DOTFILE_PATH:-$(mktemp -d)}
fail=0
ok() { echo "check-static: ok: $*" >&2; }
bad() { echo "check-static: FAILED: $*" >&2; fail=1; }

v() { local out; out=$(env "$@" vagrant validate 2>&1) && ok "vagrant validate ($*)" || bad "vagrant validate ($*): $out"; }
v VAGRANT_DEFAULT_PROVIDER=libvirt
v VAGRANT_DEFAULT_PROVIDER=libvirt KFLAN_VAGRANT_LIBVIRT_DRIVER=kvm KFLAN_VAGRANT_MASTERS=3 KFLAN_VAGRANT_NODES=2
v VAGRANT_DEFAULT_PROVIDER=libvirt KFLAN_VAGRANT_LIBVIRT_DRIVER=qemu
out=$(VAGRANT_DEFAULT_PROVIDER=virtualbox vagrant validate --ignore-provider 2>&1) &&
  ok "vagrant validate --ignore-provider (virtualbox)" || bad "vagrant validate (virtualbox): $out"
out=$(KFLAN_VAGRANT_NODES=two vagrant validate 2>&1) && bad "KFLAN_VAGRANT_NODES=two accepted" ||
  { grep -q 'KFLAN_VAGRANT_NODES="two": expected an integer' <<<"$out" && ok "bad KFLAN_VAGRANT_NODES refused by name" ||
    bad "KFLAN_VAGRANT_NODES=two: unexpected message: $out"; }

AL=$(command -v actionlint || echo "$CACHE/bin/actionlint")
if [[ -x $AL ]]; then
  out=$(cd "$REPO" && "$AL" -no-color .github/workflows/vagrant.yml 2>&1) &&
    ok "actionlint $("$AL" -version | head -n1) .github/workflows/vagrant.yml" || bad "actionlint: $out"
else
  bad "actionlint not installed (scripts/setup-vagrant.sh installs it into $CACHE/bin)"
fi
exit $fail
