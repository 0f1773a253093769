#!/usr/bin/env bash
# One command to a passing test suite: installs dependencies, builds, runs every test
# (unit + integration against real chatd processes), then builds again under
# AddressSanitizer + UndefinedBehaviorSanitizer and runs the suite there too.
# Set CHATD_SKIP_SANITIZE=1 to skip the sanitizer pass.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
echo "== build (RelWithDebInfo)"
BUILD_DIR=build scripts/build.sh -DCHATD_SANITIZE=OFF
echo "== tests"
(cd build && ctest --output-on-failure --timeout 300 -j2)
if [ "${CHATD_SKIP_SANITIZE:-0}" != "1" ]; then
  echo "== build (ASan + UBSan)"
  BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DCHATD_SANITIZE=ON
  echo "== tests under ASan + UBSan"
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     LSAN_OPTIONS=suppressions="$PWD/../tests/lsan.supp" \
     ctest --output-on-failure --timeout 600 -j2)
fi
echo "== regions: three relays in network namespaces with 40 ms delay and 1% loss"
bash tests/netns/regions.sh
echo "== all tests passed"
