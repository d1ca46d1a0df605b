#!/bin/bash
# Install a configured, built tree the ways a user does and use each installed copy:
#   tests/install/run.sh BUILD_DIR
# 1. into a staging folder (DESTDIR) of the configured prefix; PKG_CONFIG_SYSROOT_DIR points
#    pkg-config at the staged copy, so the installed vmcore.pc is used unchanged, as it
#    would be after a real install into its prefix;
# 2. into two other prefixes (`cmake --install BUILD --prefix P`), with no environment
#    help: P/bin/vmcore finds P's library (its RUNPATH), P's vmcore.pc names P, a consumer
#    builds with PKG_CONFIG_PATH=P/lib/pkgconfig alone, and Debian's python3 imports the
#    package with the documented PYTHONPATH=P/lib/python3/dist-packages and loads P's
#    library.
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
stage=$(mktemp -d /tmp/vmcore-install.XXXXXX)
trap 'rm -rf "$stage"' EXIT
unset LD_LIBRARY_PATH PYTHONPATH VMCORE_LIBRARY PKG_CONFIG_SYSROOT_DIR
# The CMake cache says where the library and programs go below a prefix.
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
libdir=$(cache CMAKE_INSTALL_LIBDIR)
bindir=$(cache CMAKE_INSTALL_BINDIR)
sitedir=$(cache VMCORE_PYTHON_SITEDIR)

echo "== DESTDIR=$stage/destdir cmake --install $build"
DESTDIR=$stage/destdir cmake --install "$build" >/dev/null
pc=$(find "$stage/destdir" -name vmcore.pc -print -quit)
[ -n "$pc" ] || { echo "vmcore.pc was not installed" >&2; exit 1; }
flags=$(PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$stage/destdir \
        pkg-config --cflags --libs vmcore)
echo "pkg-config --cflags --libs vmcore: $flags"
# As a consumer would build it, with warnings as errors: the public headers stay clean.
cc -Wall -Wextra -Werror -o "$stage/consumer" "$here/consumer.c" $flags
LD_LIBRARY_PATH=$(cd "$(dirname "$pc")/.." && pwd) "$stage/consumer"

for prefix in "$stage/p1" "$stage/deeper/opt/vmcore-2"; do
    echo "== cmake --install $build --prefix $prefix"
    cmake --install "$build" --prefix "$prefix" >/dev/null
    # The program: no LD_LIBRARY_PATH, no ldconfig.
    "$prefix/$bindir/vmcore" --version
    # vmcore.pc names this prefix.
    export PKG_CONFIG_PATH=$prefix/$libdir/pkgconfig
    got=$(pkg-config --variable=prefix vmcore)
    [ "$got" = "$prefix" ] || { echo "vmcore.pc: prefix=$got, want $prefix" >&2; exit 1; }
    got=$(pkg-config --variable=libdir vmcore)
    [ "$got" = "$prefix/$libdir" ] || { echo "vmcore.pc: libdir=$got, want $prefix/$libdir" >&2; exit 1; }
    [ -f "$(pkg-config --variable=includedir vmcore)/vmcore/vmcore.h" ] ||
        { echo "vmcore.pc: includedir has no vmcore/vmcore.h" >&2; exit 1; }
    # A consumer linked with pkg-config alone, run with the library path pkg-config gives.
    cc -Wall -Wextra -Werror -o "$stage/consumer" "$here/consumer.c" \
        $(pkg-config --cflags --libs vmcore) -Wl,-rpath,"$(pkg-config --variable=libdir vmcore)"
    "$stage/consumer" >/dev/null
    unset PKG_CONFIG_PATH
    # Python: the documented step, and the library of this prefix, not another copy.
    (cd / && PYTHONPATH=$prefix/$sitedir /usr/bin/python3 -c '
import os, sys, vmcore, vmcore._lib as l
prefix = sys.argv[1]
assert vmcore.__file__.startswith(prefix + "/"), vmcore.__file__
print("import vmcore:", vmcore.__file__, vmcore.version())
lib = l.get()._name
assert os.path.realpath(lib).startswith(os.path.realpath(prefix) + "/"), lib
' "$prefix")
done
echo "install consumer: OK"
