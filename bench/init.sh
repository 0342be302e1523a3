#!/usr/bin/env bash
# bench/init.sh: figures for `kflan init` on the lab (real hosts, see docs/lab.md).
#
#   bench/init.sh [--runs N]
#
# For 3 masters + 2 nodes: init on fresh hosts, and a re-run on the converged cluster (N runs
# each, every run on a fresh lab for the first figure). Then the scaling figure: init of 3 hosts
# (1 master, 2 nodes) against 9 hosts (3 masters, 6 nodes). Prints wall times; asserts nothing.
# Needs root and a built kflan (npm run build). Leaves no lab behind. KFLAN_LAB_ID picks the lab.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB=$REPO/test/lab/lab.sh
LAB_ID=${KFLAN_LAB_ID:-0}
LAB_DIR=${KFLAN_LAB_DIR:-$REPO/.lab${LAB_ID#0}}
KFLAN="node $REPO/bin/run.js"
RUNS=3
while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N]" >&2; exit 2 ;;
  esac
done

state=$(mktemp -d)
trap '"$LAB" down >/dev/null 2>&1 || true; rm -rf "$state"' EXIT

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# init on a fresh lab of M masters + N nodes; prints the wall time.
fresh_init() {
  "$LAB" up --masters "$1" --nodes "$2" >/dev/null 2>&1
  rm -rf "$state/s"
  local t0 t1
  t0=$(now)
  $KFLAN init -i "$LAB_DIR/inventory.yaml" --state-dir "$state/s" >"$state/out" 2>&1 || { cat "$state/out" >&2; exit 1; }
  t1=$(now)
  secs "$t0" "$t1"
}

rerun() {
  local t0 t1
  t0=$(now)
  $KFLAN init -i "$LAB_DIR/inventory.yaml" --state-dir "$state/s" >"$state/out" 2>&1 || { cat "$state/out" >&2; exit 1; }
  t1=$(now)
  grep -q 'nothing changed' "$state/out" || { echo "re-run changed something:" >&2; cat "$state/out" >&2; exit 1; }
  secs "$t0" "$t1"
}

echo "kflan init benchmark ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
inits=() reruns=()
for ((i = 1; i <= RUNS; i++)); do
  inits+=("$(fresh_init 3 2)")
  for ((j = 1; j <= RUNS; j++)); do reruns+=("$(rerun)"); done
done
printf 'init, 3 masters + 2 nodes, fresh hosts:   %s s (median of %d: %s)\n' "$(printf '%s\n' "${inits[@]}" | median)" "$RUNS" "${inits[*]}"
printf 're-run on the converged cluster:          %s s (median of %d: %s)\n' "$(printf '%s\n' "${reruns[@]}" | median)" "${#reruns[@]}" "${reruns[*]}"

small=$(fresh_init 1 2)
large=$(fresh_init 3 6)
printf 'init, 3 hosts (1 master + 2 nodes):       %s s\n' "$small"
printf 'init, 9 hosts (3 masters + 6 nodes):      %s s (%.2fx the 3-host time)\n' "$large" "$(awk -v a="$large" -v b="$small" 'BEGIN {print a / b}')"
