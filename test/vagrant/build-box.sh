#!/usr/bin/env bash
# test/vagrant/build-box.sh: builds the Vagrant box the kflan Vagrant job boots (libvirt provider), from
# debootstrap, and prints the path of the .box file. Cached: a box built from the same recipe is reused.
#
#   build-box.sh           build the box if missing, print its path
#   build-box.sh --force   rebuild it
#
# The box (docs/vagrant.md): Debian 12 (bookworm), one ext4 partition booted by extlinux, Debian's cloud kernel
# (virtio drivers built in, vxlan/overlay/br_netfilter as modules), interfaces named eth0/eth1
# (net.ifnames=0), systemd-networkd with DHCP on eth0 (client id = MAC), a `vagrant` user with Vagrant's
# insecure public key (taken from the installed vagrant) and passwordless sudo, docker.io + iptables + etcd-client
# and the rest of what kflan's hosts need baked in, so the slow (emulated) guest CPU spends no time in apt; docker
# installed but not started at boot (kflan init enables and starts it with flannel's options).
# Clones stay distinct: empty /etc/machine-id (systemd makes one at first boot), no SSH host keys in the image
# (a unit makes the ed25519 host key at first boot), DHCP client id by MAC.
#
# Environment: KFLAN_VAGRANT_CACHE (default /var/cache/kflan-vagrant), KFLAN_VAGRANT_DISK_GB (default 4).
# Format: libvirt box = tar.gz of box.img (qcow2), metadata.json, Vagrantfile.
set -Eeuo pipefail
# shellcheck disable=SC2154 # rc is set inside the trap
trap 'rc=$?; echo "build-box: error: \"$BASH_COMMAND\" failed (exit $rc) at line $LINENO" >&2; exit $rc' ERR

CACHE=${KFLAN_VAGRANT_CACHE:-/var/cache/kflan-vagrant}
DISK_GB=${KFLAN_VAGRANT_DISK_GB:-4}
SUITE=bookworm
BOX_NAME=kflan/debian12

# What the guests need: what the lab's hosts have (test/lab/lab.sh IMAGE_PACKAGES), plus a kernel, systemd-networkd
# (part of systemd) and the pieces Vagrant uses (sudo, openssh-server, rsync is not needed: synced folders are off).
BOX_PACKAGES=(
  systemd systemd-sysv dbus openssh-server sudo iproute2 iptables docker.io curl iputils-ping procps kmod
  ca-certificates jq etcd-client linux-image-cloud-amd64 initramfs-tools zstd
)

log() { printf 'build-box: %s\n' "$*" >&2; }
die() { printf 'build-box: error: %s\n' "$*" >&2; exit 1; }

declare -A NEEDS=([debootstrap]=debootstrap [extlinux]=extlinux [sfdisk]=fdisk [mkfs.ext4]=e2fsprogs
  [qemu-img]=qemu-utils [losetup]=mount [tar]=tar [vagrant]=vagrant)

