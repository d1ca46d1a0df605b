#!/bin/bash
# Build libvmcore and run the demos (the README's first command):
#   - a virtual machine (kvm, or the emu backend when /dev/kvm is unusable) boots
#     examples/guests/hello.asm, which computes 1 + ... + 100 and prints it on its serial port;
#   - a container runs busybox's sh in its own namespaces and cgroup, and says hello.
# Each demo runs when `vmcore probe` says its backend can run here; the script fails if
# neither can.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VMCORE_BUILD_DIR:-$root/build}
. "$root/scripts/deps.sh"
vmcore_install_deps

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${VMCORE_BUILD_TYPE:-RelWithDebInfo}" \
    ${VMCORE_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)" --target vmcore_cli example_configs

vmcore=$build/tools/vmcore
configs=$build/examples/configs
echo
echo "\$ vmcore probe"
"$vmcore" probe
ran=0
if "$vmcore" probe auto >/dev/null; then
    echo
    echo "\$ vmcore run examples/configs/vm-hello.json"
    "$vmcore" run "$configs/vm-hello.json" </dev/null
    ran=$((ran + 1))
fi
if "$vmcore" probe container >/dev/null; then
    echo
    echo "\$ vmcore run examples/configs/container-echo.json"
    "$vmcore" run "$configs/container-echo.json" </dev/null
    ran=$((ran + 1))
fi
if [ "$ran" -eq 0 ]; then
    echo "demo: no backend can run on this host (see 'vmcore probe' above)" >&2
    exit 1
fi
echo
echo "demo: OK ($ran demo(s) ran; exit status 0)"
