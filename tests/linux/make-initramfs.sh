#!/bin/bash
# make-initramfs.sh OUT [BUTTON_KO]: the initramfs of the Linux-on-emu test: Debian's static
# busybox with its applets, tests/linux/init.sh as /init, and (if given) the ACPI button
# driver module as /lib/modules/button.ko. Written as an uncompressed cpio (newc) archive:
# the kernel unpacks it as is, which saves the inflate (about 0.3 s of emulated boot, much
# more under the sanitizers) that a gzip'ed one costs.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: $0 OUT [BUTTON_KO]" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
out=$1
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
if [ $# -eq 2 ]; then
    cp "$2" "$root/lib/modules/button.ko"
fi
(cd "$root" && find . | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) >"$out.tmp"
mv "$out.tmp" "$out"
