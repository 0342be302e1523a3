#!/usr/bin/env bash
# bench/lab.sh: figures for the kflan test lab (test/lab/lab.sh, docs/lab.md).
#
#   bench/lab.sh [--runs N] [--masters M] [--nodes N]
#
# Prints: image build time (if the image had to be built), time of `lab.sh up`
# until every host answers SSH, time of `lab.sh down`, and memory per idle host
# (PSS and RSS of the host's processes, plus the tmpfs its writable layers use).
# Needs root, like the lab. Leaves no lab behind.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LAB=$REPO/test/lab/lab.sh
LAB_ID=${KFLAN_LAB_ID:-0}
LAB_DIR=${KFLAN_LAB_DIR:-$REPO/.lab${LAB_ID#0}}
CACHE=${KFLAN_LAB_CACHE:-/var/cache/kflan-lab}
RUNS=3 MASTERS=3 NODES=2

while (($#)); do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --masters) MASTERS=$2; shift 2 ;;
    --nodes) NODES=$2; shift 2 ;;
    *) echo "usage: $0 [--runs N] [--masters M] [--nodes N]" >&2; exit 2 ;;
  esac
done

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }

# Sum of a field (kB) of /proc/PID/smaps_rollup or status over PIDs.
sum_kb() {
  local field=$1 file=$2 pid total=0 v
  shift 2
  for pid in "$@"; do
    v=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/$file" 2>/dev/null || true)
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

host_pids() {
  local cg
  for cg in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd /sys/fs/cgroup; do
    if [[ -d $cg/kflan-lab/$1 ]]; then
      find "$cg/kflan-lab/$1" -name cgroup.procs -exec cat {} + | sort -un
      return
    fi
  done
}

echo "kflan lab benchmark: $MASTERS masters + $NODES nodes, $RUNS run(s), $(nproc) cores, $(free -g | awk '/^Mem:/ {print $2}') GiB"

# Image: build it now if missing, so `up` below measures a cached image.
t0=$(now)
"$LAB" image >/dev/null 2>"$LAB_DIR.bench-image.log" || { cat "$LAB_DIR.bench-image.log" >&2; exit 1; }
t1=$(now)
if grep -q 'image built' "$LAB_DIR.bench-image.log"; then
  echo "image build:        $(secs "$t0" "$t1") s (built now)"
else
  echo "image build:        cached (last build took $(cat "$CACHE/last-build-seconds" 2>/dev/null || echo '?') s)"
fi
rm -f "$LAB_DIR.bench-image.log"
"$LAB" down

ups=() downs=()
for ((r = 1; r <= RUNS; r++)); do
  t0=$(now)
  "$LAB" up --masters "$MASTERS" --nodes "$NODES" >"$LAB_DIR.bench-up.log" 2>&1 ||
    { echo "lab.sh up failed:" >&2; cat "$LAB_DIR.bench-up.log" >&2; exit 1; }
  rm -f "$LAB_DIR.bench-up.log"
  t1=$(now)
  ups+=("$(secs "$t0" "$t1")")
  if ((r == RUNS)); then
    sleep 10 # let the hosts settle to idle
    printf '%-8s %9s %9s %11s %6s\n' HOST PSS_MiB RSS_MiB TMPFS_MiB PROCS
    for name in $(jq -r '.[].name' "$LAB_DIR/hosts.json"); do
      mapfile -t pids < <(host_pids "$name")
      pss=$(sum_kb Pss smaps_rollup "${pids[@]}")
      rss=$(sum_kb VmRSS status "${pids[@]}")
      # writable layers: the overlay upper dir + the docker/containerd tmpfs
      upper=$(du -sk "$LAB_DIR/hosts/$name/upper" | cut -f1)
      inner=$("$LAB" exec "$name" 'df -k --output=used /var/lib/docker /var/lib/containerd | tail -n +2' | awk '{s += $1} END {print s + 0}')
      awk -v n="$name" -v p="$pss" -v r="$rss" -v t="$((upper + inner))" -v c="${#pids[@]}" \
        'BEGIN {printf "%-8s %9.1f %9.1f %11.1f %6d\n", n, p / 1024, r / 1024, t / 1024, c}'
    done
  fi
  t0=$(now)
  "$LAB" down
  t1=$(now)
  downs+=("$(secs "$t0" "$t1")")
done

echo "up (to SSH on all): ${ups[*]} s"
echo "down:               ${downs[*]} s"
