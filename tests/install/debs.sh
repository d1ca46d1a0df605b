#!/bin/bash
# Build the Debian packages (debian/) from a copy of the source tree, install them, use
# them as a user would, and purge them again:
#   tests/install/debs.sh BUILD_DIR      (as root; BUILD_DIR: a configured build, whose
#                                         examples/configs the demo runs)
# - `dpkg-buildpackage -b -us -uc` in a copy under /tmp: the source tree stays clean and
#   the .debs land beside the copy, not beside the tree;
# - `apt-get install` of libvmcore0, libvmcore-dev, vmcore and python3-vmcore;
# - `vmcore --version`, the README's demo on /usr/bin/vmcore, a pkg-config consumer built
#   against libvmcore-dev, `import vmcore` in Debian's python3 with no PYTHONPATH, and
#   the example unit checked by systemd-analyze;
# - `apt-get purge` of the four, whatever happened, so the rest of CI sees no installed copy.
# VMCORE_DEB_BUILD_OPTIONS replaces DEB_BUILD_OPTIONS (default: nocheck parallel=2 noddebs).
set -euo pipefail
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
packages=(libvmcore0 libvmcore-dev vmcore python3-vmcore)

for p in "${packages[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        echo "$p is installed already: this test would purge it; remove it first" >&2
        exit 1
    fi
done

work=$(mktemp -d /tmp/vmcore-debs.XXXXXX)
installed=0
cleanup() {
    if [ "$installed" -eq 1 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "${packages[@]}" >/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The source as it is in the tree (uncommitted changes too), without build folders.
mkdir "$work/src"
tar -C "$root" --exclude=./.git --exclude='./build*' --exclude='./obj-*' -cf - . |
    tar -C "$work/src" -xf -
echo "dpkg-buildpackage -b -us -uc (log: $work/build.log while it runs)"
if ! (cd "$work/src" &&
      DEB_BUILD_OPTIONS=${VMCORE_DEB_BUILD_OPTIONS:-nocheck parallel=2 noddebs} \
          dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1); then
    tail -50 "$work/build.log" >&2
    exit 1
fi
debs=()
for p in "${packages[@]}"; do
    f=$(find "$work" -maxdepth 1 -name "${p}_*.deb" -print -quit)
    [ -n "$f" ] || { echo "dpkg-buildpackage made no $p package" >&2; exit 1; }
    debs+=("$f")
done
ls -l "${debs[@]}"

installed=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null

# Run from / with a clean environment: nothing of the source or build tree may help.
cd /
run() { echo "\$ $*"; env -u PYTHONPATH -u VMCORE_LIBRARY -u LD_LIBRARY_PATH "$@"; }
[ "$(command -v vmcore)" = /usr/bin/vmcore ] || { echo "vmcore is not /usr/bin/vmcore" >&2; exit 1; }
run vmcore --version
run /usr/bin/vmcore-oci --version
run /usr/bin/python3 -c 'import vmcore; print(vmcore.__file__, vmcore.version())'
run /usr/bin/python3 -c 'import vmcore, sys; sys.exit(vmcore.version() != vmcore.__version__)'

# libvmcore-dev: a program built with nothing but pkg-config, against /usr.
run pkg-config --cflags --libs vmcore
cc -Wall -Wextra -Werror -o "$work/consumer" "$root/tests/install/consumer.c" \
    $(pkg-config --cflags --libs vmcore)
run "$work/consumer"

if command -v systemd-analyze >/dev/null; then
    unit=/usr/share/doc/vmcore/examples/vmcore@.service
    [ -f "$unit" ] || { echo "$unit is not installed" >&2; exit 1; }
    out=$(systemd-analyze verify "$unit" 2>&1) || true
    if [ -n "$out" ]; then
        echo "systemd-analyze verify $unit:" >&2
        echo "$out" >&2
        exit 1
    fi
    echo "systemd-analyze verify $unit: OK"
fi

# The README's demo, on the installed program.
VMCORE_BUILD_DIR=$build VMCORE_CLI=/usr/bin/vmcore "$root/scripts/demo.sh"
echo "Debian packages: OK"
