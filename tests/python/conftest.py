"""Shared fixtures for the vmcore binding tests.

Like tests/support/vt.h for the C tests: a test that needs root, a backend or a tool
skips on a machine without it, and fails instead when VMCORE_TEST_STRICT=1 (CI). The
one exception is a backend whose probe says it is not built into this version at all:
that skips even in strict mode.

Tests marked ``scripted`` need the test build of the library that can create domains run
by a scripted backend (tests/python/shim/); ctest runs them as python_bindings_scripted.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

import vmcore
from vmcore import _callbacks, _lib

HERE = Path(__file__).resolve().parent
SOURCE_DIR = HERE.parent.parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scripted: needs the scripted-backend test library")


def strict() -> bool:
    return os.environ.get("VMCORE_TEST_STRICT") == "1"


def require(cond: object, why: str) -> None:
    """Skip unless @cond; under VMCORE_TEST_STRICT=1 fail instead."""
    if cond:
        return
    if strict():
        pytest.fail("required by VMCORE_TEST_STRICT=1 but unavailable: " + why, pytrace=False)
    pytest.skip(why)


def require_root() -> None:
    require(os.geteuid() == 0, "needs root")


def require_backend(name: str) -> vmcore.ProbeResult:
    """Skip/fail unless @name can run here; a backend not built at all always skips."""
    result = vmcore.probe(name)
    if not result.available and result.reason.startswith("the %s backend is not built" % name):
        pytest.skip(result.reason)
    if (name == "kvm" and not result.available and os.environ.get("VMCORE_TEST_NO_KVM") == "1"):
        pytest.skip("needs /dev/kvm (VMCORE_TEST_NO_KVM=1: this machine has none)")
    require(result.available, "backend %s: %s" % (name, result.reason))
    return result


def count_fds() -> int:
    return len(os.listdir("/proc/self/fd")) - 1  # listdir's own descriptor


def count_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def count_children() -> int:
    with open("/proc/self/task/%d/children" % os.getpid()) as f:
        return len(f.read().split())


@pytest.fixture
def ctx() -> Iterator[vmcore.Context]:
    """A blocking context, closed (and checked to have released every callback) after."""
    before = _callbacks.pending()
    with vmcore.Context() as c:
        yield c
    assert c.closed
    assert _callbacks.pending() == before


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A minimal root file system (a static busybox, its applets, the usual folders), made
    by the same function the sandbox example uses."""
    require(shutil.which("busybox", path="/bin:/usr/bin"),
            "needs a static busybox (Debian: busybox-static)")
    spec = importlib.util.spec_from_file_location(
        "sandbox_example", SOURCE_DIR / "examples" / "python" / "sandbox.py")
    sandbox = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sandbox)
    root = tmp_path_factory.mktemp("rootfs")
    sandbox.make_busybox_rootfs(root)
    return root


def container_config(rootfs: Path, args: List[str], **extra: object) -> dict:
    cfg = {
        "name": "pytest",
        "backend": "container",
        "rootfs": str(rootfs),
        "process": {"args": args, "env": ["PATH=/bin"]},
    }
    cfg.update(extra)
    return cfg


@pytest.fixture
def container(busybox_rootfs: Path) -> Callable[..., dict]:
    """Config factory for container tests; requires root and the container backend."""
    require_root()
    require_backend("container")
    return lambda args, **extra: container_config(busybox_rootfs, args, **extra)


# --- a VM guest of our own: FNV-1a over 4 KiB the guest generates, printed on COM1 ----

GUEST_BYTES = bytes((i * 7 + 3) & 0xFF for i in range(4096))


def fnv1a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


@pytest.fixture(scope="session")
def checksum_guest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/python/guests/checksum.asm assembled as a raw 32-bit payload."""
    nasm = shutil.which("nasm")
    require(nasm, "needs nasm to assemble the test guest")
    out = tmp_path_factory.mktemp("guest") / "checksum.bin"
    subprocess.run([nasm, "-f", "bin", "-o", str(out), str(HERE / "guests" / "checksum.asm")],
                   check=True)
    return out


def vm_config(kernel: Path, backend: str) -> dict:
    return {
        "name": "checksum",
        "backend": backend,
        "memory_mib": 16,
        "boot": {"kernel": str(kernel), "format": "raw", "mode": "protected",
                 "load_address": 1048576},
    }


# --- the scripted backend (tests/python/shim) -----------------------------------------

def _shim_fn():
    lib = _lib.get()
    try:
        fn = lib.vmcore_pyshim_domain_new
    except AttributeError:
        return None
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p, ctypes.c_char_p]
    return fn


@pytest.fixture
def scripted() -> Callable[[vmcore.ContextBase, str], vmcore.DomainBase]:
    """scripted(ctx, script) -> a domain run by the scripted backend (see shim/scripted.c)."""
    fn = _shim_fn()
    if fn is None:
        pytest.skip("needs the scripted test library (VMCORE_LIBRARY=libvmcore_pyshim.so)")

    def make(context: vmcore.ContextBase, script: str) -> vmcore.DomainBase:
        cfg = ('{"name": "%s", "backend": "container", "rootfs": "/", '
               '"process": {"args": ["scripted"]}}' % script)
        out = ctypes.c_void_p()
        rc = fn(ctypes.byref(out), context._handle(), cfg.encode())
        if rc < 0:
            raise context._error(rc)
        return context._adopt(out.value)

    return make


def run_python(*args: str, input: bytes = b"") -> subprocess.CompletedProcess:
    """Run this interpreter (with the test environment) and capture its output."""
    return subprocess.run([sys.executable, *args], input=input, capture_output=True)
