#!/bin/bash
# make-initramfs.sh OUT [FILE ...]: the initramfs of the Linux-on-emu test: Debian's
# static busybox with its applets, tests/linux/init.sh as /init, the scenario scripts
# tests/linux/scenarios/*.sh as /scenarios/ (init.sh sources the one vmcore.test= names),
# and the given files: kernel modules (*.ko) go to /lib/modules/<name>.ko, their names
# listed in argument order in /lib/modules/order (dependency order: init.sh's load_modules
# loads them so), anything else (the build's static test programs) to /bin. Debian 12 ships them uncompressed, so
# busybox insmod loads them as they are. Written as an uncompressed cpio (newc) archive:
# the kernel unpacks it as is, which saves the inflate (about 0.3 s of emulated boot, much
# more under the sanitizers) that a gzip'ed one costs.
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 OUT [MODULE.ko ...]" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
out=$1
shift
# busybox-static installs /bin/busybox (the dynamic "busybox" package would not run in
# an initramfs without its libraries)
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "make-initramfs: no $busybox (Debian: busybox-static)" >&2; exit 1; }
command -v cpio >/dev/null || { echo "make-initramfs: no cpio (Debian: cpio)" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,proc,sys,dev,tmp,lib/modules,scenarios}
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$here/init.sh" "$root/init"
for f in "$here"/scenarios/*.sh; do
    [ -e "$f" ] && install -m 0644 "$f" "$root/scenarios/"
done
: >"$root/lib/modules/order"
for f in "$@"; do
    case $f in
    *.ko) cp "$f" "$root/lib/modules/"
          basename "$f" .ko >>"$root/lib/modules/order" ;;
    *)    install -m 0755 "$f" "$root/bin/" ;;
    esac
done
(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$out.tmp"
mv "$out.tmp" "$out"
