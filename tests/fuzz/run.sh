#!/bin/bash
# Build the libFuzzer targets of tests/fuzz/ with clang (ASan + UBSan, in their own build
# folder) and run each for a bounded time on a copy of its seed corpus. Exits non-zero when
# a target crashes, leaks or trips a sanitizer; the input that did it is left in the work
# folder (printed) to be added to corpus/<target>/ with the fix.
#
#   tests/fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Environment: VMCORE_FUZZ_BUILD_DIR (default build-fuzz in the source folder),
# VMCORE_FUZZ_WORK (default a fresh temporary folder), VMCORE_FUZZ_JOBS (build jobs, 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
secs=${1:-20}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] ||
    targets=(config loader_raw loader_elf loader_multiboot loader_linux loader_auto irqchip pci
             virtqueue vsock_hdr control snapshot)
build=${VMCORE_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${VMCORE_FUZZ_JOBS:-2}
work=${VMCORE_FUZZ_WORK:-$(mktemp -d /tmp/vmcore-fuzz-XXXXXX)}
mkdir -p "$work"

command -v clang >/dev/null || { echo "run.sh: clang is needed (apt-get install clang)" >&2; exit 1; }
CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVMCORE_FUZZ=ON \
    -DVMCORE_BUILD_DOCS=OFF >/dev/null
cmake --build "$build" -j"$jobs" --target "${targets[@]/#/fuzz_}" >/dev/null

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()
for t in "${targets[@]}"; do
    corpus=$work/$t
    mkdir -p "$corpus" "$work/$t-crashes"
    cp -n "$root/tests/fuzz/corpus/$t/"* "$corpus/"
    echo "fuzz_$t: ${secs}s"
    # -rss_limit_mb: the loaders map 16 MiB of guest RAM; -timeout: a hang is a bug too.
    if ! "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
            -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/$t-crashes/" \
            "$corpus" >"$work/$t.log" 2>&1; then
        tail -n 40 "$work/$t.log" >&2
        echo "fuzz_$t FAILED: inputs in $work/$t-crashes/, log $work/$t.log" >&2
        failed+=("$t")
    else
        grep -E '^stat::(number_of_executed_units|new_units_added)' "$work/$t.log" | tr '\n' ' '
        echo
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "run.sh: crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "run.sh: no crash in ${#targets[@]} targets (${secs}s each; work folder $work)"
