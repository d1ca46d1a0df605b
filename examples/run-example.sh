#!/bin/sh
# Run an example configuration with run-config and check its output (a ctest test).
#   run-example.sh VMCORE_CLI BACKEND RUN_CONFIG CONFIG.json EXPECTED_TEXT
# Exits 77 (skipped) when the backend is unavailable here, unless VMCORE_TEST_STRICT=1.
cli=$1 backend=$2 run=$3 config=$4 expect=$5
if ! probe=$("$cli" probe "$backend"); then
    if [ "${VMCORE_TEST_STRICT:-}" = 1 ]; then
        echo "required by VMCORE_TEST_STRICT=1 but unavailable: $probe" >&2
        exit 1
    fi
    echo "skipped: $probe"
    exit 77
fi
out=$("$run" "$config") || { rc=$?; echo "$out"; echo "$run $config exited with $rc" >&2; exit 1; }
echo "$out"
case $out in
*"$expect"*) exit 0 ;;
*) echo "the output lacks \"$expect\"" >&2; exit 1 ;;
esac
