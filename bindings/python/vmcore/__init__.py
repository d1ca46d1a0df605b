"""Python bindings for libvmcore: VMs (kvm, emu) and containers behind one handle API.

Blocking use::

    import vmcore

    with vmcore.Context() as ctx:
        d = ctx.create({"name": "hello", "backend": "container", "rootfs": "/srv/rootfs",
                        "process": {"args": ["/bin/echo", "hello"]}})
        d.start()
        print(d.console.read().decode(), d.wait().code)

asyncio::

    async with vmcore.AsyncContext() as ctx:
        d = ctx.create("vm.json")
        await d.start()
        async for chunk in d.console:
            ...
        exit = await d.wait()

Errors are exceptions derived from :class:`VmcoreError` (``ConfigError`` carries the JSON
``path``, ``BackendUnavailable`` the ``reason``). :func:`probe` says which backends can run.
Managed domains (``vmcore create``, run by monitor processes) are reached with
:func:`connect`, a client of their control socket (doc/control.md).
The shared library is found through ``$VMCORE_LIBRARY``, next to this package, or by the
system loader.
"""

from __future__ import annotations

import ctypes
from typing import Dict, List, Optional, overload

from . import _lib
from ._lib import LibraryNotFound
from .context import AsyncContext, Context, ContextBase
from .control import ManagedDomain, connect, state_root
from .domain import AsyncDomain, Console, Domain, DomainBase, EventIterator
from .errors import (BackendUnavailable, Busy, Canceled, ClosedError, ConfigError,
                     ImageError, InvalidArgument, LimitError, NotFound, NotSupported,
                     OutOfMemory, ParseError, PermissionDenied, StateError, SyscallError,
                     Timeout, VmcoreError, VmcoreIOError, error_name, make_error, strerror)
from .model import (ConsoleEvent, ErrorEvent, Event, EventType, Exit, ExitEvent, ExitKind,
                    ProbeFlags, ProbeResult, State, StateEvent, Stats, Stream)

__version__ = "0.1.0"


def version() -> str:
    """The version of the loaded libvmcore ("0.1.0")."""
    return _lib.text(_lib.get().vmcore_version_string())


def backend_names() -> List[str]:
    """The backends this build of the library knows, in probe order."""
    names = _lib.get().vmcore_backend_names()
    out: List[str] = []
    i = 0
    while names[i] is not None:
        out.append(names[i].decode())
        i += 1
    return out


def _probe_one(backend: str) -> ProbeResult:
    c = _lib.CProbeResult(version=_lib.PROBE_RESULT_VERSION)
    rc = _lib.get().vmcore_probe(backend.encode(), ctypes.byref(c))
    if rc < 0 and rc != BackendUnavailable.default_code:
        raise make_error(rc, "cannot probe backend %r" % backend)
    return ProbeResult(_lib.text(c.backend) or backend, bool(c.available),
                       ProbeFlags(c.flags), _lib.text(c.reason), _lib.text(c.details))


@overload
def probe(backend: None = None) -> Dict[str, ProbeResult]: ...
@overload  # noqa: E302
def probe(backend: str) -> ProbeResult: ...


def probe(backend: Optional[str] = None):  # type: ignore[no-untyped-def]
    """Ask whether a backend can run on this host, and why not.

    Args:
        backend: "kvm", "emu", "container" or "auto" (the backend auto would pick); None
            probes every backend.

    Returns:
        A :class:`ProbeResult` (truthy when available), or for None a dict of them by name.

    Raises:
        InvalidArgument: an unknown backend name.
    """
    if backend is None:
        return {name: _probe_one(name) for name in backend_names()}
    return _probe_one(backend)


__all__ = [
    "AsyncContext", "AsyncDomain", "BackendUnavailable", "Busy", "Canceled", "ClosedError",
    "ConfigError", "Console", "ConsoleEvent", "Context", "ContextBase", "Domain", "DomainBase",
    "ErrorEvent", "Event", "EventIterator", "EventType", "Exit", "ExitEvent", "ExitKind",
    "ImageError", "InvalidArgument", "LibraryNotFound", "LimitError", "ManagedDomain", "NotFound",
    "NotSupported", "OutOfMemory", "ParseError", "PermissionDenied", "ProbeFlags",
    "ProbeResult", "State", "StateError", "StateEvent", "Stats", "Stream", "SyscallError",
    "Timeout", "VmcoreError", "VmcoreIOError", "backend_names", "connect", "error_name",
    "probe", "state_root", "strerror", "version",
]
