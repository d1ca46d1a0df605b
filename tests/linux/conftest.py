"""Fixtures of the Linux-on-emu test: Debian's cloud kernel and a busybox initramfs.

The kernel is fetched at test time (tests/linux/fetch-kernel.sh) into the build tree
($VMCORE_BUILD_DIR/linux, which ctest sets), never committed; the first run downloads
about 27 MB from the Debian mirror, later runs reuse it. A failed fetch skips the tests,
or fails them under VMCORE_TEST_STRICT=1 (CI), like every other missing requirement.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import subprocess
from pathlib import Path
from typing import NamedTuple

import pytest

HERE = Path(__file__).resolve().parent
SOURCE_DIR = HERE.parent.parent

# The skip-or-fail rule and the backend check of the binding tests, not a second copy.
_spec = importlib.util.spec_from_file_location("vmcore_pytest_common",
                                               SOURCE_DIR / "tests" / "python" / "conftest.py")
_common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_common)
require = _common.require
require_backend = _common.require_backend


# Paths under lib/modules/<version>/kernel/ of the virtio modules init.sh loads.
VIRTIO_MODULES = [
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "drivers/block/virtio_blk.ko",
    "drivers/char/hw_random/virtio-rng.ko",
    "drivers/char/virtio_console.ko",
    "net/core/failover.ko",
    "drivers/net/net_failover.ko",
    "drivers/net/virtio_net.ko",
]


class LinuxFiles(NamedTuple):
    kernel: Path
    initrd: Path
    logdir: Path


def build_dir() -> Path:
    d = os.environ.get("VMCORE_BUILD_DIR")
    require(d, "VMCORE_BUILD_DIR is not set (ctest sets it to the build tree)")
    return Path(d)


@pytest.fixture(scope="session")
def linux_files(tmp_path_factory: pytest.TempPathFactory) -> LinuxFiles:
    require_backend("emu")
    bdir = build_dir()
    r = subprocess.run([str(HERE / "fetch-kernel.sh"), str(bdir)], capture_output=True,
                       text=True)
    require(r.returncode == 0, "fetching Debian's kernel failed: " + r.stderr.strip())
    kernel = Path(r.stdout.strip().splitlines()[-1])
    # The ACPI button driver is a module in this kernel (CONFIG_ACPI_BUTTON=m): the
    # power-button scenario loads it from the initramfs.
    button = sorted(glob.glob(str(bdir / "linux" / "lib" / "modules" / "*" / "kernel" /
                                  "drivers" / "acpi" / "button.ko")))
    require(button, "the kernel package has no drivers/acpi/button.ko")
    # The virtio drivers (all =m in Debian's cloud kernel), for the virtio scenario.
    kdir = Path(button[-1]).parents[2]
    virtio = [kdir / p for p in VIRTIO_MODULES]
    missing = [str(p) for p in virtio if not p.exists()]
    require(not missing, "the kernel package lacks " + ", ".join(missing))
    initrd = tmp_path_factory.mktemp("linux") / "initramfs.cpio"
    r = subprocess.run([str(HERE / "make-initramfs.sh"), str(initrd), button[-1]] +
                       [str(p) for p in virtio],
                       capture_output=True, text=True)
    require(r.returncode == 0, "building the initramfs failed: " + r.stderr.strip())
    logdir = bdir / "tests" / "linux"
    logdir.mkdir(parents=True, exist_ok=True)
    return LinuxFiles(kernel, initrd, logdir)
