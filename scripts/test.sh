#!/usr/bin/env bash
# Installs what is missing, builds shoal, and runs every test under ctest.
#   scripts/test.sh                    normal build (build/)
#   SHOAL_SANITIZE=1 scripts/test.sh   ASan+UBSan build (build-asan/)
#   scripts/test.sh -R unit            its arguments go to ctest (here:
#                                      only the unit tests)
#   scripts/test.sh --help             this text
set -euo pipefail

# The comment block at the top of this script is its usage.
usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}"; }
case ${1:-} in
  -h | --help) usage; exit 0 ;;
esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=deps.sh
. "$root/scripts/deps.sh"
shoal_install_deps
# The OpenAPI linter comes from npm; without it only the lint test skips.
if command -v npm >/dev/null 2>&1; then
  (cd "$root/tests/openapi" && npm ci --no-audit --no-fund --loglevel=error) \
    || echo "npm ci failed: the OpenAPI lint test will be skipped" >&2
  # The Kubernetes and Compose schemas for tests/integration/test_deploy.py.
  (cd "$root/tests/deploy-schemas" && npm ci --no-audit --no-fund --loglevel=error) \
    || echo "npm ci failed in tests/deploy-schemas: the schema checks will fail" >&2
  # playwright-core drives Debian's chromium for test_dashboard.py.
  (cd "$root/tests/browser" && npm ci --no-audit --no-fund --loglevel=error) \
    || echo "npm ci failed in tests/browser: the dashboard test will fail" >&2
fi

if [ "${SHOAL_SANITIZE:-0}" = 1 ]; then
  build="$root/build-asan"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSHOAL_SANITIZE=ON
else
  build="$root/build"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" -j "$(nproc)"
# promtool for tests/integration/test_metrics.py, unpacked in the build tree.
shoal_fetch_promtool "$build/tools/prometheus" >/dev/null \
  || echo "promtool is missing: the metrics lint will fail" >&2
# Tools installed above must be there: their tests fail instead of skipping.
export SHOAL_REQUIRE_TOOLS=1
cd "$build"
ctest --output-on-failure -j 2 "$@"
