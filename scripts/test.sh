#!/usr/bin/env bash
# The whole test suite: lint, build, unit tests, end-to-end tests against the lab (real hosts), then the
# Vagrant job (real VMs: test/vagrant/run.sh, docs/vagrant.md), after vitest so that the emulated guests
# get the CPU to themselves. Ends with one plain line "N passed, N failed[, N skipped]", the Vagrant job's
# checks counted in. Arguments go to vitest (`npm test -- --project unit`) and skip lint and the Vagrant
# job; KFLAN_TEST_VAGRANT=0 leaves the job out (said in the last line). Like the lab, the job needs root.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
  npm run --silent lint || { echo "test: lint failed (npm run format fixes what it can)" >&2; exit 1; }
fi
npm run --silent build || exit 1
# The lab's release bundles (real flanneld and etcd, every version the matrix uses) are built
# before the tests, once and cached, so no test hook waits for a Go build. Only where the lab
# can run (root); a failed build fails the run.
if [ "$(id -u)" -eq 0 ]; then
  test/lab/bundles.sh all >/dev/null || { echo "test: building the lab's bundles failed" >&2; exit 1; }
fi
results=$(mktemp)
npx vitest run --reporter=default --reporter=json --outputFile="$results" "$@"
rc=$?
# A test file whose setup failed (a beforeAll hook: the lab did not come up) has its tests skipped, not
# failed: it counts as one failure here, so that the last line never says "0 failed" for a failed run.
counts=$(node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))
  const broken = r.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed"))
  console.log(r.numPassedTests, r.numFailedTests + broken.length, r.numPendingTests + r.numTodoTests)
' "$results" 2>/dev/null) || counts=
rm -f "$results"
read -r p f s <<<"${counts:-0 0 0}"
vagrant_note=
if [ $# -eq 0 ] && [ "${KFLAN_TEST_VAGRANT:-1}" != 1 ]; then
  vagrant_note=" (Vagrant job left out: KFLAN_TEST_VAGRANT=${KFLAN_TEST_VAGRANT})"
elif [ $# -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
  vagrant_note=" (Vagrant job not run: it needs root, as the lab does)"
elif [ $# -eq 0 ]; then
  scripts/setup-vagrant.sh || { echo "test: installing the Vagrant job's packages failed" >&2; exit 1; }
  vlog=$(mktemp)
  test/vagrant/run.sh | tee "$vlog"
  vrc=${PIPESTATUS[0]}
  # The job's last line: "vagrant job: N passed, N failed".
  read -r vp vf < <(sed -nE 's/^vagrant job: ([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$vlog" | tail -n1)
  rm -f "$vlog"
  p=$((p + ${vp:-0})); f=$((f + ${vf:-0}))
  [ "$vrc" -eq 0 ] || { [ "${vf:-0}" -gt 0 ] || f=$((f + 1)); rc=1; }
fi
if [ -z "$counts" ]; then echo "no vitest results (vitest exit $rc); $p passed, $f failed$vagrant_note"; else
  echo "$p passed, $f failed$([ "$s" -gt 0 ] && echo ", $s skipped")$vagrant_note"; fi
exit $rc
