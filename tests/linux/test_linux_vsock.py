"""Debian 12's cloud kernel on emu with a virtio-vsock device, driven by its own vsock,
vmw_vsock_virtio_transport_common and vmw_vsock_virtio_transport modules.

The guest runs tests/support/vsock_guest.c (compiled here with ``gcc -static``, put in
/bin of the initramfs): it echoes on vsock port 5000 and connects to CID 2 port 6000.
The host (this test) connects to ``uds_path``, writes ``CONNECT 5000``, expects ``OK``
and echoes 384 KiB through the guest with a checksum; and listens on ``<uds_path>_6000``,
where the guest's 256 KiB must arrive intact. Timeouts only keep a hang from hanging the
run. The console is kept in $VMCORE_BUILD_DIR/tests/linux/vsock.log.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import HERE, SOURCE_DIR, require
from test_linux_emu import run_linux

VSOCK_MODULES = ["net/vmw_vsock/vsock.ko",
                 "net/vmw_vsock/vmw_vsock_virtio_transport_common.ko",
                 "net/vmw_vsock/vmw_vsock_virtio_transport.ko"]
ECHO_BYTES = 384 << 10
GUEST_BYTES = 256 << 10
WAIT = 300.0


@pytest.fixture(scope="module")
def vsock_run(linux_files, tmp_path_factory):
    import conftest
    tmp = tmp_path_factory.mktemp("vsock")
    require(shutil.which("gcc"), "no gcc for the static guest program")
    guest = tmp / "vsock_guest"
    r = subprocess.run(["gcc", "-O2", "-Wall", "-static", "-o", str(guest),
                        str(SOURCE_DIR / "tests" / "support" / "vsock_guest.c")],
                       capture_output=True, text=True)
    require(r.returncode == 0, "gcc -static vsock_guest.c failed: " + r.stderr)
    kdir = Path(str(linux_files.kernel)).parent / "lib" / "modules"
    kdirs = sorted(kdir.glob("*/kernel")) or sorted(
        (conftest.build_dir() / "linux" / "lib" / "modules").glob("*/kernel"))
    require(kdirs, "no kernel modules found")
    kd = kdirs[-1]
    mods = [kd / p for p in conftest.VIRTIO_MODULES + VSOCK_MODULES]
    missing = [str(p) for p in mods if not p.exists()]
    require(not missing, "the kernel package lacks " + ", ".join(missing))
    initrd = tmp / "initramfs.cpio"
    r = subprocess.run([str(HERE / "make-initramfs.sh"), str(initrd)] +
                       [str(p) for p in mods] + [str(guest)], capture_output=True, text=True)
    require(r.returncode == 0, "building the initramfs failed: " + r.stderr)
    files = linux_files._replace(initrd=initrd)

    uds = tmp / "v.sock"
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(str(uds) + "_6000")
    lst.listen(1)
    lst.settimeout(WAIT)
    got = {}

    def accept_guest():
        try:
            c, _ = lst.accept()
            c.settimeout(WAIT)
            data = b""
            while True:
                b = c.recv(65536)
                if not b:
                    break
                data += b
            got["guest"] = data
            c.close()
        except OSError as e:
            got["guest_error"] = repr(e)

    t = threading.Thread(target=accept_guest, daemon=True)
    t.start()

    def then(_d):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(WAIT)
        s.connect(str(uds))
        s.sendall(b"CONNECT 5000\n")
        line = b""
        while not line.endswith(b"\n"):
            b = s.recv(1)
            if not b:
                break
            line += b
        got["ok"] = line
        payload = bytes((i * 13 + 5) & 0xff for i in range(ECHO_BYTES))
        back = bytearray()

        def reader():
            while len(back) < ECHO_BYTES:
                b = s.recv(65536)
                if not b:
                    break
                back.extend(b)

        rt = threading.Thread(target=reader, daemon=True)
        rt.start()
        s.sendall(payload)
        rt.join(WAIT)
        got["sent_sha"] = hashlib.sha256(payload).hexdigest()
        got["back_sha"] = hashlib.sha256(bytes(back)).hexdigest()
        got["back_len"] = len(back)
        s.shutdown(socket.SHUT_WR)
        s.close()

    boot = run_linux(files, "vsock", "VMCORE-VSOCK-LISTENING", then,
                     extra={"vsock": {"cid": 3, "uds_path": str(uds)}})
    t.join(WAIT)
    lst.close()
    got["console"] = boot.console
    got["uds_left"] = uds.exists()
    return got


def test_host_connect_echo(vsock_run):
    assert vsock_run["ok"].startswith(b"OK "), vsock_run["ok"]
    assert vsock_run["back_len"] == ECHO_BYTES
    assert vsock_run["back_sha"] == vsock_run["sent_sha"]


def test_guest_connect(vsock_run):
    data = vsock_run.get("guest")
    assert data is not None, vsock_run.get("guest_error")
    want = bytes((i * 7 + 3) & 0xff for i in range(GUEST_BYTES))
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(want).hexdigest()


def test_guest_side_done(vsock_run):
    assert "VMCORE-VSOCK-OK" in vsock_run["console"], vsock_run["console"][-2000:]
    assert not vsock_run["uds_left"]
