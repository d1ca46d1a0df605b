#!/bin/bash
# Build libvmcore and run the demos (the README's first command):
#   - a virtual machine (kvm, or the emu backend when /dev/kvm is unusable) boots
#     examples/guests/hello.asm, which computes 1 + ... + 100 and prints it on its serial port;
#   - a container runs busybox's sh in its own namespaces and cgroup, and says hello;
#   - a managed container (vmcore create): listed, its log read, shut down, destroyed.
# Each demo runs when `vmcore probe` says its backend can run here; the script fails if
# neither can.
# VMCORE_CLI=PATH runs that vmcore program (an installed one: /usr/bin/vmcore from the .debs)
# instead of the build's; the build then only makes the configurations and their guest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${VMCORE_BUILD_DIR:-$root/build}
. "$root/scripts/deps.sh"
vmcore_install_deps

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE="${VMCORE_BUILD_TYPE:-RelWithDebInfo}" \
    ${VMCORE_CMAKE_ARGS:-} >/dev/null
if [ -n "${VMCORE_CLI:-}" ]; then
    cmake --build "$build" -j"$(nproc)" --target example_configs
    vmcore=$VMCORE_CLI
else
    cmake --build "$build" -j"$(nproc)" --target vmcore_cli example_configs
    vmcore=$build/tools/vmcore
fi
configs=$build/examples/configs
# Print each command as it can be typed from the current folder, then run that command:
# the configurations that run are the build tree's (examples/configs/ in the source folder
# names hello.bin, which only the build makes).
show_run() {
    local shown=() a
    for a in "$@"; do
        case $a in "$PWD"/*) a=${a#"$PWD"/} ;; esac
        shown+=("$a")
    done
    echo
    echo "\$ ${shown[*]}"
    "$@" </dev/null
}
show_run "$vmcore" probe
ran=0
if "$vmcore" probe auto >/dev/null; then
    show_run "$vmcore" run "$configs/vm-hello.json"
    ran=$((ran + 1))
fi
if "$vmcore" probe container >/dev/null; then
    show_run "$vmcore" run "$configs/container-echo.json"
    ran=$((ran + 1))
fi
if "$vmcore" probe container >/dev/null; then
    # A managed domain: started in the background, listed, its log read, stopped from
    # "another shell", removed. A state directory of the demo's own (--root).
    state=$(mktemp -d /tmp/vmcore-demo-XXXXXX)
    trap '"$vmcore" --root "$state" destroy ticker >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
    show_run "$vmcore" --root "$state" create "$configs/container-ticker.json"
    show_run "$vmcore" --root "$state" list
    sleep 1.2
    show_run "$vmcore" --root "$state" logs ticker
    show_run "$vmcore" --root "$state" shutdown ticker
    show_run "$vmcore" --root "$state" list
    show_run "$vmcore" --root "$state" destroy ticker
    ran=$((ran + 1))
fi
if [ "$ran" -eq 0 ]; then
    echo "demo: no backend can run on this host (see 'vmcore probe' above)" >&2
    exit 1
fi
echo
echo "demo: OK ($ran demo(s) ran; exit status 0)"
