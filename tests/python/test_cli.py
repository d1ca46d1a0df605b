"""``python3 -m vmcore``: the entry point that mirrors the C CLI."""

import json
import os
import subprocess

import pytest

import vmcore

from conftest import GUEST_BYTES, fnv1a, require_backend, run_python, vm_config


def test_version_and_probe():
    r = run_python("-m", "vmcore", "version")
    assert r.returncode == 0
    assert r.stdout.decode() == "vmcore %s\n" % vmcore.version()
    r = run_python("-m", "vmcore", "probe")
    assert r.returncode == 0
    lines = r.stdout.decode().splitlines()
    assert [line.split(":")[0] for line in lines] == vmcore.backend_names()
    for line, (name, result) in zip(lines, vmcore.probe().items()):
        assert ("%s: available" % name if result.available
                else "%s: unavailable: %s" % (name, result.reason)) in line


def test_probe_exit_status_and_usage_errors():
    r = run_python("-m", "vmcore", "probe", *vmcore.backend_names())
    assert r.returncode == (0 if all(vmcore.probe().values()) else 1)
    r = run_python("-m", "vmcore", "probe", "nosuch")
    assert r.returncode == 2 and b"unknown backend 'nosuch'" in r.stderr
    r = run_python("-m", "vmcore")
    assert r.returncode == 2
    r = run_python("-m", "vmcore", "run")
    assert r.returncode == 2


def test_run_bad_config_names_file_and_path(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "process": {"args": [1]}, "backend": "container",
                               "rootfs": str(tmp_path)}))
    for extra in ([], ["--backend", "container"]):
        r = run_python("-m", "vmcore", "run", *extra, str(bad))
        assert r.returncode == 125
        assert r.stderr.decode() == "vmcore: %s: process.args[0]: expected a string, got an " \
                                    "integer\n" % bad
        assert r.stdout == b""
    r = run_python("-m", "vmcore", "run", str(tmp_path / "missing.json"))
    assert r.returncode == 125 and b"missing.json" in r.stderr


def test_run_container_streams_output_and_stdin(container, tmp_path):
    cfg = tmp_path / "ct.json"
    cfg.write_text(json.dumps(container(["/bin/sh", "-c", "cat; echo to-err >&2; exit 9"])))
    r = run_python("-m", "vmcore", "run", str(cfg), input=b"piped in\n")
    assert (r.returncode, r.stdout, r.stderr) == (9, b"piped in\n", b"to-err\n")


def test_run_vm_guest_with_backend_override(checksum_guest, tmp_path):
    require_backend("emu")
    cfg = tmp_path / "vm.json"
    cfg.write_text(json.dumps(vm_config(checksum_guest, "kvm")))
    r = run_python("-m", "vmcore", "run", "--backend", "emu", str(cfg))
    expected = fnv1a(GUEST_BYTES)
    assert r.returncode == expected & 0xFF
    assert r.stdout == b"checksum=%08x\r\n" % expected


def test_same_output_and_status_as_the_c_cli(tmp_path):
    cli = os.environ.get("VMCORE_CLI")
    if not cli or not os.access(cli, os.X_OK):
        pytest.skip("VMCORE_CLI does not name the built C vmcore program")
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "memory_mib": -1, "boot": {"kernel": "k"}}')
    broken = tmp_path / "broken.json"
    broken.write_text('{"name": ')
    cases = [["probe"], ["probe", "container"], ["version"], ["run", str(bad)],
             ["run", str(tmp_path / "missing.json")], ["run", str(broken)]]
    for args in cases:
        c = subprocess.run([cli, *args], capture_output=True)
        py = run_python("-m", "vmcore", *args)
        assert (py.returncode, py.stdout, py.stderr) == (c.returncode, c.stdout, c.stderr), args
