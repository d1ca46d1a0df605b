"""Debian 12's cloud kernel on emu with a virtio-net card in "user" mode: user-mode NAT
through libslirp, no tap, no host interface, no privilege needed for the network.

The guest (tests/linux/scenarios/netuser.sh) configures eth0 by DHCP (the lease slirp
hands out: 10.0.2.15/24, router 10.0.2.2, DNS 10.0.2.3), fetches a page over HTTP from a
server this test runs on the host's loopback (127.0.0.1, reached as 10.0.2.2), then
listens on port 80, which this test reaches through the card's port forward
(``nics[0].ports``: 127.0.0.1:FWD -> guest 80). Everything stays on this machine's
loopback. The console is kept in $VMCORE_BUILD_DIR/tests/linux/netuser.log.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Dict, NamedTuple

import pytest

from conftest import build_dir, require

PAGE = hashlib.sha256(b"page").digest() * 4096     # 128 KiB
WAIT = 600.0


class Run(NamedTuple):
    console: str
    returncode: int
    host: Dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.server.hits.append(self.path)  # type: ignore[attr-defined]
        body = PAGE if self.path == "/page" else b"no"
        self.send_response(200 if self.path == "/page" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def forward_client(port: int, result: Dict[str, Any], stop: threading.Event) -> None:
    """Connect to the forwarded port until the guest's listener answers."""
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                c.sendall(b"hello from the host\n")
                c.shutdown(socket.SHUT_WR)
                data = b""
                while True:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                if data:
                    result["reply"] = data
                    return
        except OSError as e:
            result["last_error"] = str(e)
        time.sleep(0.5)


@pytest.fixture(scope="module")
def run(linux_files: Any, tmp_path_factory: pytest.TempPathFactory) -> Run:
    vmcore_cli = Path(os.environ.get("VMCORE_CLI") or build_dir() / "tools" / "vmcore")
    require(vmcore_cli.exists(), "no %s (build the tree first)" % vmcore_cli)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.hits = []  # type: ignore[attr-defined]
    http_port = httpd.server_address[1]
    fwd = free_port()
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    host: Dict[str, Any] = {}
    stop = threading.Event()
    client = threading.Thread(target=forward_client, args=(fwd, host, stop), daemon=True)
    cfg = {
        "name": "linux-netuser", "backend": "emu", "memory_mib": 256,
        "boot": {"kernel": str(linux_files.kernel), "format": "linux",
                 "initrd": str(linux_files.initrd),
                 "cmdline": "console=ttyS0 vmcore.test=netuser vmcore.port=%d" % http_port},
        "nics": [{"mode": "user",
                  "ports": [{"host": "127.0.0.1:%d" % fwd, "guest": 80, "proto": "tcp"}]}],
    }
    path = tmp_path_factory.mktemp("netuser") / "netuser.json"
    path.write_text(json.dumps(cfg))
    proc = subprocess.Popen([str(vmcore_cli), "run", str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out = b""
    started = False
    deadline = time.monotonic() + WAIT
    try:
        while True:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
            if not started and b"VMCORE-NETUSER-LISTENING" in out:
                client.start()
                started = True
            if time.monotonic() > deadline:
                proc.kill()
        rc = proc.wait(60)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        httpd.shutdown()
        httpd.server_close()
    if started:
        client.join(10)
    host["hits"] = list(httpd.hits)  # type: ignore[attr-defined]
    console = out.decode("utf-8", "replace").replace("\r\n", "\n")
    (linux_files.logdir / "netuser.log").write_text(
        console + "\n--- netuser: exit %d, host %r\n" % (rc, host))
    return Run(console, rc, host)


def test_netuser_dhcp_lease(run: Run) -> None:
    c = run.console
    assert "VMCORE-INSMOD-FAILED" not in c, c[-3000:]
    m = re.search(r"^VMCORE-NETUSER-LEASE (\S+) router (\S+) dns (\S+)$", c, re.M)
    assert m, c[-3000:]
    assert m.groups() == ("10.0.2.15/24", "10.0.2.2", "10.0.2.3")


def test_netuser_guest_fetches_from_host_loopback(run: Run) -> None:
    want = "VMCORE-NETUSER-PAGE %d %s" % (len(PAGE), hashlib.sha256(PAGE).hexdigest())
    assert want in run.console, run.console[-3000:]
    assert run.host["hits"] == ["/page"]


def test_netuser_port_forward_reaches_guest(run: Run) -> None:
    assert run.host.get("reply") == b"reply from the guest\n", run.host
    assert "VMCORE-NETUSER-SERVED hello from the host" in run.console, run.console[-3000:]


def test_netuser_poweroff(run: Run) -> None:
    assert run.returncode == 0, run.console[-3000:]
