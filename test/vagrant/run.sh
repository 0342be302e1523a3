#!/usr/bin/env bash
# test/vagrant/run.sh: the Vagrant job (`npm run test:vagrant`; also the last step of scripts/test.sh).
#
# Real VMs with their own kernels: vagrant up (libvirt provider) of the Vagrantfile next to this script, a kflan
# inventory from `vagrant ssh-config`, kflan init, kflan doctor (every check ok, pings across eth1), a second init
# that changes nothing, kflan reset, vagrant destroy; then a check that nothing of the run is left (domains,
# networks, volumes, daemons it started). Prints the time of every step, the memory of each VM, the binaries'
# versions, and ends with "vagrant job: N passed, N failed".
#
# The box: KFLAN_VAGRANT_BOX (default kflan/debian12, built and cached by build-box.sh). The release tarballs:
# `test/lab/lab.sh bundles` (the lab's etcd and flannel builds); a lab-only flannel stand-in is refused (a VM test
# runs real flanneld). Run as root (libvirt qemu:///system). libvirtd and virtlogd are started when not running
# and stopped again at the end. Other settings: see the Vagrantfile (KFLAN_VAGRANT_MASTERS, _NODES, _MEMORY, ...).
# KFLAN_VAGRANT_KEEP=1 leaves the VMs running after a failure (for a look; `vagrant destroy -f` in test/vagrant).
set -Eeuo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${KFLAN_VAGRANT_CACHE:-/var/cache/kflan-vagrant}
STATE=${KFLAN_VAGRANT_STATE:-$REPO/.vagrant-job}
PREFIX=${KFLAN_VAGRANT_PREFIX:-kflan-vagrant}
POOL=$PREFIX
BOX=${KFLAN_VAGRANT_BOX:-kflan/debian12}
# On this machine (itself a guest) KVM cannot boot a stock Debian kernel: software emulation unless told otherwise.
export KFLAN_VAGRANT_LIBVIRT_DRIVER=${KFLAN_VAGRANT_LIBVIRT_DRIVER:-qemu}
# Two machines by default (m1: etcd + flanneld + docker, n1: flanneld + docker; doctor pings between them): three
# emulated guests took 786 s to come up here, two 193 s. KFLAN_VAGRANT_NODES=2 for the Vagrantfile's 1 + 2.
export KFLAN_VAGRANT_MASTERS=${KFLAN_VAGRANT_MASTERS:-1} KFLAN_VAGRANT_NODES=${KFLAN_VAGRANT_NODES:-1}
export KFLAN_VAGRANT_PREFIX=$PREFIX KFLAN_VAGRANT_POOL=$POOL KFLAN_VAGRANT_BOX=$BOX
export VAGRANT_CWD=$HERE VAGRANT_DOTFILE_PATH=$STATE/dot-vagrant VAGRANT_HOME=${VAGRANT_HOME:-$CACHE/vagrant.d}
export VAGRANT_DEFAULT_PROVIDER=libvirt VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_NO_COLOR=1 LIBVIRT_DEFAULT_URI=qemu:///system
KFLAN=("$(command -v node)" "$REPO/bin/run.js")

passed=0 failed=0
declare -A TIMES=()
ORDER=()
log() { printf 'vagrant-job: %s\n' "$*" >&2; }
die() { printf 'vagrant-job: error: %s\n' "$*" >&2; failed=$((failed + 1)); exit 1; }
ok() { passed=$((passed + 1)); log "ok: $*"; }
check() { # check "what" cmd...: a named assertion
  local what=$1; shift
  if "$@"; then ok "$what"; else failed=$((failed + 1)); log "FAILED: $what"; return 1; fi
}
# timed NAME cmd...: runs a step, records its seconds; a failing step fails the job.
timed() {
  local name=$1 t0=$SECONDS; shift
  log "step $name: $*"
  if "$@"; then
    TIMES[$name]=$((SECONDS - t0)); ORDER+=("$name")
    ok "$name ($((SECONDS - t0)) s)"
  else
    local rc=$?
    TIMES[$name]="failed after $((SECONDS - t0))"; ORDER+=("$name")
    die "$name failed (exit $rc)"
  fi
}

