"""Virtual machines through the bindings: our own guest (guests/checksum.asm) hashes 4 KiB
and prints the checksum on the serial console; both VM backends must print the value
Python computes and exit with its low byte. Skips (or fails under VMCORE_TEST_STRICT=1)
where a backend cannot run, except when it is not built into this version at all."""

import asyncio

import pytest

import vmcore
from vmcore.model import ExitKind, State, Stream

from conftest import GUEST_BYTES, fnv1a, require_backend, vm_config

EXPECTED = fnv1a(GUEST_BYTES)
BACKENDS = ["emu", "kvm"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_guest_prints_its_checksum(ctx, checksum_guest, backend):
    require_backend(backend)
    d = ctx.create(vm_config(checksum_guest, backend))
    assert d.backend == backend
    d.start()
    exit = d.wait()
    assert (exit.kind, exit.status) == (ExitKind.STATUS, EXPECTED & 0xFF)
    assert d.state == State.STOPPED
    chunks = list(d.console.chunks())
    assert {s for s, _ in chunks} == {Stream.CONSOLE}
    assert b"".join(data for _, data in chunks) == b"checksum=%08x\r\n" % EXPECTED


@pytest.mark.parametrize("backend", BACKENDS)
def test_guest_checksum_async(checksum_guest, backend):
    require_backend(backend)

    async def main():
        async with vmcore.AsyncContext() as c:
            d = c.create(vm_config(checksum_guest, backend))
            await d.start()
            out = b"".join([chunk async for chunk in d.console])
            return out, await d.wait()

    out, exit = asyncio.run(main())
    assert out == b"checksum=%08x\r\n" % EXPECTED
    assert exit.status == EXPECTED & 0xFF


def test_guest_from_a_config_file_with_relative_paths(ctx, checksum_guest, tmp_path):
    result = vmcore.probe("auto")
    if not result.available:
        require_backend("emu")  # auto falls back to emu: say why that cannot run
    (tmp_path / "g.bin").write_bytes(checksum_guest.read_bytes())
    cfg = tmp_path / "vm.json"
    cfg.write_text('{"name": "file", "memory_mib": 16, "boot": {"kernel": "g.bin", '
                   '"format": "raw", "load_address": 1048576}}')
    d = ctx.create(cfg)
    d.start()
    assert d.wait().status == EXPECTED & 0xFF
    assert d.console.read() == b"checksum=%08x\r\n" % EXPECTED


def test_serial_console_has_no_window_size(ctx, checksum_guest):
    require_backend("emu")
    d = ctx.create(vm_config(checksum_guest, "emu"))
    with pytest.raises(vmcore.errors.NotSupported):
        d.console.resize(24, 80)
