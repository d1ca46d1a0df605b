"""Debian's kernel on emu saved in the middle of a busy shell loop and restored in another
process (doc/snapshot.md): the loop goes on from where it was, the console still answers a
line typed into it, and the guest powers off with status 0. No virtio devices: their state
is not in the format yet (save refuses machines that have them).

tests/linux/scenarios/snapshot.sh is the guest's side: "VMCORE-LOOP N" every 10000 rounds
up to 200000, "VMCORE-LOOP-DONE", then it reads a line and prints "VMCORE-ANSWER <line>".
Nothing here asserts on how long anything takes; the timeouts only bound a hung guest."""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any

import vmcore

from conftest import require

CHUNK_TIMEOUT = 300.0
LOOP_LINES = ["VMCORE-LOOP %d" % n for n in range(10000, 200001, 10000)]


def loop_lines(text: str):
    return re.findall(r"^VMCORE-LOOP \d+$", text, re.M)


def test_save_in_a_shell_loop_and_restore_elsewhere(linux_files: Any, tmp_path) -> None:
    cli = os.environ.get("VMCORE_CLI")
    require(cli and os.access(cli, os.X_OK), "VMCORE_CLI does not name the built vmcore")
    cfg = {"name": "linux-snapshot", "backend": "emu", "memory_mib": 256,
           "boot": {"kernel": str(linux_files.kernel), "format": "linux",
                    "initrd": str(linux_files.initrd),
                    "cmdline": "console=ttyS0 vmcore.test=snapshot"}}
    snap = tmp_path / "linux.vmsnap"
    buf = b""
    with vmcore.Context() as ctx:
        d = ctx.create(cfg)
        d.start()
        try:
            for _stream, data in d.console.chunks(timeout=CHUNK_TIMEOUT):
                buf += data
                if b"VMCORE-LOOP 30000" in buf:
                    break
            assert not d.ended, buf.decode("utf-8", "replace")
            d.save(snap, stop=True)
            exit_ = d.wait(CHUNK_TIMEOUT)
            buf += d.console.read_nowait()
        finally:
            if not d.ended:
                d.kill()
    before = buf.decode("utf-8", "replace").replace("\r\n", "\n")
    assert (exit_.kind, exit_.status, exit_.reason) == \
        (vmcore.ExitKind.STATUS, 0, "saved to a snapshot")

    # another process: the vmcore program, with the line to answer on its stdin
    r = subprocess.run([cli, "run", "--restore", str(snap)], input=b"restored-ok\n",
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=1200)
    after = r.stdout.decode("utf-8", "replace").replace("\r\n", "\n")
    (linux_files.logdir / "snapshot.log").write_text(
        before + "\n--- saved; restored:\n" + after + "\n--- stderr:\n" + r.stderr.decode())
    assert r.returncode == 0, r.stderr.decode()
    # the loop went on where it was: before and after together count every line once
    assert loop_lines(before) + loop_lines(after) == LOOP_LINES
    assert loop_lines(after), "nothing of the loop ran after the restore"
    assert "VMCORE-LOOP-DONE" in after
    assert "VMCORE-ANSWER restored-ok" in after
    assert "reboot: Power down" in after
