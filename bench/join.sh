#!/usr/bin/env bash
# bench/join.sh: wall time of `kflan join node` on the lab: a cluster of 1 master + 2 nodes is
# initialised, then a third node joins (and the join's doctor run, pings included). Prints figures.
# Needs root and a built kflan. Leaves no lab behind. KFLAN_LAB_ID picks the lab.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB=$REPO/test/lab/lab.sh
LAB_ID=${KFLAN_LAB_ID:-0}
LAB_DIR=${KFLAN_LAB_DIR:-$REPO/.lab${LAB_ID#0}}
tmp=$(mktemp -d)
trap '"$LAB" down >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
"$LAB" up --masters 1 --nodes 3 >/dev/null 2>&1
# The inventory without lab-n3, for the initial cluster.
sed -e '/^  - name: lab-n3$/,/^  - name\|^roles:/{/^  - name: lab-n3$/d;/^    /d}' -e 's/, lab-n3\]/]/g' "$LAB_DIR/inventory.yaml" >"$tmp/before.yaml"
node "$REPO/bin/run.js" init -i "$tmp/before.yaml" --state-dir "$tmp/s" >"$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
t0=$(date +%s.%N)
node "$REPO/bin/run.js" join node lab-n3 -i "$LAB_DIR/inventory.yaml" --state-dir "$tmp/s" >"$tmp/out" 2>&1 || { cat "$tmp/out"; exit 1; }
t1=$(date +%s.%N)
node "$REPO/bin/run.js" join node lab-n3 -i "$LAB_DIR/inventory.yaml" --state-dir "$tmp/s" >"$tmp/out2" 2>&1 || { cat "$tmp/out2"; exit 1; }
t2=$(date +%s.%N)
echo "kflan join node benchmark ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
awk -v a="$t0" -v b="$t1" 'BEGIN {printf "join node (new node, doctor included):   %.2f s\n", b - a}'
awk -v a="$t1" -v b="$t2" 'BEGIN {printf "join node again (nothing to do):         %.2f s\n", b - a}'
