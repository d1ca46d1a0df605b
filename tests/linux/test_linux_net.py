"""Debian 12's cloud kernel on emu with a virtio-net card, driven by its own virtio_net
module, on a tap inside a network namespace this test creates (``ip netns add``), so no
frame reaches any interface of the host's.

The tap exists before the domain (``ip tuntap add``, host side 10.0.2.1/24); the domain
attaches to it by name (``nics[0].ifname``) and is run with the CLI inside the namespace
(``ip netns exec NS vmcore run``). The guest (tests/linux/scenarios/net.sh) sets eth0 to
10.0.2.15/24, pings the host, sends 1 MiB to port 5001 and reads 1 MiB from port 5002;
the host's side is a thread of this test that entered the namespace (setns). Both
directions are checked by SHA-256. Timeouts only keep a hang from hanging the run. The
console is kept in $VMCORE_BUILD_DIR/tests/linux/net.log.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any, Dict, NamedTuple

import pytest

from conftest import build_dir, require

NS = "vmcore-test-net-%d" % os.getpid()
TAP = "vtap0"
MAC = "52:54:00:be:ef:01"
UP_BYTES = 1 << 20
DOWN = hashlib.sha256(b"seed").digest() * (1 << 15)     # 1 MiB, known here
WAIT = 600.0
CLONE_NEWNET = 0x40000000


class NetRun(NamedTuple):
    console: str
    returncode: int
    peer: Dict[str, Any]


def ip(*args: str) -> None:
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True)
    assert r.returncode == 0, "ip %s: %s" % (" ".join(args), r.stderr)


def peer(result: Dict[str, Any], ready: threading.Event) -> None:
    """The host side, in the test's namespace: hash what arrives on 5001, send DOWN on
    5002. Only this thread enters the namespace (setns affects the calling thread)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open("/run/netns/" + NS, os.O_RDONLY)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        os.close(fd)
        up = socket.create_server(("10.0.2.1", 5001))
        down = socket.create_server(("10.0.2.1", 5002))
        for s in (up, down):
            s.settimeout(WAIT)
        ready.set()
        c, _ = up.accept()
        c.settimeout(WAIT)
        h, n = hashlib.sha256(), 0
        while n < UP_BYTES:
            b = c.recv(65536)
            if not b:
                break
            h.update(b)
            n += len(b)
        c.close()
        result["up"] = (n, h.hexdigest())
        c, _ = down.accept()
        c.settimeout(WAIT)
        c.sendall(DOWN)
        c.close()
        result["down_sent"] = True
    except Exception as e:  # reported by the tests, not lost in the thread
        result["error"] = repr(e)
    finally:
        ready.set()


@pytest.fixture(scope="module")
def net_run(linux_files: Any, tmp_path_factory: pytest.TempPathFactory) -> NetRun:
    require(os.geteuid() == 0, "needs root for a network namespace and a tap")
    require(shutil.which("ip"), "no ip (Debian: iproute2)")
    vmcore_cli = Path(os.environ.get("VMCORE_CLI") or build_dir() / "tools" / "vmcore")
    require(vmcore_cli.exists(), "no %s (build the tree first)" % vmcore_cli)
    ip("netns", "add", NS)
    try:
        ip("-n", NS, "link", "set", "lo", "up")
        ip("-n", NS, "tuntap", "add", "dev", TAP, "mode", "tap")
        ip("-n", NS, "addr", "add", "10.0.2.1/24", "dev", TAP)
        ip("-n", NS, "link", "set", TAP, "up")
        cfg = {
            "name": "linux-net", "backend": "emu", "memory_mib": 256,
            "boot": {"kernel": str(linux_files.kernel), "format": "linux",
                     "initrd": str(linux_files.initrd),
                     "cmdline": "console=ttyS0 vmcore.test=net"},
            "nics": [{"mode": "tap", "ifname": TAP, "mac": MAC}],
        }
        path = tmp_path_factory.mktemp("net") / "net.json"
        path.write_text(json.dumps(cfg))
        result: Dict[str, Any] = {}
        ready = threading.Event()
        t = threading.Thread(target=peer, args=(result, ready), daemon=True)
        t.start()
        ready.wait(30)
        try:
            r = subprocess.run(["ip", "netns", "exec", NS, str(vmcore_cli), "run", str(path)],
                               capture_output=True, timeout=WAIT)
            out, rc = r.stdout, r.returncode
        except subprocess.TimeoutExpired as e:
            out, rc = e.stdout or b"", -1
        t.join(30)
        console = out.decode("utf-8", "replace").replace("\r\n", "\n")
        (linux_files.logdir / "net.log").write_text(
            console + "\n--- net: exit %d, peer %r\n" % (rc, result))
        # the tap is ours (persistent): still there after the domain; goes with the netns
        r = subprocess.run(["ip", "-n", NS, "link", "show", TAP], capture_output=True)
        result["tap_kept"] = r.returncode == 0
        return NetRun(console, rc, result)
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True)


def test_net_driver_binds(net_run: NetRun) -> None:
    c = net_run.console
    assert "VMCORE-INSMOD-FAILED" not in c, c[-3000:]
    assert "VMCORE-NET-DRIVER virtio_net" in c, c[-3000:]
    assert "VMCORE-NET-MAC " + MAC in c, c[-3000:]


def test_net_ping(net_run: NetRun) -> None:
    assert "VMCORE-NET-PING-OK" in net_run.console, net_run.console[-3000:]


def test_net_guest_to_host(net_run: NetRun) -> None:
    assert "error" not in net_run.peer, net_run.peer
    m = re.search(r"^VMCORE-NET-UP-SHA ([0-9a-f]{64})$", net_run.console, re.M)
    assert m, net_run.console[-3000:]
    assert net_run.peer.get("up") == (UP_BYTES, m.group(1)), net_run.peer


def test_net_host_to_guest(net_run: NetRun) -> None:
    assert net_run.peer.get("down_sent"), net_run.peer
    want = "VMCORE-NET-DOWN %d %s" % (len(DOWN), hashlib.sha256(DOWN).hexdigest())
    assert want in net_run.console, net_run.console[-3000:]


def test_net_poweroff_and_tap_kept(net_run: NetRun) -> None:
    assert net_run.returncode == 0, net_run.console[-3000:]
    assert net_run.peer.get("tap_kept"), "the domain removed a tap it did not create"
