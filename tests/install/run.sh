#!/bin/bash
# Install a configured, built tree into a temporary staging folder (DESTDIR), then build
# and run tests/install/consumer.c against it with nothing but pkg-config.
#   tests/install/run.sh BUILD_DIR
# PKG_CONFIG_SYSROOT_DIR points pkg-config at the staged copy: the installed vmcore.pc is
# used unchanged, as it would be after a real install into its prefix.
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d /tmp/vmcore-install.XXXXXX)
trap 'rm -rf "$stage"' EXIT

DESTDIR=$stage cmake --install "$build" >/dev/null
pc=$(find "$stage" -name vmcore.pc -print -quit)
[ -n "$pc" ] || { echo "vmcore.pc was not installed" >&2; exit 1; }
libdir=$(cd "$(dirname "$pc")/.." && pwd)
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$stage
flags=$(pkg-config --cflags --libs vmcore)
echo "pkg-config --cflags --libs vmcore: $flags"
# As a consumer would build it, with warnings as errors: the public headers stay clean.
cc -Wall -Wextra -Werror -o "$stage/consumer" "$here/consumer.c" $flags
LD_LIBRARY_PATH=$libdir "$stage/consumer"
# The installed vmcore program runs against the installed library too.
LD_LIBRARY_PATH=$libdir "$(find "$stage" -path "*/bin/vmcore" -print -quit)" --version
echo "install consumer: OK"