preflight() {
  [[ $(id -u) == 0 ]] || die "must run as root (debootstrap, loop device)"
  local missing=() cmd
  for cmd in "${!NEEDS[@]}"; do command -v "$cmd" >/dev/null || missing+=("${NEEDS[$cmd]}"); done
  ((${#missing[@]} == 0)) || die "missing commands; run scripts/setup-vagrant.sh (apt-get install ${missing[*]})"
  [[ -f $(mbr_bin) ]] || die "no syslinux MBR ($(mbr_bin)); apt-get install syslinux-common"
  [[ -n $(insecure_key) ]] || die "Vagrant's insecure public key not found (is vagrant installed?)"
}

mbr_bin() { echo /usr/lib/syslinux/mbr/mbr.bin; }

# Vagrant's insecure public key, from the vagrant installed here (Debian: under rubygems-integration).
insecure_key() {
  local d
  d=$(gem contents vagrant 2>/dev/null | grep -m1 '/keys/vagrant.pub$' || true)
  [[ -n $d ]] || d=$(ls -1 /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub \
    /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub 2>/dev/null | tail -n1 || true)
  echo "$d"
}

# The Debian mirror and security mirror this machine's apt uses (never written into the repo).
apt_uri() { apt-cache policy | awk -v s="$1" '$3 == s"/main" && $4 == "amd64" {print $2; exit}'; }

recipe_hash() {
  { printf '%s\n' "${BOX_PACKAGES[@]}" "$SUITE" "$DISK_GB"; declare -f build customize box_files; cat "$(insecure_key)"; } |
    sha256sum | cut -c1-12
}

box_path() { echo "$CACHE/kflan-debian12-$(recipe_hash).box"; }

LOOP= MNT=
cleanup() {
  if [[ -n $MNT ]]; then
    umount "$MNT/proc" "$MNT/sys" "$MNT/dev" 2>/dev/null || true
    umount "$MNT" 2>/dev/null || true
  fi
  [[ -n $LOOP ]] && losetup -d "$LOOP" 2>/dev/null
  LOOP= MNT=
}

build() {
  local out=$1 tmp mirror sec uuid start=2048 part_bytes
  mirror=$(apt_uri "$SUITE")
  sec=$(apt_uri "$SUITE-security")
  [[ -n $mirror ]] || die "no Debian $SUITE mirror in this machine's apt sources (apt-cache policy)"
  tmp=$(mktemp -d "$CACHE/.box-build.XXXXXX")
  trap 'cleanup; rm -rf "$tmp"' EXIT
  log "building $(basename "$out") from $SUITE via $mirror (log: $tmp/build.log)"
  # Raw disk: MBR, one bootable Linux partition from 1 MiB to the end.
  truncate -s "${DISK_GB}G" "$tmp/disk.raw"
  echo "start=$start, type=83, bootable" | sfdisk -q "$tmp/disk.raw"
  part_bytes=$(((DISK_GB * 1024 * 1024 * 1024) - start * 512))
  uuid=$(cat /proc/sys/kernel/random/uuid)
  # syslinux 6.04 reads neither 64-bit ext4 nor metadata checksums.
  mkfs.ext4 -q -F -L kflanroot -U "$uuid" -O ^64bit,^metadata_csum -E offset=$((start * 512)) \
    "$tmp/disk.raw" "$((part_bytes / 1024))k"
  LOOP=$(losetup -f --show -o $((start * 512)) --sizelimit "$part_bytes" "$tmp/disk.raw")
  MNT=$tmp/mnt
  mkdir -p "$MNT"
  mount "$LOOP" "$MNT"
  debootstrap --variant=minbase "$SUITE" "$MNT" "$mirror" >>"$tmp/build.log" 2>&1 ||
    die "debootstrap failed: $(tail -n5 "$tmp/build.log")"
  {
    echo "deb $mirror $SUITE main"
    echo "deb $mirror $SUITE-updates main"
    [[ -n $sec ]] && echo "deb $sec $SUITE-security main"
  } >"$MNT/etc/apt/sources.list"
  printf '#!/bin/sh\nexit 101\n' >"$MNT/usr/sbin/policy-rc.d"
  chmod 755 "$MNT/usr/sbin/policy-rc.d"
  printf 'UUID=%s / ext4 errors=remount-ro 0 1\n' "$uuid" >"$MNT/etc/fstab"
  mount -t proc proc "$MNT/proc"
  mount -t sysfs sys "$MNT/sys"
  mount --bind /dev "$MNT/dev"
  # The initramfs only needs what boots this virtual disk (MODULES=dep would probe this machine).
  mkdir -p "$MNT/etc/initramfs-tools/conf.d"
  echo 'MODULES=most' >"$MNT/etc/initramfs-tools/conf.d/kflan.conf"
  chroot "$MNT" /usr/bin/env DEBIAN_FRONTEND=noninteractive sh -c \
    "apt-get update -q && apt-get install -y -q --no-install-recommends $(printf '%s ' "${BOX_PACKAGES[@]}")" \
    >>"$tmp/build.log" 2>&1 || die "package install failed: $(tail -n5 "$tmp/build.log")"
  customize "$MNT" "$uuid"
  rm -f "$MNT/usr/sbin/policy-rc.d"
  rm -rf "$MNT"/var/lib/apt/lists/* "$MNT"/var/cache/apt/*.bin "$MNT"/var/cache/apt/archives/*.deb
  umount "$MNT/proc" "$MNT/sys" "$MNT/dev"
  # Boot loader: extlinux in the partition, syslinux's MBR code in the first 440 bytes.
  mkdir -p "$MNT/boot/extlinux"
  extlinux --install "$MNT/boot/extlinux" >>"$tmp/build.log" 2>&1
  cat >"$MNT/boot/extlinux/extlinux.conf" <<EOF
DEFAULT debian
TIMEOUT 0
PROMPT 0
LABEL debian
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND root=UUID=$uuid ro net.ifnames=0 biosdevname=0 console=tty0 console=ttyS0,115200n8
EOF
  fstrim "$MNT" 2>/dev/null || true
  umount "$MNT"
  # The file system must be clean (journal checkpointed) before it is copied into the box: a box whose journal
  # still needs recovery boots into "Detected aborted journal" and a read-only root.
  e2fsck -fn "$LOOP" >>"$tmp/build.log" 2>&1 || die "the box's file system is not clean after umount: $(tail -n5 "$tmp/build.log")"
  losetup -d "$LOOP"
  LOOP= MNT=
  dd if="$(mbr_bin)" of="$tmp/disk.raw" bs=440 count=1 conv=notrunc status=none
  mkdir -p "$tmp/box"
  qemu-img convert -O qcow2 -c "$tmp/disk.raw" "$tmp/box/box.img"
  rm -f "$tmp/disk.raw"
  box_files "$tmp/box"
  tar -C "$tmp/box" -czf "$tmp/out.box" metadata.json Vagrantfile box.img
  mv "$tmp/out.box" "$out"
  rm -rf "$tmp"
  trap - EXIT
}

# Everything that makes the image a box: users, network, identity at first boot, fast boot.
customize() {
  local root=$1 unit
  chroot "$root" useradd -m -s /bin/bash -G docker vagrant
  chroot "$root" passwd -l vagrant >/dev/null
  install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
  install -m 0600 -o 1000 -g 1000 "$(insecure_key)" "$root/home/vagrant/.ssh/authorized_keys"
  echo 'vagrant ALL=(ALL) NOPASSWD: ALL' >"$root/etc/sudoers.d/vagrant"
  chmod 0440 "$root/etc/sudoers.d/vagrant"
  # eth0: Vagrant's NAT/management network, DHCP with the MAC as client id (clones share the machine-id source
  # image, and DUID-based ids would collide). eth1..: written by Vagrant (it detects systemd-networkd).
  mkdir -p "$root/etc/systemd/network"
  cat >"$root/etc/systemd/network/10-eth0.network" <<'EOF'
[Match]
Name=eth0

[Network]
DHCP=ipv4

[DHCPv4]
ClientIdentifier=mac
EOF
  chroot "$root" systemctl enable systemd-networkd.service ssh.service >/dev/null 2>&1
  # docker (and its socket and containerd) do not start at boot: on an emulated CPU dockerd's first start takes
  # minutes, and kflan's docker phase enables docker and (re)starts it with the flannel options anyway, so a start
  # at boot is work done twice. `kflan init` enables docker.service, so it starts at the next boot.
  chroot "$root" systemctl disable docker.service docker.socket containerd.service >/dev/null 2>&1
  # resolv.conf: the libvirt network's dnsmasq via DHCP is not wired into a resolver here; nothing in the guest
  # needs names (kflan uses addresses).
  : >"$root/etc/resolv.conf"
  # SSH: an ed25519 host key made at first boot (one key type: one fingerprint to pin), no reverse DNS.
  rm -f "$root"/etc/ssh/ssh_host_*
  cat >"$root/etc/ssh/sshd_config.d/kflan-box.conf" <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
UseDNS no
PasswordAuthentication no
KbdInteractiveAuthentication no
EOF
  cat >"$root/etc/systemd/system/kflan-ssh-hostkey.service" <<'EOF'
[Unit]
Description=Make this machine's SSH host key (first boot of a clone)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
WantedBy=ssh.service
EOF
  chroot "$root" systemctl enable kflan-ssh-hostkey.service >/dev/null 2>&1
  # Identity: systemd writes a new machine-id at first boot when the file is empty.
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
  echo kflan-box >"$root/etc/hostname"
  # Units that slow an emulated boot or wait for what is not there.
  for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
    man-db.timer systemd-networkd-wait-online.service e2scrub_reap.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  mkdir -p "$root/etc/systemd/journald.conf.d"
  printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=32M\n' >"$root/etc/systemd/journald.conf.d/kflan-box.conf"
  echo "kflan Vagrant box, suite $SUITE, packages: ${BOX_PACKAGES[*]}" >"$root/etc/kflan-box"
}

box_files() {
  local dir=$1 vsize
  vsize=$(qemu-img info --output=json "$dir/box.img" | jq '."virtual-size" / 1073741824 | ceil')
  printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": %s}\n' "$vsize" >"$dir/metadata.json"
  cat >"$dir/Vagrantfile" <<'EOF'
# Box defaults (kflan/debian12, built by kflan's test/vagrant/build-box.sh).
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |libvirt|
    libvirt.disk_bus = "virtio"
    libvirt.nic_model_type = "virtio"
  end
end
EOF
}

main() {
  # The image is mounted in a mount namespace of this script's own. Mounted in the machine's, it is copied into
  # every mount namespace created meanwhile (other jobs' containers, a libvirtd started in its own), stays mounted
  # there after our umount, and is copied into the box with its journal not yet written back (seen here: the box
  # booted into "EXT4-fs error ... Detected aborted journal").
  if [[ ${KFLAN_BOX_MOUNT_NS:-} != $$ ]]; then
    KFLAN_BOX_MOUNT_NS=$$ exec unshare -m --propagation private -- "$0" "$@"
  fi
  local force=0
  [[ ${1:-} == --force ]] && force=1
  [[ $# -le $force ]] || die "usage: build-box.sh [--force]"
  preflight
  mkdir -p "$CACHE"
  local out
  out=$(box_path)
  if [[ -f $out && $force == 0 ]]; then echo "$out"; return; fi
  exec 9>"$CACHE/.box.lock"
  flock 9
  if [[ ! -f $out || $force == 1 ]]; then
    rm -rf "$CACHE"/.box-build.*
    local t0=$SECONDS
    build "$out"
    echo "$((SECONDS - t0))" >"$CACHE/last-box-build-seconds"
    log "box built in $((SECONDS - t0)) s: $out ($(du -h "$out" | cut -f1))"
    local f
    for f in "$CACHE"/kflan-debian12-*.box; do [[ $f == "$out" ]] || { log "removing old box $f"; rm -f "$f"; }; done
  fi
  echo "$out"
}

main "$@"
