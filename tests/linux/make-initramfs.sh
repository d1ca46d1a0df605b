#!/bin/bash
# make-initramfs.sh OUT [MODULE.ko ...]: the initramfs of the Linux-on-emu test: Debian's
# static busybox with its applets, tests/linux/init.sh as /init, and the given kernel
# modules as /lib/modules/<name>.ko (the ACPI button driver, the virtio drivers; init.sh
# loads them by name, in dependency order). Debian 12 ships them uncompressed, so
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
mkdir -p "$root"/{bin,proc,sys,dev,tmp,lib/modules}
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
install -m 0755 "$here/init.sh" "$root/init"
for ko in "$@"; do
    cp "$ko" "$root/lib/modules/"
done
(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$out.tmp"
mv "$out.tmp" "$out"
