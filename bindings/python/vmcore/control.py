"""A client of the control socket of managed domains (``vmcore create``; doc/control.md).

A managed domain runs under a monitor process of its own, not in this process; this module
talks to that monitor over its UNIX socket with the documented JSON protocol. It needs no
libvmcore in this process::

    import vmcore

    with vmcore.connect("web") as dom:
        print(dom.info()["state"])
        dom.pause()
        dom.resume()
        for event in dom.events():       # {"event": "state", "old": ..., "new": ...}
            if event["event"] == "exit":
                break

Errors the monitor reports are raised as the same exception classes as the in-process API
(``StateError`` for ``VMCORE_ESTATE``, ...); a domain that does not exist or whose monitor
is gone raises ``NotFound``.
"""

from __future__ import annotations

import base64
import json
import os
import socket
from typing import Any, Dict, Iterator, List, Optional

from .errors import NotFound, VmcoreError, make_error, _NAMES

PROTOCOL_VERSION = 1
SOCKET_NAME = "sock"

_CODES = {name: code for code, name in _NAMES.items()}


def state_root(root: Optional[str] = None) -> str:
    """The state directory ``vmcore`` uses: @root, else ``$VMCORE_ROOT``, else
    ``/run/vmcore`` for root, else ``$XDG_RUNTIME_DIR/vmcore``."""
    if root:
        return root
    env = os.environ.get("VMCORE_ROOT")
    if env:
        return env
    if os.geteuid() == 0:
        return "/run/vmcore"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if not xdg:
        raise VmcoreError("XDG_RUNTIME_DIR is not set: pass root=")
    return os.path.join(xdg, "vmcore")


class ManagedDomain:
    """One connection to a managed domain's monitor. Not thread-safe; use one per thread."""

    def __init__(self, name: str, root: Optional[str] = None, timeout: float = 10.0) -> None:
        self.name = name
        self.path = os.path.join(state_root(root), name, SOCKET_NAME)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(self.path)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            self._sock.close()
            raise NotFound("domain %r is not running (%s)" % (name, e.strerror)) from None
        except OSError:
            self._sock.close()
            raise
        self._buf = b""
        self._next_id = 1
        self._pending: List[Dict[str, Any]] = []  # events read while waiting for a reply
        hello = self._read()
        if hello.get("vmcore_control") != PROTOCOL_VERSION:
            self.close()
            raise VmcoreError("%s: not a vmcore control socket of protocol version %d"
                              % (self.path, PROTOCOL_VERSION))
        self.monitor_pid: int = hello.get("pid", 0)

    # -- plumbing --

    def _read(self) -> Dict[str, Any]:
        while b"\n" not in self._buf:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("the monitor of %r closed the connection" % self.name)
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, method: str, timeout: Optional[float] = 10.0, **params: Any) -> Dict[str, Any]:
        """Send one request and return its ``result``; raise the error it got."""
        rid = self._next_id
        self._next_id += 1
        msg = {"id": rid, "method": method, "params": params}
        self._sock.sendall(json.dumps(msg).encode() + b"\n")
        old = self._sock.gettimeout()
        self._sock.settimeout(timeout)
        try:
            while True:
                reply = self._read()
                if reply.get("id") == rid:
                    break
                if "event" in reply:
                    self._pending.append(reply)
        finally:
            self._sock.settimeout(old)
        if "error" in reply:
            err = reply["error"]
            raise make_error(_CODES.get(err.get("name"), -8), err.get("message", ""))
        return reply.get("result", {})

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "ManagedDomain":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the methods of doc/control.md --

    def info(self) -> Dict[str, Any]:
        return self.call("info")

    def stats(self) -> Dict[str, Any]:
        return self.call("stats")

    def pause(self) -> None:
        self.call("pause")

    def resume(self) -> None:
        self.call("resume")

    def kill(self) -> None:
        self.call("kill", timeout=None)

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Ask the domain to end; returns True if it had to be killed after @timeout_ms."""
        return bool(self.call("shutdown", timeout=None, timeout_ms=timeout_ms).get("killed"))

    def exec(self, argv: List[str]) -> Dict[str, Any]:
        """Run @argv in a running container; returns ``{"exit": {...}, "output": bytes}``
        (output: the console output seen while it ran, see doc/control.md)."""
        rid = self._next_id
        self._next_id += 1
        self._sock.sendall(json.dumps({"id": rid, "method": "exec",
                                       "params": {"argv": list(argv)}}).encode() + b"\n")
        out = b""
        old = self._sock.gettimeout()
        self._sock.settimeout(None)
        try:
            while True:
                msg = self._read()
                if msg.get("event") == "console":
                    out += base64.b64decode(msg["data"])
                elif msg.get("id") == rid:
                    break
        finally:
            self._sock.settimeout(old)
        if "error" in msg:
            err = msg["error"]
            raise make_error(_CODES.get(err.get("name"), -8), err.get("message", ""))
        result = dict(msg["result"])
        result["output"] = out
        return result

    def events(self, kinds: Optional[List[str]] = None) -> Iterator[Dict[str, Any]]:
        """Subscribe and yield events until the domain's monitor closes the connection."""
        params = {"events": kinds} if kinds is not None else {}
        self.call("subscribe", **params)  # now, not at the first next()
        self._sock.settimeout(None)
        return self._event_stream()

    def _event_stream(self) -> Iterator[Dict[str, Any]]:
        while self._pending:
            yield self._pending.pop(0)
        while True:
            try:
                yield self._read()
            except ConnectionError:
                return


def connect(name: str, root: Optional[str] = None, timeout: float = 10.0) -> ManagedDomain:
    """Connect to the monitor of the managed domain @name (see :class:`ManagedDomain`)."""
    return ManagedDomain(name, root, timeout)
