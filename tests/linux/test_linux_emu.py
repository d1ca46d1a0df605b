"""Debian 12's cloud kernel on the emu backend: what a real guest sees of the platform.

Four boots, one per scenario (tests/linux/init.sh runs the one vmcore.test= names):
- ``poweroff``: the guest reports its PCI devices, /proc/interrupts and the ACPI lines
  of its log, then runs ``poweroff -f``; the ACPI S5 path must end the domain with
  status 0, reason "powered off".
- ``button``: the guest loads the ACPI button driver and waits; the host calls
  vmcore_domain_shutdown(), which must reach the guest as a power-button press (the SCI's
  count in /proc/interrupts rises; the guest then powers off itself).
- ``virtio``: two virtio-blk disks (ext4 images made here with ``mkfs.ext4 -d``; the
  second read-only) and virtio-rng, driven by Debian's own modules: the guest reads a
  known file, writes a new one (read back here with ``debugfs``), cannot write the
  read-only disk, and reads bytes from /dev/hwrng.
- ``killwrite``: the guest writes and syncs files on a virtio-blk disk in a loop and is
  killed in the middle; ``e2fsck -fy`` must repair the image (journal replay) and the
  known file must still be there.

Each scenario boots once (a module-scoped fixture) and the assertions are separate tests,
so a failure names exactly what is missing. The timeouts only keep a hung guest from
hanging the run; nothing asserts on how long anything takes. The console of each boot is
kept in $VMCORE_BUILD_DIR/tests/linux/<scenario>.log.
"""

from __future__ import annotations

import re
import shutil
import subprocess
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
              then: Callable[[vmcore.Domain], None],
              extra: Optional[dict] = None) -> Boot:
    """Boot with vmcore.test=@scenario, read the console until @until appears, call
    @then(domain), and collect the rest of the output and the exit. @files is the
    conftest's linux_files (kernel, initrd, logdir); @extra adds config keys."""
    cfg = {
        "name": "linux-" + scenario,
        "backend": "emu",
        "memory_mib": MEMORY_MIB,
        "boot": {"kernel": str(files.kernel), "format": "linux", "initrd": str(files.initrd),
                 "cmdline": "console=ttyS0 vmcore.test=" + scenario},
    }
    cfg.update(extra or {})
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


def test_cpuinfo_identity_and_flags(poweroff: Boot) -> None:
    # the kernel's view of CPUID: the Penryn identity and exactly the SSE levels emu
    # implements (pni is SSE3), none of the ones it does not
    info = section(poweroff.console, "CPUINFO")
    fields = dict((k.strip(), v.strip()) for k, _, v in
                  (line.partition(":") for line in info.splitlines()))
    assert fields.get("vendor_id") == "GenuineIntel", info
    assert (fields.get("cpu family"), fields.get("model"), fields.get("stepping")) == \
        ("6", "23", "10"), info
    flags = set(fields.get("flags", "").split())
    assert {"sse", "sse2", "pni", "ssse3", "sse4_1", "cx16", "popcnt"} <= flags, info
    assert not flags & {"sse4_2", "avx", "monitor", "mmx", "xsave"}, info
    assert "unchecked MSR access" not in poweroff.console


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


# --- scenario 3: virtio-blk and virtio-rng with Debian's drivers -----------------------

KNOWN = "vmcore virtio-blk known content"


def make_ext4(path: Any, content: str) -> None:
    src = path.parent / (path.name + ".d")
    src.mkdir()
    (src / "hello.txt").write_text(content + "\n")
    r = subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(src), str(path), "8M"],
                       capture_output=True, text=True)
    assert r.returncode == 0, "mkfs.ext4 failed: " + r.stderr


class VirtioBoot(NamedTuple):
    boot: Boot
    rw: Any      # the read-write image
    ro: Any


@pytest.fixture(scope="module")
def virtio(linux_files: Any, tmp_path_factory: pytest.TempPathFactory) -> VirtioBoot:
    for tool in ("mkfs.ext4", "debugfs"):
        assert shutil.which(tool) or shutil.which("/sbin/" + tool), \
            tool + " not found (Debian: e2fsprogs)"
    d = tmp_path_factory.mktemp("virtio")
    rw, ro = d / "root.img", d / "ro.img"
    make_ext4(rw, KNOWN)
    make_ext4(ro, KNOWN)
    extra = {"disks": [{"path": str(rw), "serial": "vmcore-root"},
                       {"path": str(ro), "readonly": True}],
             "rng": True}
    boot = run_linux(linux_files, "virtio", "VMCORE-POWERING-OFF", lambda d: None, extra)
    return VirtioBoot(boot, rw, ro)


