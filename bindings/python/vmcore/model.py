"""Plain-Python values: states, exits, events, stats and probe results.

These are copies of what the C library reported, so they stay valid after the domain
they came from is closed.
"""

from __future__ import annotations

import ctypes
import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from . import _lib

if TYPE_CHECKING:  # pragma: no cover
    from .domain import DomainBase


class State(enum.IntEnum):
    """The lifecycle states of a domain (``vmcore_state``)."""
    CREATED = 0
    STARTING = 1
    RUNNING = 2
    PAUSED = 3
    STOPPING = 4
    STOPPED = 5
    CRASHED = 6

    @property
    def final(self) -> bool:
        """True for the states a domain never leaves."""
        return self in (State.STOPPED, State.CRASHED)

    def __str__(self) -> str:
        return self.name.lower()


class ExitKind(enum.IntEnum):
    """What ended a domain (``vmcore_exit_kind``)."""
    NONE = 0
    STATUS = 1
    SIGNAL = 2
    CRASH = 3


class EventType(enum.IntFlag):
    """Event types; combine them as a mask for :meth:`Domain.subscribe`."""
    STATE = 1 << 0
    CONSOLE = 1 << 1
    EXIT = 1 << 2
    ERROR = 1 << 3
    ALL = 0xF


class Stream(enum.IntEnum):
    """Which console stream output came from."""
    CONSOLE = 0
    STDOUT = 1
    STDERR = 2


class ProbeFlags(enum.IntFlag):
    """Facts :func:`vmcore.probe` reports about a backend."""
    NONE = 0
    NATIVE_SUPERVISOR = 1 << 0
    NATIVE_USER = 1 << 1
    LINUX_BOOT = 1 << 2
    USERNS = 1 << 3
    CGROUP2 = 1 << 4
    CGROUP1 = 1 << 5


@dataclass(frozen=True)
class Exit:
    """How a domain ended.

    Attributes:
        kind: what ended it.
        status: the exit status (0..255) when ``kind`` is ``STATUS``: a process's exit code
            or the byte a VM wrote to the debug-exit port.
        signal: the signal number when ``kind`` is ``SIGNAL``.
        reason: a human-readable reason ("triple fault at rip=0x1000").
        code: the status a shell would show: ``status``, ``128 + signal``, or 125 for a crash.
    """
    kind: ExitKind
    status: int = 0
    signal: int = 0
    reason: str = ""
    code: int = 0

    @classmethod
    def from_c(cls, c: "_lib.CExit") -> "Exit":
        code = _lib.get().vmcore_exit_code(ctypes.byref(c))
        return cls(ExitKind(c.kind), c.status, c.signal, _lib.text(c.reason), code)

    @property
    def ok(self) -> bool:
        """True when the domain exited with status 0."""
        return self.kind == ExitKind.STATUS and self.status == 0


@dataclass(frozen=True)
class Stats:
    """Resource use of a domain. Fields a backend cannot measure are 0."""
    cpu_time_ns: int = 0
    memory_bytes: int = 0
    pids: int = 0
    exits: int = 0
    instructions: int = 0
    tcache_hits: int = 0
    tcache_misses: int = 0
    jit_blocks: int = 0
    net_rx_bytes: int = 0
    net_rx_packets: int = 0
    net_tx_bytes: int = 0
    net_tx_packets: int = 0

    @classmethod
    def from_c(cls, c: "_lib.CStats") -> "Stats":
        return cls(c.cpu_time_ns, c.memory_bytes, c.pids, c.exits, c.instructions,
                   c.tcache_hits, c.tcache_misses, c.jit_blocks, c.net_rx_bytes,
                   c.net_rx_packets, c.net_tx_bytes, c.net_tx_packets)


@dataclass(frozen=True)
class ProbeResult:
    """What :func:`vmcore.probe` found out about one backend."""
    backend: str
    available: bool
    flags: ProbeFlags
    reason: str
    details: str

    def __bool__(self) -> bool:
        return self.available


@dataclass(frozen=True)
class Event:
    """Base class of the events a domain delivers. ``domain`` is the Python object."""
    type: EventType
    domain: "DomainBase" = field(repr=False, compare=False)


@dataclass(frozen=True)
class StateEvent(Event):
    """The domain changed state."""
    old_state: State = State.CREATED
    new_state: State = State.CREATED


@dataclass(frozen=True)
class ConsoleEvent(Event):
    """Console output: a VM's serial port, or a container's stdout/stderr."""
    stream: Stream = Stream.CONSOLE
    data: bytes = b""


@dataclass(frozen=True)
class ExitEvent(Event):
    """The domain ended; sent once, before the final state event."""
    exit: Optional[Exit] = None


@dataclass(frozen=True)
class ErrorEvent(Event):
    """An asynchronous error that does not by itself end the domain."""
    code: int = 0
    message: str = ""


def event_from_c(ev: "_lib.CEvent", domain: "DomainBase") -> Optional[Event]:
    """Copy a C event into its Python class (None for a type this version does not know)."""
    t = ev.type
    u = ev.u
    if t == EventType.STATE:
        return StateEvent(EventType.STATE, domain, State(u.state.old_state),
                          State(u.state.new_state))
    if t == EventType.CONSOLE:
        c = u.console
        data = ctypes.string_at(c.data, c.len) if c.len else b""
        return ConsoleEvent(EventType.CONSOLE, domain, Stream(c.stream), data)
    if t == EventType.EXIT:
        return ExitEvent(EventType.EXIT, domain, Exit.from_c(u.exit))
    if t == EventType.ERROR:
        return ErrorEvent(EventType.ERROR, domain, u.error.code, _lib.text(u.error.message))
    return None
