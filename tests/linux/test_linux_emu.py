"""Debian 12's cloud kernel on the emu backend: what a real guest sees of the platform.

Two boots, one per scenario (tests/linux/init.sh runs the one vmcore.test= names):
- ``poweroff``: the guest reports its PCI devices, /proc/interrupts and the ACPI lines
  of its log, then runs ``poweroff -f``; the ACPI S5 path must end the domain with
  status 0, reason "powered off".
- ``button``: the guest loads the ACPI button driver and waits; the host calls
  vmcore_domain_shutdown(), which must reach the guest as a power-button press (the SCI's
  count in /proc/interrupts rises; the guest then powers off itself).

Each scenario boots once (a module-scoped fixture) and the assertions are separate tests,
so a failure names exactly what is missing. The timeouts only keep a hung guest from
hanging the run; nothing asserts on how long anything takes. The console of each boot is
kept in $VMCORE_BUILD_DIR/tests/linux/<scenario>.log.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable, NamedTuple, Optional

import pytest

import vmcore

MEMORY_MIB = 256
# A bound on each wait for console output (the boot prints steadily; a guest that stops
# printing for this long has hung). Generous for the sanitizer build, which runs the
# emulator several times slower.
CHUNK_TIMEOUT = 300.0
# How long `poweroff -f` (or the power button) may take to end the domain before the test
# gives up on it: the guest has nothing left to do but the ACPI sleep-register write.
EXIT_TIMEOUT = 120.0


class Boot(NamedTuple):
    console: str          # everything the guest printed, \r\n turned into \n
    exit: Optional[vmcore.Exit]
    marker_seconds: Optional[float]  # start -> @until on the console, for the log
    instructions: int                # executed by then


def run_linux(files: Any, scenario: str, until: str,
              then: Callable[[vmcore.Domain], None]) -> Boot:
    """Boot with vmcore.test=@scenario, read the console until @until appears, call
    @then(domain), and collect the rest of the output and the exit. @files is the
    conftest's linux_files (kernel, initrd, logdir)."""
    cfg = {
        "name": "linux-" + scenario,
        "backend": "emu",
        "memory_mib": MEMORY_MIB,
        "boot": {"kernel": str(files.kernel), "format": "linux", "initrd": str(files.initrd),
                 "cmdline": "console=ttyS0 vmcore.test=" + scenario},
    }
    buf = b""
    log = files.logdir / (scenario + ".log")
    instructions = 0
    marker_seconds = None
    with vmcore.Context() as ctx:
        d = ctx.create(cfg)
        t0 = time.monotonic()
        d.start()
        try:
            for _stream, data in d.console.chunks(timeout=CHUNK_TIMEOUT):
                buf += data
                if until.encode() in buf:
                    marker_seconds = time.monotonic() - t0
                    if not d.ended:
                        instructions = d.stats.instructions
                    break
            if not d.ended:
                then(d)
            if not d.ended:
                try:
                    d.wait(EXIT_TIMEOUT)
                except vmcore.Timeout:
                    pass
            buf += d.console.read_nowait()
        finally:
            seconds = time.monotonic() - t0
            ended = d.ended
            exit_ = d.exit
            if not ended:
                d.kill()
            text = buf.decode("utf-8", "replace").replace("\r\n", "\n")
            log.write_text(text + "\n--- %s: %s at %s s (%d instructions); exit %r at %.1f s\n" % (
                scenario, until, "%.1f" % marker_seconds if marker_seconds else "never",
                instructions, exit_ if ended else None, seconds))
    return Boot(text, exit_ if ended else None, marker_seconds, instructions)


def section(text: str, name: str) -> str:
    """The lines init.sh printed between VMCORE-BEGIN-<name> and VMCORE-END-<name>."""
    m = re.search(r"^VMCORE-BEGIN-%s\n(.*?)^VMCORE-END-%s$" % (name, name), text,
                  re.S | re.M)
    assert m, "the guest did not print its %s section" % name
    return m.group(1)


def assert_powered_off(boot: Boot) -> None:
    assert boot.exit is not None, "the domain did not end within %d s" % EXIT_TIMEOUT
    assert (boot.exit.kind, boot.exit.status, boot.exit.reason) == \
        (vmcore.ExitKind.STATUS, 0, "powered off"), boot.exit


# --- scenario 1: look around, then poweroff -f ---------------------------------------

@pytest.fixture(scope="module")
def poweroff(linux_files: Any) -> Boot:
    # nothing to do at the marker: the guest powers off by itself right after it
    return run_linux(linux_files, "poweroff", "VMCORE-POWERING-OFF", lambda d: None)


def test_reaches_init(poweroff: Boot) -> None:
    assert "Run /init as init process" in poweroff.console
    assert "VMCORE-INIT-REACHED" in poweroff.console
    assert "VMCORE-POWERING-OFF" in poweroff.console


@pytest.mark.parametrize("line", [
    "A valid RSDP was not found",            # no ACPI tables at all
    "MADT or MP tables are not detected",    # no MADT: no IOAPIC, LAPIC in virtual wire
    "No config space access function found", # no PCI config mechanism / MCFG
])
def test_no_missing_platform_lines(poweroff: Boot, line: str) -> None:
    # the console has the whole log (no `quiet`); the DMESG section is the guest's own
    # ring buffer, in case console output was dropped
    assert line not in poweroff.console
    assert line not in section(poweroff.console, "DMESG")


def test_pci_host_bridge(poweroff: Boot) -> None:
    pci = section(poweroff.console, "PCI")
    m = re.search(r"^0000:00:00\.0 vendor=\S+ device=\S+ class=(0x[0-9a-f]+)$", pci, re.M)
    assert m, "/sys/bus/pci/devices has no 0000:00:00.0:\n" + pci
    assert m.group(1).startswith("0x0600"), "0000:00:00.0 is not a host bridge: " + m.group(0)


def test_interrupts_through_ioapic(poweroff: Boot) -> None:
    irqs = section(poweroff.console, "INTERRUPTS")
    assert "IO-APIC" in irqs, "/proc/interrupts shows no IO-APIC line:\n" + irqs


def test_poweroff_ends_domain(poweroff: Boot) -> None:
    assert "VMCORE-POWEROFF-RETURNED" not in poweroff.console
    assert_powered_off(poweroff)


# --- scenario 2: the host shuts the domain down, the guest sees the power button -------

@pytest.fixture(scope="module")
def button(linux_files: Any) -> Boot:
    def press(d: vmcore.Domain) -> None:
        # the grace period before the kill: the guest polls every 0.2 s, then powers off
        d.shutdown(timeout=EXIT_TIMEOUT)
    return run_linux(linux_files, "button", "VMCORE-WAITING-FOR-BUTTON", press)


def test_button_driver_loads(button: Boot) -> None:
    assert "VMCORE-WAITING-FOR-BUTTON" in button.console
    assert "VMCORE-BUTTON-DRIVER-LOADED" in button.console


def test_shutdown_is_power_button(button: Boot) -> None:
    assert "VMCORE-BUTTON-SCI" in button.console, \
        "the guest saw no SCI after vmcore_domain_shutdown(); it ended with %r" % (button.exit,)
    assert_powered_off(button)
