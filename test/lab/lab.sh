#!/usr/bin/env bash
# test/lab/lab.sh: the kflan test lab.
#
# Boots real systemd hosts on this machine: each host is a systemd-nspawn
# container with its own network namespace, an overlayfs root over one cached
# Debian image, sshd and dockerd, attached to a private lab bridge. See
# docs/lab.md for the why of every choice below.
#
#   lab.sh up [--masters M] [--nodes N] [--flannel V] [--etcd V]
#                                         boot the lab (default 3 masters, 2 nodes, the default bundles)
#   lab.sh down                           remove everything the lab made
#   lab.sh status                         list hosts: name, address, pid, ssh ok?
#   lab.sh ssh NAME [cmd...]              shell / command over SSH with the lab key
#   lab.sh exec NAME cmd...               command inside the host WITHOUT ssh (nsenter)
#   lab.sh image                          build the cached image (if missing) and print its path
#   lab.sh bundles [--flannel V] [--etcd V]
#                                         build the release bundles (if missing) and print them
#
# Bundles (real flanneld and etcd built from their Go modules, see
# test/lab/bundles.sh): flannel 0.26.1 (default), 0.17.0, 0.28.10; etcd 3.5.35
# (default), 3.6.16, 3.4.23 (Debian's packages).
#
# Environment: KFLAN_LAB_ID (0-9: several labs side by side, each with its own
# bridge, /24, namespaces and state dir; default 0), KFLAN_LAB_DIR (state,
# default <repo>/.lab, or <repo>/.lab<ID> for ID > 0), KFLAN_LAB_CACHE
# (image, bundles, busybox image tar; default /var/cache/kflan-lab),
# KFLAN_LAB_BOOT_TIMEOUT (seconds to wait for SSH, default 90).
set -Eeuo pipefail
# Any unexpected failure names its line: a failed `up` must say why.
# shellcheck disable=SC2154 # rc is set inside the trap
trap 'rc=$?; echo "lab: error: \"$BASH_COMMAND\" failed (exit $rc) at line $LINENO" >&2; exit $rc' ERR

LAB_SH=$(readlink -f "${BASH_SOURCE[0]}")
LAB_SRC=$(dirname "$LAB_SH")
REPO=$(cd "$LAB_SRC/../.." && pwd)
LAB_ID=${KFLAN_LAB_ID:-0}
[[ $LAB_ID =~ ^[0-9]$ ]] || { echo "lab: error: KFLAN_LAB_ID must be a digit 0-9, not '$LAB_ID'" >&2; exit 2; }
# Lab 0 keeps the plain names; lab N gets its own bridge, /24, namespaces and cgroup.
SFX=${LAB_ID#0}
LAB_DIR=${KFLAN_LAB_DIR:-$REPO/.lab$SFX}
CACHE=${KFLAN_LAB_CACHE:-/var/cache/kflan-lab}
BUNDLES=$CACHE/bundles
BOOT_TIMEOUT=${KFLAN_LAB_BOOT_TIMEOUT:-90}

SUITE=bookworm
BRIDGE=kflanlab$LAB_ID      # lab bridge on the machine
NET=10.211.$LAB_ID          # lab /24
BRIDGE_ADDR=$NET.1
IFACE=eth0                  # the host's (container-side) interface name
NETNS_PREFIX=kflan$SFX-     # netns of host lab-m1 is kflan-lab-m1 (lab 2: kflan2-lab-m1)
VETH_PREFIX=kf${SFX:-l}-    # machine-side veth of lab-m1 is kfl-lab-m1 (lab 2: kf2-lab-m1)
IPT_COMMENT=kflan-lab$SFX   # marks the iptables rules the lab adds
CGROUP=kflan-lab$SFX        # the lab's cgroup under each cgroup root
BUNDLES_SH=$LAB_SRC/bundles.sh
# The container image loaded into every host's docker (from busybox-static).
BUSYBOX_IMAGE=kflan-lab/busybox:1
KEY=$LAB_DIR/id_ed25519
KNOWN_HOSTS=$LAB_DIR/known_hosts

# Packages of the host image. Changing this list (or the recipe functions
# below) changes the image hash, so the next `up` builds a new image.
IMAGE_PACKAGES=(
  systemd systemd-sysv dbus openssh-server iproute2 iptables docker.io curl
  iputils-ping procps kmod ca-certificates jq etcd-client sudo firewalld
)

log() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }
# A wrong argument is an input error: exit 2, like kflan's own.
bad_usage() { printf 'lab: error: %s (lab.sh help lists the arguments)\n' "$*" >&2; exit 2; }

# ---------------------------------------------------------------- preflight

