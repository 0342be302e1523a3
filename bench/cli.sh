#!/usr/bin/env bash
# bench/cli.sh: start-up figures of the CLI (no host contacted): `kflan --help` and
# `kflan validate` on the example inventory. Prints the median wall time of N runs.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${1:-10}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The example's tarballs and identity file need not exist: validate reports them as warnings
# (exit 0); a copy with existing files times the path without warnings.
touch "$tmp/etcd.tgz" "$tmp/flannel.tgz" "$tmp/id"
sed -e "s#../bundles/etcd-v3.4.23-linux-amd64.tar.gz#$tmp/etcd.tgz#" -e "s#../bundles/flannel-v0.26.1-linux-amd64.tar.gz#$tmp/flannel.tgz#" \
  -e "s#~/.ssh/id_ed25519#$tmp/id#" "$REPO/inventories/example.yaml" >"$tmp/example.yaml"
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
time_it() {
  local i t0 t1
  for ((i = 0; i < RUNS; i++)); do
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
  done | median
}
node "$REPO/bin/run.js" validate -i "$tmp/example.yaml" >/dev/null # warm the file cache
echo "kflan --help:                 $(time_it node "$REPO/bin/run.js" --help) ms (median of $RUNS)"
echo "kflan validate (example):     $(time_it node "$REPO/bin/run.js" validate -i "$tmp/example.yaml") ms (median of $RUNS)"
