#!/bin/bash
# fetch-kernel.sh BUILD_DIR: Debian 12's cloud kernel, unpacked (not installed) into
# BUILD_DIR/linux, for the Linux-on-emu test (tests/linux/) and bench/run.
#
# The meta package linux-image-cloud-amd64 moves to each new kernel build and the package it
# depends on changes name with the ABI (linux-image-6.1.0-N-cloud-amd64), so the name is
# read from the meta package's Depends at fetch time rather than written here. Both are
# fetched with `apt-get download` (needs the package lists: `apt-get update` has run) and
# unpacked with `dpkg -x`; BUILD_DIR/linux then holds boot/vmlinuz-*, boot/config-* and the
# whole lib/modules/<version>/ tree (virtio, button.ko, ...).
#
# A finished fetch leaves BUILD_DIR/linux/.fetched (the package name); with it present
# nothing is downloaded again. On success the last line of stdout is the vmlinuz path;
# on failure the exit status is 1 and stderr says why.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
dest=$1/linux
meta=linux-image-cloud-amd64

kernel() {
    local k
    k=$(ls "$dest"/boot/vmlinuz-* 2>/dev/null | sort | tail -n 1)
    [ -n "$k" ] || return 1
    echo "$k"
}

if [ -e "$dest/.fetched" ] && kernel >/dev/null; then
    kernel
    exit 0
fi

for tool in apt-get dpkg dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "fetch-kernel: $tool not found (not Debian?)" >&2; exit 1; }
done

mkdir -p "$1"
dl=$(mktemp -d "$1/.kernel-download.XXXXXX")
trap 'rm -rf "$dl"' EXIT

download() {
    # apt-get download writes into the current directory; as root it warns that _apt
    # cannot write there (it downloads unsandboxed): harmless, so that warning is dropped.
    if ! (cd "$dl" && apt-get download -q "$1" 2>"$dl/err" >/dev/null); then
        echo "fetch-kernel: apt-get download $1 failed (has apt-get update run?):" >&2
        grep -v 'unsandboxed' "$dl/err" >&2 || true
        exit 1
    fi
    ls "$dl/$1"_*.deb
}

deb=$(download "$meta")
pkg=$(dpkg-deb -f "$deb" Depends | cut -d, -f1 | awk '{ print $1 }')
case $pkg in
    linux-image-*) ;;
    *) echo "fetch-kernel: $meta depends on '$pkg', not a linux-image package" >&2; exit 1 ;;
esac
deb=$(download "$pkg")
# Unpack beside the destination, then swap it in: an interrupted fetch never leaves a
# half-unpacked tree that looks finished.
rm -rf "$dl/tree"
dpkg -x "$deb" "$dl/tree"
echo "$pkg" >"$dl/tree/.fetched"
rm -rf "$dest"
mv "$dl/tree" "$dest"
kernel
