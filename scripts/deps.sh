#!/bin/bash
# The Debian 12 packages libvmcore needs to build, test and document itself; sourced by
# demo.sh, test.sh and .ci/run. `vmcore_install_deps` installs the missing ones.

# What building the library needs; with VMCORE_PACKAGING_PACKAGES, what building its Debian
# packages (debian/, dpkg-buildpackage) needs. debian/control's Build-Depends names exactly
# these two lists (tests/install/check-debian.sh checks), except gcc, make and
# build-essential itself: every Debian package build may assume build-essential.
VMCORE_BUILD_PACKAGES=(
    cmake make gcc pkg-config                 # build
    libuv1-dev libjansson-dev libseccomp-dev  # the library's dependencies
    libslirp-dev libglib2.0-dev               # virtio-net "user" mode (libslirp; its .pc needs glib's)
    liburing-dev                              # virtio-blk's asynchronous I/O
    libnftables-dev                           # network mode "bridge": the NAT's nftables rules
    python3                                   # the bindings (and their tests)
)
# Only .ci/run and package builders install these: the demo and the test suite do not need them.
VMCORE_PACKAGING_PACKAGES=(debhelper dh-python build-essential)
# Everything the demo, the tests and the docs need (vmcore_install_deps installs them).
VMCORE_DEBIAN_PACKAGES=(
    "${VMCORE_BUILD_PACKAGES[@]}"
    clang                                     # the fuzz targets (tests/fuzz)
    libcmocka-dev python3-pytest              # tests
    nasm                                      # guests (examples/guests, tests/guests)
    busybox-static                            # root file systems for container tests and demos
    cpio                                      # the initramfs of the Linux-on-emu test (tests/linux)
    e2fsprogs                                 # mkfs.ext4 -d / debugfs / e2fsck: the virtio-blk images of tests/linux
    iproute2                                  # veth networking tests
    valgrind                                  # leak checks (.ci/run)
    doxygen                                   # API documentation
    python3-unicorn                           # CPU oracle of the emu tests and bench
    binutils                                  # nm/readelf for debugging symbol exports
    acpica-tools                              # iasl: the ACPI table test disassembles every table
    runc                                      # vmcore-oci's tests run the same bundles under runc
)

# Install what is missing (all of it with VMCORE_APT_UPDATE=1 after an apt-get update).
vmcore_install_deps() {
    local missing=() p
    for p in "${VMCORE_DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: ${missing[*]}; run as root or: apt-get install ${missing[*]}" >&2
        return 1
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
}