STARTED_DAEMONS=() POOL_DEFINED=0 UP_DONE=0
summary() {
  local n
  echo "vagrant job: times (s):$(for n in "${ORDER[@]}"; do printf ' %s=%s' "$n" "${TIMES[$n]}"; done)" >&2
  [[ -f $STATE/memory ]] && echo "vagrant job: memory: $(cat "$STATE/memory")" >&2
  [[ -f $STATE/versions ]] && echo "vagrant job: versions: $(tr -d '\n' <"$STATE/versions")" >&2
  echo "vagrant job: $passed passed, $failed failed"
}

# Everything this run made, gone: VMs and their volumes, the networks, the pool definition (its directory keeps the
# cached base image), and the daemons this run started.
teardown() {
  local rc=$? d
  trap - EXIT ERR
  ((rc == 0)) || ((failed > 0)) || failed=$((failed + 1))
  if ((UP_DONE)) && [[ ${KFLAN_VAGRANT_KEEP:-0} == 1 ]] && ((rc != 0)); then
    log "KFLAN_VAGRANT_KEEP=1: VMs left running; destroy with: (cd test/vagrant && VAGRANT_DOTFILE_PATH=$VAGRANT_DOTFILE_PATH VAGRANT_HOME=$VAGRANT_HOME vagrant destroy -f)"
    summary; exit "$rc"
  fi
  virsh version >/dev/null 2>&1 && remove_leftovers
  if ((POOL_DEFINED)); then
    virsh pool-destroy "$POOL" >/dev/null 2>&1 || true
    virsh pool-undefine "$POOL" >/dev/null 2>&1 || true
  fi
  local pidfile
  for pidfile in "${STARTED_DAEMONS[@]}"; do
    [[ -f $pidfile ]] || continue
    log "stopping $(basename "$pidfile" .pid) (pid $(cat "$pidfile")), started by this job"
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
  summary
  exit "$rc"
}

# Machines, their volumes and the networks of this or an earlier (crashed) run: vagrant destroy, then whatever
# libvirt still has under the run's prefix.
remove_leftovers() {
  local d
  if virsh list --all --name | grep -q "^$PREFIX-"; then
    log "cleanup: vagrant destroy -f"
    vagrant destroy -f >>"$STATE/vagrant.log" 2>&1 || true
  fi
  for d in $(virsh list --all --name | grep "^$PREFIX-" || true); do
    log "cleanup: removing leftover domain $d"
    virsh destroy "$d" >/dev/null 2>&1 || true
    virsh undefine "$d" --remove-all-storage >/dev/null 2>&1 || virsh undefine "$d" >/dev/null 2>&1 || true
  done
  for d in $(virsh net-list --all --name | grep "^$PREFIX-" || true); do
    log "cleanup: removing network $d"
    virsh net-destroy "$d" >/dev/null 2>&1 || true
    virsh net-undefine "$d" >/dev/null 2>&1 || true
  done
}

# ---------------------------------------------------------------- steps