# command -> Debian package that provides it
declare -A NEEDS=(
  [debootstrap]=debootstrap [systemd-nspawn]=systemd-container [ip]=iproute2
  [iptables]=iptables [nsenter]=util-linux [ssh]=openssh-client
  [ssh-keygen]=openssh-client [jq]=jq [dpkg-deb]=dpkg [apt-get]=apt
  [flock]=util-linux [setsid]=util-linux [etcdctl]=etcd-client
)

preflight() {
  [[ $(id -u) == 0 ]] || die "must run as root (network namespaces, mounts, nspawn)"
  local missing=() cmd
  for cmd in "${!NEEDS[@]}"; do
    command -v "$cmd" >/dev/null || missing+=("${NEEDS[$cmd]}")
  done
  if ((${#missing[@]})); then
    die "missing commands; install: apt-get install -y $(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')"
  fi
  [[ -d /proc/sys/net/bridge ]] || die "kernel lacks br_netfilter (/proc/sys/net/bridge missing)"
  grep -qw overlay /proc/filesystems || die "kernel lacks overlayfs"
  raise_inotify_limit
}

# Every lab host runs its own systemd, journald, dbus and dockerd, each holding inotify instances
# of root's machine-wide quota (fs.inotify.max_user_instances, 128 on this kind of machine): a few
# labs side by side exhaust it and a host's systemd fails with "Too many open files". The lab
# raises the limit (never lowers it) and says so.
raise_inotify_limit() {
  local f=/proc/sys/fs/inotify/max_user_instances want=1024 have
  have=$(cat "$f" 2>/dev/null) || return 0
  ((have >= want)) && return 0
  if echo "$want" >"$f" 2>/dev/null; then
    log "raised fs.inotify.max_user_instances from $have to $want (each lab host's systemd needs its own)"
  else
    log "warning: fs.inotify.max_user_instances is $have; hosts may fail with 'Too many open files' (sysctl -w fs.inotify.max_user_instances=$want)"
  fi
}

# ---------------------------------------------------------------- image

# The Debian mirror, read from this machine's apt configuration at run time
# (never written into any file of the repo).
apt_mirror() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    uri=$(awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i !~ /security/) {print $i; exit}}' "$f")
    [[ -n $uri ]] && { echo "$uri"; return; }
  done
  uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; exit}}' \
    /etc/apt/sources.list 2>/dev/null || true)
  [[ -n $uri ]] || die "no Debian mirror found in /etc/apt/sources.list{,.d/*.sources}"
  echo "$uri"
}

apt_security_mirror() {
  cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    grep -o '[a-z]*://[^ ]*security[^ ]*' | head -n1 || true
}

image_hash() {
  { printf '%s\n' "${IMAGE_PACKAGES[@]}" "$SUITE"; declare -f build_image customize_image; } |
    sha256sum | cut -c1-12
}

image_dir() { echo "$CACHE/image-$(image_hash)"; }

