#!/usr/bin/env bash
# The whole test suite: build, unit tests, then end-to-end tests against the lab (real hosts).
# Ends with one plain line "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")/.."
npm run --silent build || exit 1
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