def test_virtio_devices_on_pci(virtio: VirtioBoot) -> None:
    pci = section(virtio.boot.console, "PCI")
    assert pci.count("vendor=0x1af4 device=0x1042") == 2, pci
    assert "vendor=0x1af4 device=0x1044" in pci, pci
    assert "VMCORE-INSMOD-FAILED" not in virtio.boot.console


def test_virtio_blk_reads_known_file(virtio: VirtioBoot) -> None:
    assert "VMCORE-BLK-CONTENT " + KNOWN in virtio.boot.console


def test_virtio_blk_write_survives(virtio: VirtioBoot) -> None:
    assert "VMCORE-BLK-WRITTEN" in virtio.boot.console
    assert "VMCORE-BLK-UMOUNTED" in virtio.boot.console
    r = subprocess.run(["debugfs", "-R", "cat /newfile", str(virtio.rw)],
                       capture_output=True, text=True)
    assert r.stdout == "written by the guest through virtio-blk\n", r.stdout + r.stderr
    r = subprocess.run(["e2fsck", "-fn", str(virtio.rw)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_virtio_blk_readonly(virtio: VirtioBoot) -> None:
    c = virtio.boot.console
    assert "VMCORE-RO-FLAG 1" in c
    assert "VMCORE-RO-CONTENT " + KNOWN in c
    assert "VMCORE-RO-WRITE-REFUSED" in c
    assert "VMCORE-RO-WRITE-SUCCEEDED" not in c


def test_virtio_rng(virtio: VirtioBoot) -> None:
    c = virtio.boot.console
    assert re.search(r"^VMCORE-RNG-CURRENT virtio_rng", c, re.M), c[-2000:]
    m = re.search(r"^VMCORE-RNG-BYTES ([0-9a-f]*)$", c, re.M)
    assert m and len(m.group(1)) == 32, c[-2000:]


def test_virtio_msix(virtio: VirtioBoot) -> None:
    # Debian's virtio_pci asks for MSI-X (a vector per queue and one for config); a line
    # per vector in /proc/interrupts, counted on the PCI-MSIX chip
    irqs = section(virtio.boot.console, "VIRTIO-IRQS")
    assert re.search(r"PCI-MSIX?.*virtio0-req\.0", irqs), irqs


def test_virtio_poweroff(virtio: VirtioBoot) -> None:
    assert_powered_off(virtio.boot)


# --- scenario 4: the guest is killed in the middle of its writes -------------------------

@pytest.fixture(scope="module")
def killwrite(linux_files: Any, tmp_path_factory: pytest.TempPathFactory) -> VirtioBoot:
    d = tmp_path_factory.mktemp("killwrite")
    rw = d / "root.img"
    make_ext4(rw, KNOWN)

    def kill_soon(dom: vmcore.Domain) -> None:
        # the guest keeps writing and syncing; let it get some requests in flight
        time.sleep(0.3)
        dom.kill()

    boot = run_linux(linux_files, "killwrite", "VMCORE-WRITING", kill_soon,
                     {"disks": [{"path": str(rw)}]})
    return VirtioBoot(boot, rw, None)


def test_killed_mid_write_is_repairable(killwrite: VirtioBoot) -> None:
    assert "VMCORE-WRITING" in killwrite.boot.console, killwrite.boot.console[-2000:]
    assert killwrite.boot.exit is not None and \
        killwrite.boot.exit.kind == vmcore.ExitKind.SIGNAL, killwrite.boot.exit
    # e2fsck -p: 0 clean, 1 errors corrected; 4 and up mean it could not repair the image
    r = subprocess.run(["e2fsck", "-fy", str(killwrite.rw)], capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    r = subprocess.run(["e2fsck", "-fn", str(killwrite.rw)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["debugfs", "-R", "cat /hello.txt", str(killwrite.rw)],
                       capture_output=True, text=True)
    assert r.stdout == KNOWN + "\n", r.stdout + r.stderr