# Build the image into a temp dir and rename it when complete, so a crashed
# build never leaves a half image under the final name.
build_image() {
  local final=$1 tmp mirror sec
  mirror=$(apt_mirror)
  sec=$(apt_security_mirror)
  tmp=$(mktemp -d "$CACHE/.image-build.XXXXXX")
  log "building image $(basename "$final") from $SUITE (first build takes a few minutes)"
  debootstrap --variant=minbase "$SUITE" "$tmp" "$mirror" >"$tmp.log" 2>&1 ||
    die "debootstrap failed, see $tmp.log"
  {
    echo "deb $mirror $SUITE main"
    echo "deb $mirror $SUITE-updates main"
    [[ -n $sec ]] && echo "deb $sec $SUITE-security main"
  } >"$tmp/etc/apt/sources.list"
  # No service may start while packages install in the chroot.
  printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
  chmod 755 "$tmp/usr/sbin/policy-rc.d"
  mount -t proc proc "$tmp/proc"
  if ! chroot "$tmp" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c \
    "apt-get update -q && apt-get install -y -q --no-install-recommends $(printf '%s ' "${IMAGE_PACKAGES[@]}")" \
    >>"$tmp.log" 2>&1; then
    umount "$tmp/proc"
    die "package install failed, see $tmp.log"
  fi
  umount "$tmp/proc"
  customize_image "$tmp"
  # The mirror must not stay in the cached image either: the lab hosts have no
  # route to it, and apt inside a host has nothing to do.
  rm -f "$tmp/etc/apt/sources.list" "$tmp/usr/sbin/policy-rc.d"
  rm -rf "$tmp"/var/lib/apt/lists/* "$tmp"/var/cache/apt/*.bin "$tmp"/var/cache/apt/archives/*.deb
  mv "$tmp" "$final"
  rm -f "$tmp.log"
}

# Everything that makes the image boot fast and behave like a plain server.
customize_image() {
  local root=$1 unit
  # Units that slow the boot, wait for things the lab has not, or make noise.
  for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
    fstrim.timer man-db.timer systemd-networkd-wait-online.service console-getty.service \
    getty@.service container-getty@.service getty.target systemd-timesyncd.service \
    e2scrub_reap.service systemd-logind.service systemd-journal-flush.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  # Volatile journal: nothing to keep across boots, less disk churn.
  mkdir -p "$root/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' >"$root/etc/systemd/journald.conf.d/kflan-lab.conf"
  # sshd: per-host ed25519 key only (written by `up`), no reverse DNS (it would
  # wait for an unreachable resolver), keys only.
  rm -f "$root"/etc/ssh/ssh_host_*
  cat >"$root/etc/ssh/sshd_config.d/kflan-lab.conf" <<'EOF'
# kflan lab host
HostKey /etc/ssh/ssh_host_ed25519_key
UseDNS no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
EOF
  # Per-host identity is written by `up`; the image carries none.
  : >"$root/etc/machine-id"
  rm -f "$root/etc/hostname" "$root/var/lib/dbus/machine-id"
  # docker.io uses iptables-nft through the alternatives system (Debian's
  # default); inside a netns that works on this kernel, see docs/lab.md.
  chroot "$root" update-alternatives --set iptables /usr/sbin/iptables-nft >/dev/null
  chroot "$root" update-alternatives --set ip6tables /usr/sbin/ip6tables-nft >/dev/null
  # runc and dockerd need the cgroup v1 controllers writable; nspawn mounts
  # them read-only: a unit remounts them read-write before docker starts.
  cat >"$root/etc/systemd/system/kflan-lab-cgroups.service" <<'UNIT'
[Unit]
Description=kflan lab: cgroup v1 controllers read-write (for dockerd and runc)
DefaultDependencies=no
Before=containerd.service docker.service sysinit.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'awk '\''$3 == "cgroup" && $4 !~ /name=/ {print $2}'\'' /proc/self/mounts | while read -r d; do mount -o remount,bind,rw "$d"; done'

[Install]
WantedBy=sysinit.target
UNIT
  chroot "$root" systemctl enable docker.service ssh.service kflan-lab-cgroups.service >/dev/null 2>&1
  # firewalld is installed (kflan's preflight.firewall is tested against it)
  # but neither enabled nor running unless a test starts it.
  chroot "$root" systemctl disable firewalld.service >/dev/null 2>&1
  mkdir -p "$root/var/lib/kflan-lab"
  echo "kflan-lab image, suite $SUITE, packages: ${IMAGE_PACKAGES[*]}" >"$root/etc/kflan-lab-image"
}

# Old images (recipe changed) that no running lab uses.
prune_images() {
  local keep=$1 d
  for d in "$CACHE"/image-*; do
    [[ -d $d && $d != "$keep" ]] || continue
    grep -q "lowerdir=$d," /proc/mounts || { log "removing old image $d"; rm -rf "$d"; }
  done
}

ensure_image() {
  local final
  final=$(image_dir)
  [[ -d $final ]] && { echo "$final"; return; }
  mkdir -p "$CACHE"
  # One builder at a time; a crashed build's temp dir is swept here.
  exec 9>"$CACHE/.lock"
  flock 9
  if [[ ! -d $final ]]; then
    local t0=$SECONDS
    rm -rf "$CACHE"/.image-build.*
    build_image "$final"
    echo "$((SECONDS - t0))" >"$CACHE/last-build-seconds"
    log "image built in $((SECONDS - t0)) s: $final"
    prune_images "$final"
  fi
  exec 9>&-
  echo "$final"
}

# ---------------------------------------------------------------- bundles

# A bundle's path (built by bundles.sh if missing; any failure is fatal: the
# lab never uses anything but the version asked for).
ensure_bundle() {
  local kind=$1 v=$2 out
  out=$("$BUNDLES_SH" "$kind" "$v") || exit 1
  log "$kind bundle: $("$BUNDLES_SH" info "$out" | awk '{print "v" $2 ", sha256 " $3}') ($out)"
  echo "$out"
}

default_version() { "$BUNDLES_SH" versions | awk -v k="$1" '$1 == k {print $2}'; }

# The versions `up` and `bundles` use: --flannel/--etcd, else bundles.sh's defaults.
FLANNEL_V="" ETCD_V=""
set_version() {
  [[ -n $2 ]] || bad_usage "$1 needs a version"
  case $1 in
    --flannel) FLANNEL_V=$2 ;;
    --etcd) ETCD_V=$2 ;;
  esac
}

# An unknown version is an input error (exit 2) that lists the supported ones.
check_versions() {
  [[ -n $FLANNEL_V ]] || FLANNEL_V=$(default_version flannel)
  [[ -n $ETCD_V ]] || ETCD_V=$(default_version etcd)
  "$BUNDLES_SH" check flannel "$FLANNEL_V" || exit 2
  "$BUNDLES_SH" check etcd "$ETCD_V" || exit 2
}

# ---------------------------------------------------------------- busybox image

# A docker image tar (`docker import`) made from the machine's busybox-static:
# /bin/busybox and its applet links. Nothing can be pulled in the lab.
ensure_busybox_tar() {
  local bb=/bin/busybox sum out tmp applet
  [[ -x $bb ]] && "$bb" --list-full >/dev/null 2>&1 ||
    die "no static busybox at $bb; install: apt-get install -y busybox-static"
  sum=$(sha256sum "$bb" | cut -c1-12)
  out=$CACHE/busybox-$sum.tar
  [[ -f $out ]] && { echo "$out"; return; }
  mkdir -p "$CACHE"
  tmp=$(mktemp -d "$CACHE/.busybox-build.XXXXXX")
  mkdir -p "$tmp/root/bin" "$tmp/root/tmp" "$tmp/root/etc" "$tmp/root/root"
  install -m 0755 "$bb" "$tmp/root/bin/busybox"
  while read -r applet; do
    [[ $applet == bin/busybox ]] && continue
    mkdir -p "$tmp/root/$(dirname "$applet")"
    ln -sf /bin/busybox "$tmp/root/$applet"
  done < <("$bb" --list-full)
  chmod 1777 "$tmp/root/tmp"
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$tmp/root/etc/passwd"
  printf 'root:x:0:\n' >"$tmp/root/etc/group"
  tar -C "$tmp/root" --owner=0 --group=0 --numeric-owner -cf "$tmp/out.tar" .
  mv "$tmp/out.tar" "$out"
  rm -rf "$tmp"
  echo "$out"
}

# Loads the busybox image into every host's docker (in parallel); the tar is
# bind-mounted read-only at /var/lib/kflan-lab/busybox.tar by start_host.
load_busybox() {
  local name p pids=() failed=()
  for name; do
    (
      pid=$(init_pid "$name") || exit 1
      nsenter -t "$pid" -a -- /bin/sh -c \
        "i=0; until docker info >/dev/null 2>&1; do i=\$((i+1)); [ \$i -lt 300 ] || exit 1; sleep 0.2; done
         docker import /var/lib/kflan-lab/busybox.tar $BUSYBOX_IMAGE >/dev/null" >>"$LAB_DIR/$name.log" 2>&1
    ) &
    pids+=("$!:$name")
  done
  for p in "${pids[@]}"; do wait "${p%%:*}" || failed+=("${p#*:}"); done
  ((${#failed[@]} == 0)) || die "docker import of $BUSYBOX_IMAGE failed on: ${failed[*]} (see $LAB_DIR/NAME.log)"
}

bundle_version() { basename "$1" | sed -E 's/^[a-z]+-v([^-]+)-linux-.*/\1/'; }

# ---------------------------------------------------------------- hosts

# "name address role" lines for M masters and N nodes.
host_plan() {
  local m=$1 n=$2 i
  for ((i = 1; i <= m; i++)); do echo "lab-m$i $NET.$((10 + i)) master"; done
  for ((i = 1; i <= n; i++)); do echo "lab-n$i $NET.$((20 + i)) node"; done
}

host_root() { echo "$LAB_DIR/hosts/$1/root"; }
pid_file() { echo "$LAB_DIR/$1.pid"; }

# The nspawn PID of a host, if it is alive and really our nspawn.
nspawn_pid() {
  local f pid
  f=$(pid_file "$1")
  [[ -f $f ]] || return 1
  pid=$(cat "$f")
  is_our_nspawn "$pid" || return 1
  echo "$pid"
}

is_our_nspawn() {
  local pid=$1 cmd
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *systemd-nspawn*" -D $LAB_DIR/hosts/"* ]]
}

