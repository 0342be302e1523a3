#!/usr/bin/env bash
# The whole test suite: build, unit tests, end-to-end tests against the lab (real hosts), then the Vagrant job
# (real VMs: test/vagrant/run.sh, docs/vagrant.md). Ends with one plain line "N passed, N failed[, N skipped]",
# the Vagrant job's checks counted in. Arguments go to vitest and leave the Vagrant job out
# (`npm test -- --project unit`); KFLAN_TEST_VAGRANT=0 leaves it out too.
set -uo pipefail
cd "$(dirname "$0")/.."
npm run --silent build || exit 1
results=$(mktemp)
npx vitest run --reporter=default --reporter=json --outputFile="$results" "$@"
rc=$?
counts=$(node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))
  console.log(r.numPassedTests, r.numFailedTests, r.numPendingTests + r.numTodoTests)
' "$results" 2>/dev/null) || counts=
rm -f "$results"
read -r p f s <<<"${counts:-0 0 0}"
if [ $# -eq 0 ] && [ "${KFLAN_TEST_VAGRANT:-1}" != 0 ]; then
  vlog=$(mktemp)
  test/vagrant/run.sh | tee "$vlog"
  vrc=${PIPESTATUS[0]}
  # The job's last line: "vagrant job: N passed, N failed".
  read -r vp vf < <(sed -nE 's/^vagrant job: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$vlog" | tail -n1)
  rm -f "$vlog"
  p=$((p + ${vp:-0})); f=$((f + ${vf:-0}))
  [ "$vrc" -eq 0 ] || { [ "${vf:-0}" -gt 0 ] || f=$((f + 1)); rc=1; }
fi
if [ -z "$counts" ]; then echo "no vitest results (vitest exit $rc); $p passed, $f failed"; else
  echo "$p passed, $f failed$([ "$s" -gt 0 ] && echo ", $s skipped")"; fi
exit $rc
