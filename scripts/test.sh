#!/bin/bash
# Runs the whole test suite (as root): installs what the tests need, builds,
# then runs unit and integration tests with Node's test runner. Integration
# tests start their own berthd daemons (own roots, sockets, cgroups).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build.sh
node dist/test/sweep-abandoned.js
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
exec node --test --test-concurrency="${BERTH_TEST_CONCURRENCY:-2}" --test-timeout=600000 "${files[@]}"
