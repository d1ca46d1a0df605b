"""virtio-console on the emu backend with Debian's own virtio_console module: the guest
writes a marker to /dev/hvc0 (tests/linux/scenarios/console.sh) and the host file
consoles[0].output must contain it. The timeouts in run_linux only keep a hung guest from
hanging the run."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from test_linux_emu import Boot, assert_powered_off, run_linux


@pytest.fixture(scope="module")
def console_boot(linux_files: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple:
    out = tmp_path_factory.mktemp("console") / "hvc0.out"
    boot = run_linux(linux_files, "console", "VMCORE-POWERING-OFF", lambda d: None,
                     {"consoles": [{"output": str(out)}]})
    return boot, out


def test_hvc0_appears(console_boot: tuple) -> None:
    boot, _ = console_boot
    assert "VMCORE-INSMOD-FAILED" not in boot.console, boot.console[-3000:]
    assert "VMCORE-HVC0-PRESENT" in boot.console, boot.console[-3000:]


def test_marker_reaches_host_file(console_boot: tuple) -> None:
    boot, out = console_boot
    assert out.exists(), "the output file was not created"
    assert "VMCORE-HVC0-MARKER written by the guest through virtio-console" in \
        out.read_text(errors="replace")


def test_powers_off(console_boot: tuple) -> None:
    assert_powered_off(console_boot[0])
