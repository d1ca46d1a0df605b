#!/bin/bash
# Build libvmcore with warnings as errors and run every test (the README's second command).
#   ./scripts/test.sh            build in ./build
#   VMCORE_BUILD_DIR=dir ./scripts/test.sh
# As root on a host with /dev/kvm, set VMCORE_TEST_STRICT=1 to turn "skipped: needs root /
# kvm / namespaces" into failures (.ci/run does).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VMCORE_BUILD_DIR:-$root/build}
. "$root/scripts/deps.sh"
vmcore_install_deps

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${VMCORE_BUILD_TYPE:-RelWithDebInfo}" \
    -DVMCORE_WERROR=ON ${VMCORE_CMAKE_ARGS:-}
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure
