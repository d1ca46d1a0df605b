"""Snapshots through the bindings (doc/snapshot.md): Domain.save() and Context.restore()
on emu with tests/guests/compute.asm, which computes, prints "ready", waits for one byte
on COM1 and prints a checksum that depends on nothing but its code."""

import shutil
import subprocess

import pytest

import vmcore
from vmcore.model import ExitKind, State

from conftest import SOURCE_DIR, require, require_backend


@pytest.fixture(scope="module")
def compute_guest(tmp_path_factory):
    nasm = shutil.which("nasm")
    require(nasm, "needs nasm to assemble the test guest")
    guests = SOURCE_DIR / "tests" / "guests"
    out = tmp_path_factory.mktemp("guest") / "compute.bin"
    subprocess.run([nasm, "-f", "bin", "-I%s/" % guests, "-o", str(out),
                    str(guests / "compute.asm")], check=True)
    return out


def config(guest):
    return {"name": "compute", "backend": "emu", "memory_mib": 16,
            "boot": {"kernel": str(guest), "format": "raw", "mode": "long",
                     "load_address": 1048576}}


def read_until(d, marker):
    out = b""
    for chunk in d.console:
        out += chunk
        if marker in out:
            return out
    raise AssertionError("the guest ended without printing %r: %r" % (marker, out))


def finish(d):
    """Let the guest end (it waits for a byte after "ready"); its remaining output."""
    out = read_until(d, b"ready\n")
    d.console.write(b"q")
    d.wait()
    return out + d.console.read()


def test_save_stop_and_restore(ctx, compute_guest, tmp_path):
    require_backend("emu")
    ref = ctx.create(config(compute_guest))
    ref.start()
    whole = finish(ref)
    assert ref.exit.status == 0
    ref.close()

    d = ctx.create(config(compute_guest))
    d.start()
    before = read_until(d, b"step 03")
    snap = tmp_path / "compute.vmsnap"
    d.save(snap, stop=True)
    exit = d.wait()
    assert (exit.kind, exit.status, exit.reason) == (ExitKind.STATUS, 0, "saved to a snapshot")
    before += d.console.read_nowait()
    d.close()

    r = ctx.restore(snap, overrides={"name": "again"})
    assert r.name == "again"
    assert r.state == State.CREATED
    r.start()
    after = finish(r)
    assert r.exit.status == 0
    # what the guest printed before the save and after the restore is the whole run
    assert before + after == whole


def test_save_resume_keeps_running(ctx, compute_guest, tmp_path):
    require_backend("emu")
    d = ctx.create(config(compute_guest))
    d.start()
    read_until(d, b"step 02")
    d.save(tmp_path / "a.vmsnap")
    assert d.state == State.RUNNING
    finish(d)
    assert d.exit.status == 0
    assert (tmp_path / "a.vmsnap").stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.vmsnap"]


def test_bad_snapshots(ctx, compute_guest, tmp_path):
    require_backend("emu")
    d = ctx.create(config(compute_guest))
    d.start()
    read_until(d, b"step 01")
    snap = tmp_path / "s.vmsnap"
    d.save(snap, stop=True)
    d.wait()
    with pytest.raises(vmcore.ConfigError) as e:
        ctx.restore(snap, overrides={"memory_mib": 32})
    assert e.value.path == "overrides.memory_mib"
    data = snap.read_bytes()
    cut = tmp_path / "cut.vmsnap"
    cut.write_bytes(data[:len(data) // 3])
    with pytest.raises(vmcore.ImageError, match="truncated"):
        ctx.restore(cut)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 4
    cut.write_bytes(bytes(flipped))
    with pytest.raises(vmcore.ImageError, match="CRC mismatch"):
        ctx.restore(cut)
    with pytest.raises(vmcore.NotFound):
        ctx.restore(tmp_path / "absent")


def test_virtio_machine_is_refused(ctx, compute_guest, tmp_path):
    require_backend("emu")
    cfg = config(compute_guest)
    out = tmp_path / "hvc0.out"
    cfg["consoles"] = [{"output": str(out)}]
    d = ctx.create(cfg)
    d.start()
    with pytest.raises(vmcore.NotSupported, match="virtio-console0"):
        d.save(tmp_path / "v.vmsnap")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hvc0.out"]
    d.kill()


def test_cli_save_and_run_restore(ctx, compute_guest, tmp_path):
    """vmcore save NAME FILE through the toolstack, vmcore run --restore FILE."""
    import json
    import os
    import time

    require_backend("emu")
    cli = os.environ.get("VMCORE_CLI")
    require(cli and os.access(cli, os.X_OK), "VMCORE_CLI does not name the built vmcore")
    ref = ctx.create(config(compute_guest))
    ref.start()
    whole = finish(ref)
    ref.close()

    env = dict(os.environ, VMCORE_ROOT=str(tmp_path / "root"))
    run = lambda *a, **kw: subprocess.run([cli, *a], stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, env=env, cwd=tmp_path,
                                          timeout=120, **kw)
    cfg = tmp_path / "compute.json"
    cfg.write_text(json.dumps(config(compute_guest)))
    assert run("create", "--name", "cmp", str(cfg)).returncode == 0
    try:
        for _ in range(6000):  # until the guest is under way (a wait, not a time limit)
            if b"step 02" in run("logs", "cmp").stdout:
                break
            time.sleep(0.01)
        r = run("save", "cmp", "cmp.vmsnap")  # relative: against our folder, not the monitor's
        assert r.returncode == 0, r.stderr
    finally:
        run("destroy", "cmp")
    r = run("run", "--restore", "cmp.vmsnap", "--name", "again", input=b"q")
    assert r.returncode == 0, r.stderr
    # the restored guest finished the run: its output is the end of the whole run's
    assert whole.endswith(r.stdout) and b"checksum " in r.stdout
    r = run("run", "--restore", "cmp.vmsnap", "--backend", "kvm")
    assert r.returncode == 125
    assert b"not implemented yet" in r.stderr
