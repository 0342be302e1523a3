#!/usr/bin/env bash
# The whole test suite: build, unit tests, then end-to-end tests against the lab (real hosts).
# Ends with one plain line "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")/.."
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
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))
  const skipped = r.numPendingTests + r.numTodoTests
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : ""))
' "$results" 2>/dev/null || echo "no test results (vitest exit $rc)"
rm -f "$results"
exit $rc