preflight() {
  [[ $(id -u) == 0 ]] || die "must run as root (libvirt's qemu:///system, the box build)"
  local c missing=()
  for c in vagrant virsh libvirtd virtlogd tini qemu-system-x86_64 qemu-img ssh ssh-keygen jq node tar; do
    command -v "$c" >/dev/null || missing+=("$c")
  done
  ((${#missing[@]} == 0)) || die "missing commands: ${missing[*]}; run scripts/setup.sh (it runs scripts/setup-vagrant.sh)"
  vagrant plugin list 2>/dev/null | grep -q vagrant-libvirt || die "vagrant-libvirt plugin missing (apt-get install vagrant-libvirt)"
  [[ -f $REPO/dist/commands/init.js ]] || die "kflan is not built: npm run build"
}

# A daemon is started only when it is not running; its pid file says it is ours to stop.
# libvirtd runs in the foreground under `tini -s` (a child subreaper): libvirtd daemonizes QEMU (its capability
# probes and the VMs), so those processes are orphaned, and on this machine PID 1 (not an init) reaps orphans late.
# libvirtd then waits for each probe's zombie to go ("virProcessKillPainfully"), minutes per domain definition;
# under tini they are reaped at once.
start_daemon() {
  local name=$1 pidfile=/run/$1.pid
  # (a zombie is not running: its pid file outlived it)
  if [[ -f $pidfile ]] && [[ $(ps -o stat= -p "$(cat "$pidfile")" 2>/dev/null) =~ ^[^Z] ]]; then
    log "$name is running (pid $(cat "$pidfile")): using it"
    return
  fi
  log "$name is not running: starting it (this job stops it at the end)"
  if [[ $name == libvirtd && $KFLAN_VAGRANT_LIBVIRT_DRIVER == qemu && -e /dev/kvm ]]; then
    # Software emulation only: libvirtd gets its own mount namespace in which /dev/kvm is a root-only empty file.
    # Here /dev/kvm exists but cannot run a Debian kernel, and its owner and mode change under us (other jobs'
    # udev); libvirt then finds its cached QEMU capabilities stale on every lookup ("KVM usable" differs from the
    # probe's result) and probes QEMU again, tens of seconds each, before every domain definition. In the same
    # namespace qemu.conf gains `namespaces = []`: libvirt's per-VM /dev cannot carry the bind-mounted /dev/kvm
    # ("Unable to move ... mount to /dev/kvm"). Nothing outside libvirtd's namespace changes.
    install -m 0600 /dev/null "$STATE/no-kvm"
    { cat /etc/libvirt/qemu.conf; printf '\n# kflan Vagrant job (test/vagrant/run.sh)\nnamespaces = []\n'; } >"$STATE/qemu.conf"
    setsid unshare -m --propagation private sh -c \
      'mount --bind "$1" /dev/kvm && mount --bind "$2" /etc/libvirt/qemu.conf && shift 2 && exec "$@"' sh \
      "$STATE/no-kvm" "$STATE/qemu.conf" tini -s -- "$name" -p "$pidfile" </dev/null >>"$STATE/libvirtd.out" 2>&1 &
    echo $! >"$STATE/libvirtd-tini.pid"
    STARTED_DAEMONS+=("$STATE/libvirtd-tini.pid")
  elif [[ $name == libvirtd ]]; then
    setsid tini -s -- "$name" -p "$pidfile" </dev/null >>"$STATE/libvirtd.out" 2>&1 &
    echo $! >"$STATE/libvirtd-tini.pid"
    STARTED_DAEMONS+=("$STATE/libvirtd-tini.pid")
  else
    "$name" -d -p "$pidfile"
    STARTED_DAEMONS+=("$pidfile")
  fi
}

start_libvirt() {
  start_daemon virtlogd
  start_daemon libvirtd
  local i
  for ((i = 0; i < 60; i++)); do virsh version >/dev/null 2>&1 && return; sleep 1; done
  die "libvirtd did not answer on qemu:///system within 60 s"
}

# The storage pool: a directory in the cache, so vagrant-libvirt's copy of the box (the base volume) outlives the run.
ensure_pool() {
  if ! virsh pool-info "$POOL" >/dev/null 2>&1; then
    mkdir -p "$CACHE/pool"
    virsh pool-define-as "$POOL" dir --target "$CACHE/pool" >/dev/null
    POOL_DEFINED=1
  fi
  virsh pool-info "$POOL" | grep -q 'State: *running' || virsh pool-start "$POOL" >/dev/null
  virsh pool-refresh "$POOL" >/dev/null
}

# The locally built box, added to Vagrant's (cached) box store when new; its old base volume goes with it.
ensure_box() {
  [[ $BOX == kflan/debian12 ]] || { log "box $BOX (KFLAN_VAGRANT_BOX): not building the local one"; return; }
  local file sum
  file=$("$HERE/build-box.sh")
  sum=$(basename "$file")
  if [[ $(cat "$VAGRANT_HOME/kflan-box-source" 2>/dev/null) != "$sum" ]]; then
    log "adding box $BOX from $file"
    vagrant box add --force --name "$BOX" "$file" >>"$STATE/vagrant.log" 2>&1 || die "vagrant box add failed (see $STATE/vagrant.log)"
    local v
    for v in $(virsh vol-list "$POOL" 2>/dev/null | awk '$1 ~ /^kflan-VAGRANTSLASH-debian12_vagrant_box_image/ {print $1}'); do
      virsh vol-delete --pool "$POOL" "$v" >/dev/null
    done
    echo "$sum" >"$VAGRANT_HOME/kflan-box-source"
  fi
}

# The release tarballs the lab builds from flannel's and etcd's Go modules; both say their version.
bundles() {
  mapfile -t B < <("$REPO/test/lab/lab.sh" bundles)
  ETCD_TGZ=$(printf '%s\n' "${B[@]}" | grep '/etcd-v' | tail -n1)
  FLANNEL_TGZ=$(printf '%s\n' "${B[@]}" | grep '/flannel-v' | tail -n1)
  [[ -f $ETCD_TGZ && -f $FLANNEL_TGZ ]] || die "test/lab/lab.sh bundles printed no etcd/flannel tarball: ${B[*]}"
  local x=$STATE/bin fv ev
  rm -rf "$x"; mkdir -p "$x"
  tar -xzf "$FLANNEL_TGZ" -C "$x" flanneld
  tar -xzf "$ETCD_TGZ" -C "$x" --strip-components=1 --wildcards '*/etcd'
  fv=$("$x/flanneld" --version 2>&1 | head -n1)
  ev=$("$x/etcd" --version 2>&1 | awk '/etcd Version/ {print $3}')
  [[ -n $fv && -n $ev ]] || die "cannot run the bundles' flanneld/etcd --version"
  echo "flanneld $fv ($(basename "$FLANNEL_TGZ")), etcd $ev ($(basename "$ETCD_TGZ")), box $BOX, libvirt driver $KFLAN_VAGRANT_LIBVIRT_DRIVER" >"$STATE/versions"
  rm -rf "$x"
  log "$(cat "$STATE/versions")"
}

# One `vagrant up NAME` process per machine, all at once. A single `vagrant up` of several machines (vagrant-libvirt
# 0.11.2's parallel up, threads sharing one libvirt connection) hung here every time at "Updating domain definition
# due to configuration change", with no QEMU started. The first machine goes alone until it has created the
# libvirt networks, so that two processes never race to create the same network.
vagrant_up() {
  UP_DONE=1
  local names=() n pids=() rc=0 i
  mapfile -t names < <(vagrant status --machine-readable 2>>"$STATE/vagrant.log" | awk -F, '$3 == "state" {print $2}')
  ((${#names[@]})) || { log "vagrant status lists no machine"; return 1; }
  log "machines: ${names[*]}"
  vagrant up --provider=libvirt "${names[0]}" >"$STATE/up-${names[0]}.log" 2>&1 &
  pids+=($!)
  for ((i = 0; i < 600; i++)); do
    virsh net-info "$PREFIX-priv" >/dev/null 2>&1 && virsh net-info "$PREFIX-mgmt" >/dev/null 2>&1 && break
    kill -0 "${pids[0]}" 2>/dev/null || break
    sleep 1
  done
  if ! virsh net-info "$PREFIX-priv" >/dev/null 2>&1; then
    wait "${pids[0]}" || true
    log "vagrant up ${names[0]} made no $PREFIX-priv network:"; grep -v '  -- ' "$STATE/up-${names[0]}.log" | tail -n 20 >&2
    return 1
  fi
  for n in "${names[@]:1}"; do
    vagrant up --provider=libvirt "$n" >"$STATE/up-$n.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      rc=1
      log "vagrant up ${names[$i]} failed:"
      grep -v '  -- ' "$STATE/up-${names[$i]}.log" | tail -n 20 >&2
    fi
  done
  for n in "${names[@]}"; do cat "$STATE/up-$n.log"; done >>"$STATE/vagrant.log" 2>/dev/null || true
  return $rc
}

# RSS of each VM's QEMU process (what the VM costs the machine), and what the guest sees.
record_memory() {
  local d pid rss out=()
  for d in $(virsh list --name | grep "^$PREFIX-"); do
    pid=$(cat "/run/libvirt/qemu/$d.pid" 2>/dev/null || true)
    rss=$([[ -n $pid ]] && awk '/^VmRSS:/ {printf "%d", $2 / 1024}' "/proc/$pid/status" 2>/dev/null || echo '?')
    out+=("${d#"$PREFIX"-}: ${rss} MiB RSS of $(virsh dominfo "$d" | awk '/^Max memory/ {printf "%d", $3 / 1024}') MiB")
  done
  (IFS=';'; echo "${out[*]}") | sed 's/;/; /g' >"$STATE/memory"
  log "memory: $(cat "$STATE/memory")"
}

kf() { "${KFLAN[@]}" "$@" --state-dir "$STATE/kflan"; }

# slowest COMMAND: the slowest remote commands of kflan's last COMMAND run (its log has every command's duration).
slowest() {
  local f
  f=$(ls -t "$STATE/kflan/logs/$1"-*.log 2>/dev/null | head -n1) || true
  [[ -n $f ]] || return 0
  log "$1: the slowest commands (kflan's log $f):"
  grep -E '^[0-9T:.Z-]+ [^ ]+ (exec|upload|connect) ' "$f" |
    awk '{ms = 0; for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+ms$/) {ms = $i + 0; break}
      l = $0; sub(/^[^$#]*[$#] /, "", l); printf "  %6.1f s  %s  %s\n", ms / 1000, $2, substr(l, 1, 110)}' |
    sort -rn | head -n 12 >&2 || true
}

# What the VMs run, from the first machine (they are clones of one box): the box file, OS, kernel, docker.
record_guests() {
  local h box g
  h=$(awk '$1 == "Host" {print $2; exit}' "$STATE/ssh_config")
  box=$([[ $BOX == kflan/debian12 ]] && basename "$(cat "$VAGRANT_HOME/kflan-box-source" 2>/dev/null)" || echo "$BOX")
  g=$(remote "$h" '. /etc/os-release; echo "$PRETTY_NAME, kernel $(uname -r), $(docker --version 2>/dev/null | cut -d, -f1)"') ||
    die "cannot ask $h for its kernel"
  echo "; box $box: $g; $(qemu-system-x86_64 --version | head -n1)" >>"$STATE/versions"
  log "guests: box $box: $g"
}

remote() { ssh -F "$STATE/ssh_config" "$@"; }

# Units' invocation ids on every machine: a restart changes them.
unit_stamps() {
  local h
  for h in $(awk '$1 == "Host" {print $2}' "$STATE/ssh_config"); do
    echo "$h $(remote "$h" 'for u in etcd flanneld docker; do systemctl show -p InvocationID --value $u 2>/dev/null; done' | tr '\n' ' ')"
  done
}

# Data plane on eth1: each flannel lease's PublicIP is its host's eth1 address, and each flannel.1 (vxlan) device
# is bound to eth1 with that address; doctor's pings then went over eth1.
check_eth1() {
  local inv=$STATE/inventory.yaml h addr dev leases
  local etcd1
  etcd1=$(awk '/^  etcd: \[/ {gsub(/[][,]/, " "); print $2}' "$inv")
  # As kflan's own remote etcdctl does: the member's server certificate (its CN is an etcd user with the root role).
  leases=$(remote "$etcd1" "sudo ETCDCTL_API=3 /opt/etcd/bin/etcdctl --endpoints=https://\$(ip -4 -o addr show dev eth1 | awk '{sub(/\\/.*/, \"\", \$4); print \$4}'):2379 --cacert=/opt/etcd/ssl/ca.pem --cert=/opt/etcd/ssl/server.pem --key=/opt/etcd/ssl/server-key.pem --dial-timeout=20s --command-timeout=30s get /coreos.com/network/subnets --prefix --print-value-only" 2>&1) ||
    { log "$etcd1: etcdctl get /coreos.com/network/subnets failed: $leases"; return 1; }
  log "flannel leases: $(tr '\n' ' ' <<<"$leases")"
  for h in $(yq_flannel_hosts "$inv"); do
    addr=$(awk -v h="$h" '$0 ~ "- name: "h"$" {f = 1; next} f && /address:/ {print $2; exit}' "$inv")
    grep -q "\"PublicIP\":\"$addr\"" <<<"$leases" || { log "$h: no lease with PublicIP $addr"; return 1; }
    dev=$(remote "$h" 'ip -d link show flannel.1')
    grep -q "local $addr dev eth1" <<<"$dev" || { log "$h: flannel.1 is not on eth1/$addr: $dev"; return 1; }
  done
}

yq_flannel_hosts() { awk '/^  flannel: \[/ {gsub(/[][,]/, " "); for (i = 2; i <= NF; i++) print $i}' "$1"; }

main() {
  mkdir -p "$STATE"
  : >"$STATE/vagrant.log"
  rm -f "$STATE/memory" "$STATE/versions"
  trap teardown EXIT
  # Stopped by a signal: a failed run (the EXIT trap then tears down as after any failure).
  trap 'failed=$((failed + 1)); log "stopped by a signal"; exit 143' TERM INT HUP
  preflight
  bundles
  start_libvirt
  # After libvirtd: vagrant-libvirt's validation connects to it.
  timed static "$HERE/check-static.sh"
  ensure_pool
  timed box build_box
  ensure_box
  # A run that crashed before its teardown left machines: they go first.
  remove_leftovers
  rm -rf "$STATE/kflan"
  timed vagrant-up vagrant_up
  record_memory
  timed inventory "$HERE/inventory.sh" "$ETCD_TGZ" "$FLANNEL_TGZ" "$STATE/inventory.yaml"
  vagrant ssh-config >"$STATE/ssh_config" 2>/dev/null
  log "inventory: $STATE/inventory.yaml"
  record_guests
  check "kflan validate" kf_validate
  timed init kf init -i "$STATE/inventory.yaml" --yes
  slowest init
  timed doctor doctor_all_ok
  check "flannel on eth1 (leases' PublicIP, vxlan device)" check_eth1
  local before after
  before=$(unit_stamps)
  timed init-again init_again
  after=$(unit_stamps)
  check "second init restarted nothing" test "$before" == "$after"
  timed reset kf reset -i "$STATE/inventory.yaml" --yes
  slowest reset
  check "nothing of kflan left on the machines" nothing_left_on_hosts
  timed destroy destroy_all
  UP_DONE=0
  check "nothing of the run left on this machine" nothing_left_here
}

build_box() { [[ $BOX != kflan/debian12 ]] || "$HERE/build-box.sh" >/dev/null; }

# vagrant destroy, then the networks vagrant-libvirt made for the run.
destroy_all() {
  vagrant destroy -f >>"$STATE/vagrant.log" 2>&1 || return 1
  local n
  for n in $(virsh net-list --all --name | grep "^$PREFIX-" || true); do
    virsh net-destroy "$n" >/dev/null 2>&1 || true
    virsh net-undefine "$n" >/dev/null
  done
}

kf_validate() { kf validate -i "$STATE/inventory.yaml" >/dev/null; }

# doctor, once, all ok. (Emulated guests get the time they need from the inventory's `timeouts:`, which
# inventory.sh writes for the qemu driver; a retry here would hide a doctor too impatient for slow hosts.)
doctor_all_ok() {
  kf doctor -i "$STATE/inventory.yaml" --json >"$STATE/doctor.json" || true
  jq -r '.results[] | "\(.status)\t\(.id)\t\(.host // "-")\t\(.message // "")"' "$STATE/doctor.json" >&2 || true
  jq -e '.ok == true and .summary.fail == 0 and .summary.warn == 0' "$STATE/doctor.json" >/dev/null || return 1
  local pings
  pings=$(jq '[.results[] | select(.id == "dataplane.ping" and .status == "ok")] | length' "$STATE/doctor.json")
  ((pings >= 2)) || { log "doctor ran $pings successful dataplane.ping checks; expected one per flannel host"; return 1; }
}

init_again() {
  kf init -i "$STATE/inventory.yaml" --yes | tee "$STATE/init-again.out" >&2
  grep -q 'nothing changed' "$STATE/init-again.out"
}

nothing_left_on_hosts() {
  local h left=0
  for h in $(awk '$1 == "Host" {print $2}' "$STATE/ssh_config"); do
    if remote "$h" 'systemctl is-active -q etcd flanneld 2>/dev/null || [ -e /etc/systemd/system/etcd.service ] || [ -e /etc/systemd/system/flanneld.service ] || [ -e /etc/systemd/system/docker.service.d/10-kflan-flannel.conf ]'; then
      log "$h: kflan units or files still there after reset"; left=1
    fi
  done
  ((left == 0))
}

nothing_left_here() {
  local left
  left=$( { virsh list --all --name | grep "^$PREFIX-"; virsh net-list --all --name | grep "^$PREFIX-";
    virsh vol-list "$POOL" | awk 'NR > 2 && $1 != "" && $1 !~ /_vagrant_box_image_/ {print "volume " $1}'; } || true)
  [[ -z $left ]] || { log "left behind: $left"; return 1; }
}

main "$@"