# The machine PID of the host's init (PID 1 inside the container).
init_pid() {
  local npid c
  npid=$(nspawn_pid "$1") || return 1
  for c in $(cat /proc/"$npid"/task/*/children 2>/dev/null); do
    if awk '/^NSpid:/ {exit !($NF == 1 && NF > 2)}' "/proc/$c/status" 2>/dev/null; then
      echo "$c"; return
    fi
  done
  return 1
}

ssh_opts() {
  echo -F /dev/null -i "$KEY" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o UserKnownHostsFile="$KNOWN_HOSTS" -o StrictHostKeyChecking=yes \
    -o LogLevel=ERROR -o User=root
}

ensure_key() {
  mkdir -p "$LAB_DIR"
  if [[ ! -f $KEY ]]; then
    ssh-keygen -q -t ed25519 -N '' -C kflan-lab -f "$KEY"
  fi
  chmod 0600 "$KEY"
}

# Bridge on the machine. br_netfilter is loaded here with
# bridge-nf-call-iptables=1, so bridged frames between lab hosts traverse the
# machine's iptables FORWARD chain: an ACCEPT rule (removed by `down`) keeps a
# DROP policy or someone else's rules from eating lab traffic.
setup_bridge() {
  ip link add "$BRIDGE" type bridge
  ip link set "$BRIDGE" type bridge stp_state 0 forward_delay 0
  ip addr add "$BRIDGE_ADDR/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  iptables -w -I FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$IPT_COMMENT" -j ACCEPT
}

# Overlay root + identity files for one host, then its netns and veth.
prepare_host() {
  local name=$1 addr=$2 image=$3 dir root
  dir=$LAB_DIR/hosts/$name
  root=$dir/root
  mkdir -p "$dir/upper" "$dir/work" "$root"
  mount -t overlay "kflanlab-$name" -o "lowerdir=$image,upperdir=$dir/upper,workdir=$dir/work" "$root"

  echo "$name" >"$root/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$name" >"$root/etc/hosts"
  # No resolver is reachable from the lab: point at the host itself, where
  # nothing listens on port 53, so lookups fail at once instead of waiting.
  rm -f "$root/etc/resolv.conf"
  printf 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n' >"$root/etc/resolv.conf"
  tr -d '-' </proc/sys/kernel/random/uuid >"$root/etc/machine-id"
  ssh-keygen -q -t ed25519 -N '' -C "root@$name" -f "$root/etc/ssh/ssh_host_ed25519_key"
  install -d -m 0700 "$root/root/.ssh"
  install -m 0600 "$KEY.pub" "$root/root/.ssh/authorized_keys"

  local ns=$NETNS_PREFIX$name veth=$VETH_PREFIX$name
  ip netns add "$ns"
  ip link add "$veth" type veth peer name "$IFACE" netns "$ns"
  ip link set "$veth" master "$BRIDGE" up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$addr/24" dev "$IFACE"
  ip -n "$ns" link set "$IFACE" up
  ip -n "$ns" route add default via "$BRIDGE_ADDR"
}

# The cgroup hierarchies nspawn uses: the cgroup2 one, and on a hybrid
# machine (like this one, where PID 1 is not systemd) the name=systemd one.
cgroup_roots() {
  if [[ $(stat -fc %T /sys/fs/cgroup) == cgroup2fs ]]; then echo /sys/fs/cgroup; return; fi
  local d
  for d in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd; do
    [[ -f $d/cgroup.procs ]] && echo "$d"
  done
  return 0
}

# Boot one host in the background; its nspawn PID goes to NAME.pid.
#
# Each nspawn first moves itself into its own cgroup <root>/$CGROUP/NAME:
# nspawn puts the container into a "payload" cgroup below its own, so two
# nspawns in the same cgroup (here: the root one) would share the container
# cgroup tree and their systemds would trip over each other's units.
start_host() {
  local name=$1 root cg enter=""
  root=$(host_root "$name")
  for cg in $(cgroup_roots); do
    mkdir -p "$cg/$CGROUP/$name"
    enter+="echo \$\$ >$cg/$CGROUP/$name/cgroup.procs; "
  done
  # API_VFS_WRITABLE=network: /proc/sys/net writable (dockerd, ip_forward);
  # @keyring: runc creates a session keyring for every container;
  # /var/lib/docker and /var/lib/containerd on tmpfs: overlayfs on overlayfs
  # fails with "invalid cross-device link".
  SYSTEMD_NSPAWN_API_VFS_WRITABLE=network setsid sh -c "$enter exec \"\$@\"" sh systemd-nspawn -D "$root" \
    --boot --register=no --keep-unit --capability=all --machine="$name" \
    --network-namespace-path="/run/netns/$NETNS_PREFIX$name" \
    --resolv-conf=off --timezone=off --link-journal=no --console=read-only \
    --tmpfs=/var/lib/docker --tmpfs=/var/lib/containerd \
    --system-call-filter=@keyring --bind-ro="$BUSYBOX_TAR:/var/lib/kflan-lab/busybox.tar" \
    </dev/null >"$LAB_DIR/$name.log" 2>&1 &
  echo $! >"$(pid_file "$name")"
}

ssh_ok() {
  # shellcheck disable=SC2046
  ssh $(ssh_opts) -o ConnectTimeout=1 "root@$1" true </dev/null >/dev/null 2>&1
}

wait_ssh() {
  local deadline=$((SECONDS + BOOT_TIMEOUT)) pending=("$@") still name addr
  while ((${#pending[@]})); do
    still=()
    for name in "${pending[@]}"; do
      addr=$(host_addr "$name")
      ssh_ok "$addr" || still+=("$name")
      # The log is kept under another name (the next `up` rewrites NAME.log) and its end shown: an early exit
      # of nspawn says why in its last lines.
      nspawn_pid "$name" >/dev/null || {
        cp -f "$LAB_DIR/$name.log" "$LAB_DIR/$name.failed.log" 2>/dev/null || true
        die "$name: systemd-nspawn exited, see $LAB_DIR/$name.failed.log; its last lines:
$(grep -v '^\s*$' "$LAB_DIR/$name.log" 2>/dev/null | tail -n 8 | sed 's/^/  /')"
      }
    done
    pending=("${still[@]+"${still[@]}"}")
    ((${#pending[@]})) || break
    ((SECONDS < deadline)) || die "no SSH after ${BOOT_TIMEOUT}s from: ${pending[*]} (logs in $LAB_DIR/)"
    sleep 0.3
  done
}

host_addr() { awk -v n="$1" '$1 == n {print $2}' "$LAB_DIR/plan"; }

write_outputs() {
  local etcd_tgz=$1 flannel_tgz=$2 name addr role pid fp line
  : >"$KNOWN_HOSTS"
  local json=()
  while read -r name addr role; do
    line="$addr $(cut -d' ' -f1,2 <"$(host_root "$name")/etc/ssh/ssh_host_ed25519_key.pub")"
    echo "$line" >>"$KNOWN_HOSTS"
    fp=$(ssh-keygen -lf "$(host_root "$name")/etc/ssh/ssh_host_ed25519_key.pub" | awk '{print $2}')
    pid=$(cat "$(pid_file "$name")")
    json+=("$(jq -cn --arg name "$name" --arg address "$addr" --arg role "$role" --argjson pid "$pid" \
      --arg hostKey "$fp" --arg hostKeyLine "$line" \
      '{name: $name, address: $address, role: $role, pid: $pid, hostKey: $hostKey, hostKeyLine: $hostKeyLine}')")
  done <"$LAB_DIR/plan"
  printf '%s\n' "${json[@]}" | jq -s . >"$LAB_DIR/hosts.json"
  write_inventory "$etcd_tgz" "$flannel_tgz"
  write_ssh_config
}

write_inventory() {
  local etcd_tgz=$1 flannel_tgz=$2 masters nodes
  masters=$(awk '$3 == "master" {print $1}' "$LAB_DIR/plan" | paste -sd, - | sed 's/,/, /g')
  nodes=$(awk '$3 == "node" {print $1}' "$LAB_DIR/plan" | paste -sd, - | sed 's/,/, /g')
  {
    echo "# Written by test/lab/lab.sh up: the running lab as a kflan inventory."
    echo "cluster: lab"
    echo "ssh:"
    echo "  user: root"
    echo "  port: 22"
    echo "  identityFile: $KEY"
    echo "hosts:"
    jq -r '.[] | "  - name: \(.name)\n    address: \(.address)\n    interface: '"$IFACE"'\n    hostKey: \"\(.hostKey)\""' \
      "$LAB_DIR/hosts.json"
    echo "roles:"
    echo "  masters: [$masters]"
    echo "  nodes: [$nodes]"
    echo "  etcd: [$masters]"
    echo "  flannel: [$nodes]"
    echo "etcd:"
    echo "  version: \"$(bundle_version "$etcd_tgz")\""
    echo "  tarball: $etcd_tgz"
    echo "flannel:"
    echo "  version: \"$(bundle_version "$flannel_tgz")\""
    echo "  tarball: $flannel_tgz"
    echo "  network: 10.244.0.0/16"
    echo "  backend:"
    echo "    type: vxlan"
    echo "docker:"
    echo "  enabled: true"
  } >"$LAB_DIR/inventory.yaml"
}

# For people: `ssh -F .lab/ssh_config lab-m1`.
write_ssh_config() {
  local name addr role
  while read -r name addr role; do
    printf 'Host %s\n  HostName %s\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n  StrictHostKeyChecking yes\n\n' \
      "$name" "$addr" "$KEY" "$KNOWN_HOSTS"
  done <"$LAB_DIR/plan" >"$LAB_DIR/ssh_config"
}

# True when a lab (or what a crashed one left) is there.
lab_is_up() {
  ip link show "$BRIDGE" >/dev/null 2>&1 && return 0
  compgen -G "$LAB_DIR/*.pid" >/dev/null && return 0
  ip netns list 2>/dev/null | grep -q "^$NETNS_PREFIX" && return 0
  awk -v d="$LAB_DIR/" 'index($2, d) == 1 {found = 1} END {exit !found}' /proc/mounts && return 0
  local cg
  for cg in $(cgroup_roots); do [[ -d $cg/$CGROUP ]] && return 0; done
  return 1
}

# PIDs of every process in the lab's cgroups (containers whose nspawn died
# included): the lab made those cgroups and only its hosts run in them.
lab_cgroup_pids() {
  local cg
  for cg in $(cgroup_roots); do
    [[ -d $cg/$CGROUP ]] && find "$cg/$CGROUP" -name cgroup.procs -exec cat {} + 2>/dev/null
  done
  return 0
}

# ---------------------------------------------------------------- commands

cmd_up() {
  local masters=3 nodes=2
  while (($#)); do
    case $1 in
      --flannel | --etcd) set_version "$1" "${2:-}"; shift 2 ;;
      --flannel=* | --etcd=*) set_version "${1%%=*}" "${1#*=}"; shift ;;
      --masters) masters=${2:-}; shift $(($# > 1 ? 2 : 1)) ;;
      --masters=*) masters=${1#*=}; shift ;;
      --nodes) nodes=${2:-}; shift $(($# > 1 ? 2 : 1)) ;;
      --nodes=*) nodes=${1#*=}; shift ;;
      *) bad_usage "up: unknown argument $1" ;;
    esac
  done
  [[ $masters =~ ^[0-9]$ && $nodes =~ ^[0-9]$ ]] || bad_usage "up: --masters and --nodes take 0..9"
  ((masters + nodes > 0)) || bad_usage "up: no hosts"
  preflight
  # Unknown versions fail here, before anything is taken down or built.
  check_versions
  # Policy: an existing (or crashed) lab is taken down first.
  if lab_is_up; then
    log "a lab is already up (or left over): taking it down first"
    cmd_down
  fi
  local t0=$SECONDS image etcd_tgz flannel_tgz
  image=$(ensure_image)
  etcd_tgz=$(ensure_bundle etcd "$ETCD_V")
  flannel_tgz=$(ensure_bundle flannel "$FLANNEL_V")
  BUSYBOX_TAR=$(ensure_busybox_tar)
  ensure_key
  mkdir -p "$LAB_DIR/hosts"
  # All per-host writable state lives on one tmpfs: fast, and gone at umount.
  mount -t tmpfs -o mode=0755 kflanlab-hosts "$LAB_DIR/hosts"
  host_plan "$masters" "$nodes" >"$LAB_DIR/plan"
  setup_bridge

  local name addr role names=()
  while read -r name addr role; do
    prepare_host "$name" "$addr" "$image"
    names+=("$name")
  done <"$LAB_DIR/plan"
  for name in "${names[@]}"; do start_host "$name"; done
  # known_hosts before the wait, so the wait already checks host keys.
  write_outputs "$etcd_tgz" "$flannel_tgz"
  wait_ssh "${names[@]}"
  load_busybox "${names[@]}"
  log "lab up: ${#names[@]} hosts in $((SECONDS - t0)) s"
  cmd_status
}

# Stop containers (poweroff via SIGTERM to nspawn, SIGKILL after a bound),
# then undo mounts, namespaces, links, rules and dirs. Idempotent; touches only
# what carries the lab's names or lives under $LAB_DIR.
cmd_down() {
  [[ $(id -u) == 0 ]] || die "must run as root"
  local pids=() inits=() f pid name i
  # Our nspawns: from the pid files, plus any whose pid file was lost.
  for f in "$LAB_DIR"/*.pid; do
    [[ -f $f ]] || continue
    name=$(basename "$f" .pid)
    pid=$(nspawn_pid "$name") && { pids+=("$pid"); i=$(init_pid "$name") && inits+=("$i"); }
  done
  for pid in $(find_stray_nspawns); do
    [[ " ${pids[*]-} " == *" $pid "* ]] || pids+=("$pid")
  done
  if ((${#pids[@]})); then
    kill -TERM "${pids[@]}" 2>/dev/null || true  # nspawn asks the container's systemd to power off
    for ((i = 0; i < 30; i++)); do
      alive "${pids[@]}" || break
      sleep 0.1
    done
    if alive "${pids[@]}"; then
      # Killing a PID namespace's init kills every process in it.
      ((${#inits[@]})) && kill -KILL "${inits[@]}" 2>/dev/null || true
      kill -KILL "${pids[@]}" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do alive "${pids[@]}" || break; sleep 0.1; done
    fi
  fi
  # Whatever is left in the lab's cgroups (e.g. a container whose nspawn was
  # SIGKILLed keeps running on its own): kill it by PID.
  local left
  for ((i = 0; i < 50; i++)); do
    left=$(lab_cgroup_pids | sort -u | tr '\n' ' ')
    [[ -n ${left// /} ]] || break
    # shellcheck disable=SC2086
    kill -KILL $left 2>/dev/null || true
    sleep 0.1
  done
  rm -f "$LAB_DIR"/*.pid

  # Mounts under $LAB_DIR, deepest first.
  local m
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m"
  done < <(awk -v d="$LAB_DIR/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r)

  for m in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$NETNS_PREFIX" || true); do
    ip netns del "$m"
  done
  for m in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$VETH_PREFIX" || true); do
    ip link del "$m" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  while iptables -w -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment "$IPT_COMMENT" -j ACCEPT 2>/dev/null; do :; done

  for m in $(cgroup_roots); do
    [[ -d $m/$CGROUP ]] && { find "$m/$CGROUP" -depth -type d -exec rmdir {} + 2>/dev/null || true; }
  done
  rm -rf "$LAB_DIR/hosts"
  rm -f "$LAB_DIR"/{hosts.json,inventory.yaml,known_hosts,ssh_config,plan}
}

cmd_bundles() {
  while (($#)); do
    case $1 in
      --flannel | --etcd) set_version "$1" "${2:-}"; shift 2 ;;
      --flannel=* | --etcd=*) set_version "${1%%=*}" "${1#*=}"; shift ;;
      *) bad_usage "bundles: unknown argument $1" ;;
    esac
  done
  check_versions
  ensure_bundle etcd "$ETCD_V"
  ensure_bundle flannel "$FLANNEL_V"
}

alive() { local p; for p; do [[ -e /proc/$p ]] && return 0; done; return 1; }

find_stray_nspawns() {
  local p
  for p in /proc/[0-9]*; do
    is_our_nspawn "${p#/proc/}" && echo "${p#/proc/}"
  done
  return 0
}

cmd_status() {
  [[ -f $LAB_DIR/hosts.json ]] || { echo "no lab (run: lab.sh up)"; return 0; }
  local name addr role pid st ok
  printf '%-8s %-13s %-6s %-8s %-5s %s\n' NAME ADDRESS ROLE PID STATE SSH
  while IFS=$'\t' read -r name addr role pid; do
    if is_our_nspawn "$pid"; then st=up; else st=gone; fi
    if ssh_ok "$addr"; then ok=ok; else ok=no; fi
    printf '%-8s %-13s %-6s %-8s %-5s %s\n' "$name" "$addr" "$role" "$pid" "$st" "$ok"
  done < <(jq -r '.[] | [.name, .address, .role, .pid] | @tsv' "$LAB_DIR/hosts.json")
}

lookup_addr() {
  [[ -f $LAB_DIR/hosts.json ]] || die "no lab (run: lab.sh up)"
  local a
  a=$(jq -r --arg n "$1" '.[] | select(.name == $n) | .address' "$LAB_DIR/hosts.json")
  [[ -n $a ]] || die "no such lab host: $1"
  echo "$a"
}

cmd_ssh() {
  local name=${1:?usage: lab.sh ssh NAME [cmd...]} addr tty=()
  shift
  addr=$(lookup_addr "$name")
  (($#)) || tty=(-t)
  # shellcheck disable=SC2046
  exec ssh $(ssh_opts) -o ConnectTimeout=5 "${tty[@]+"${tty[@]}"}" "root@$addr" "$@"
}

# Runs "cmd..." (joined like ssh joins them) through sh inside the host's
# namespaces: works when sshd or the network inside the host is broken.
cmd_exec() {
  local name=${1:?usage: lab.sh exec NAME cmd...} pid
  shift
  (($#)) || die "usage: lab.sh exec NAME cmd..."
  pid=$(init_pid "$name") || die "$name is not running"
  exec nsenter -t "$pid" -a -- /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    TERM="${TERM:-dumb}" /bin/sh -c "cd /root && $*"
}

usage() { sed -n '2,/^set -Eeuo/p' "$LAB_SH" | sed '$d; s/^# \{0,1\}//'; }

main() {
  local cmd=${1:-help}
  (($#)) && shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    status) cmd_status ;;
    ssh) cmd_ssh "$@" ;;
    exec) cmd_exec "$@" ;;
    image) preflight; ensure_image ;;
    bundles) preflight; cmd_bundles "$@" ;;
    help | -h | --help) usage ;;
    *) usage >&2; exit 2 ;;
  esac
}

# One line: bash has read it whole before main runs, so editing this file
# while it runs cannot feed bash a half-read tail.
main "$@"; exit $?
