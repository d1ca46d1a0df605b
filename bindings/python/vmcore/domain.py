"""Domains (one VM or container), their console and their events.

:class:`Domain` belongs to a blocking :class:`~vmcore.Context`: lifecycle calls return once
the operation has completed. :class:`AsyncDomain` belongs to an
:class:`~vmcore.AsyncContext`: the same calls are coroutines.

Each domain subscribes once, at creation, to every event of its C handle: console output
is buffered from the first byte (so none is lost before you start reading), the exit is
copied as it is reported, and Python-level subscribers and iterators are fed from there.
"""

from __future__ import annotations

import ctypes
import itertools
import os
from collections import deque
from typing import (TYPE_CHECKING, Any, AsyncIterator, Callable, Deque, Dict, Iterator,
                    Optional, Sequence, Tuple, Union)

from . import _callbacks, _lib
from .errors import ECANCELED, ETIMEDOUT, ClosedError, StateError, VmcoreError, make_error
from .model import (ConsoleEvent, Event, EventType, Exit, ExitEvent, ExitKind, State,
                    StateEvent, Stats, Stream, event_from_c)

if TYPE_CHECKING:  # pragma: no cover
    from .context import ContextBase

EventCallback = Callable[[Event], Any]


class _Completion:
    """The outcome of one asynchronous C operation, filled in by its callback."""
    __slots__ = ("done", "status", "exit", "keep")

    def __init__(self, keep: Any = None) -> None:
        self.done = False
        self.status = 0
        self.exit: Optional[Exit] = None
        self.keep = keep  # memory C may read until the callback (exec's argv)

    def set(self, status: int, cexit: Any = None) -> None:
        self.done = True
        self.status = status
        if cexit is not None:
            self.exit = Exit.from_c(cexit)
        self.keep = None

    def is_done(self) -> bool:
        return self.done


class Console:
    """A domain's console: write to its input, read or iterate its output.

    Output is buffered from the moment the domain is created. Iterating yields ``bytes``
    chunks (all streams) until the domain has ended and the buffer is drained; a second
    iterator shares the same buffer. :meth:`chunks` yields ``(Stream, bytes)`` pairs instead.
    At most :attr:`max_buffer` unread bytes are kept; older ones are dropped and counted in
    :attr:`dropped`.
    """

    max_buffer = 16 << 20

    def __init__(self, domain: "DomainBase") -> None:
        self._domain = domain
        self._chunks: Deque[Tuple[Stream, bytes]] = deque()
        self._size = 0
        #: Bytes discarded because nobody read them and the buffer was full.
        self.dropped = 0

    def _feed(self, stream: Stream, data: bytes) -> None:
        self._chunks.append((stream, data))
        self._size += len(data)
        while self._size > self.max_buffer and len(self._chunks) > 1:
            _, old = self._chunks.popleft()
            self._size -= len(old)
            self.dropped += len(old)

    def _ready(self) -> bool:
        return bool(self._chunks) or self._domain.ended

    def _pop(self) -> Optional[Tuple[Stream, bytes]]:
        if not self._chunks:
            return None
        item = self._chunks.popleft()
        self._size -= len(item[1])
        return item

    def write(self, data: Union[bytes, bytearray, memoryview, str]) -> None:
        """Send bytes (a ``str`` is UTF-8 encoded) to a VM's serial port or a container's
        stdin. Writing nothing does nothing; use :meth:`close_input` to send end-of-file."""
        if isinstance(data, str):
            data = data.encode()
        data = bytes(data)
        if data:
            self._domain._console_write(data)

    def close_input(self) -> None:
        """Close a container's stdin (the process reads end-of-file)."""
        self._domain._console_write(b"")

    def resize(self, rows: int, cols: int) -> None:
        """Set the window size of a container's terminal (``"process.terminal": true``):
        before :meth:`Domain.start` the initial size, later a change (the processes get
        ``SIGWINCH``). Raises :class:`~vmcore.errors.InvalidArgument` for a size outside
        1..65535, :class:`~vmcore.errors.NotSupported` for a VM (a serial console has no
        window size) or a container without a terminal, and
        :class:`~vmcore.errors.StateError` once the domain has ended."""
        if rows < 0 or cols < 0:
            rows = cols = 0  # out of range too; the library names the problem
        self._domain._console_resize(min(rows, 1 << 31), min(cols, 1 << 31))

    def read_nowait(self) -> bytes:
        """Everything buffered so far, without waiting."""
        out = b"".join(data for _, data in self._chunks)
        self._chunks.clear()
        self._size = 0
        return out

    # blocking flavour (Context)
    def chunks(self, timeout: Optional[float] = None) -> Iterator[Tuple[Stream, bytes]]:
        """Yield ``(stream, data)`` as output arrives, until the domain has ended.
        @timeout bounds each wait for the next chunk."""
        ctx = self._domain._ctx
        while True:
            self._domain._check_waitable()
            ctx._run_until(self._ready, timeout)
            item = self._pop()
            if item is None:
                return
            yield item

    def __iter__(self) -> Iterator[bytes]:
        for _, data in self.chunks():
            yield data

    def read(self, timeout: Optional[float] = None) -> bytes:
        """Wait until the domain has ended; return all output not read yet."""
        self._domain._check_waitable()
        self._domain._ctx._run_until(lambda: self._domain.ended, timeout)
        return self.read_nowait()

    # asyncio flavour (AsyncContext)
    async def achunks(self, timeout: Optional[float] = None
                      ) -> AsyncIterator[Tuple[Stream, bytes]]:
        """Async variant of :meth:`chunks`."""
        ctx = self._domain._ctx
        while True:
            self._domain._check_waitable()
            await ctx._until(self._ready, timeout)
            item = self._pop()
            if item is None:
                return
            yield item

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for _, data in self.achunks():
            yield data

    async def aread(self, timeout: Optional[float] = None) -> bytes:
        """Async variant of :meth:`read`."""
        self._domain._check_waitable()
        await self._domain._ctx._until(lambda: self._domain.ended, timeout)
        return self.read_nowait()


class EventIterator:
    """Events of one domain, in order, from the moment the iterator was created until the
    domain's final state event. Iterate with ``for`` (:class:`Domain`) or ``async for``
    (:class:`AsyncDomain`); :meth:`close` (or leaving a ``with`` block) stops listening."""

    def __init__(self, domain: "DomainBase", mask: int, timeout: Optional[float]) -> None:
        self._domain = domain
        self._queue: Deque[Event] = deque()
        self._timeout = timeout
        self._id: Optional[int] = domain.subscribe(self._queue.append, mask)

    def _ready(self) -> bool:
        return bool(self._queue) or self._domain.ended

    def _take(self) -> Optional[Event]:
        if self._queue:
            return self._queue.popleft()
        self.close()
        return None

    def close(self) -> None:
        """Stop listening. Idempotent."""
        if self._id is not None:
            self._domain.unsubscribe(self._id)
            self._id = None

    def __del__(self) -> None:
        self.close()

    def __iter__(self) -> "EventIterator":
        return self

    def __next__(self) -> Event:
        if self._id is None and not self._queue:
            raise StopIteration
        if not self._queue:
            self._domain._check_waitable()
        self._domain._ctx._run_until(self._ready, self._timeout)
        ev = self._take()
        if ev is None:
            raise StopIteration
        return ev

    def __aiter__(self) -> "EventIterator":
        return self

    async def __anext__(self) -> Event:
        if self._id is None and not self._queue:
            raise StopAsyncIteration
        if not self._queue:
            self._domain._check_waitable()
        await self._domain._ctx._until(self._ready, self._timeout)
        ev = self._take()
        if ev is None:
            raise StopAsyncIteration
        return ev

    def __enter__(self) -> "EventIterator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class DomainBase:
    """State, properties and subscriptions shared by :class:`Domain` and
    :class:`AsyncDomain`. Create domains with ``ctx.create(config)``."""

    def __init__(self, ctx: "ContextBase", handle: int) -> None:
        lib = _lib.get()
        self._ctx = ctx
        self._h: Optional[int] = handle
        self._closing = False
        self._exit: Optional[Exit] = None
        self._last_state = State.CREATED
        self._listeners: Dict[int, Tuple[int, EventCallback]] = {}
        self._listener_ids = itertools.count(1)
        self._pending: Dict[int, _Completion] = {}  # by callback token
        self._name = _lib.text(lib.vmcore_domain_name(handle))
        self._backend = _lib.text(lib.vmcore_domain_backend(handle))
        #: The console: ``write()`` input, iterate or ``read()`` output.
        self.console = Console(self)
        self._event_token = _callbacks.register(self._on_event)
        sub = lib.vmcore_domain_subscribe(handle, int(EventType.ALL), _callbacks.event_cb,
                                          self._event_token)
        if sub < 0:
            err = self._error(sub)
            _callbacks.unregister(self._event_token)
            self._ctx._domains.add(self)  # until the close callback releases it
            self._begin_close()
            raise err

    # --- properties ----------------------------------------------------------------------

    def _handle(self) -> int:
        if self._h is None or self._closing:
            raise ClosedError("domain %r is closed" % self._name)
        return self._h

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closing

    @property
    def name(self) -> str:
        """The configured name."""
        return self._name

    @property
    def backend(self) -> str:
        """The backend that runs the domain: "kvm", "emu" or "container"."""
        return self._backend

    @property
    def state(self) -> State:
        """The current lifecycle state (the last one known once closed)."""
        if self._h is not None:  # valid until its close callback has run
            self._last_state = State(_lib.get().vmcore_domain_state(self._h))
        return self._last_state

    @property
    def ended(self) -> bool:
        """True once the domain is stopped or crashed (or closed)."""
        return self._closing or self.state.final

    @property
    def exit(self) -> Optional[Exit]:
        """How the domain ended, or None while it has not."""
        if self._exit is None and self._h is not None:
            c = _lib.CExit()
            if _lib.get().vmcore_domain_exit(self._h, ctypes.byref(c)) == 0 and \
                    c.kind != ExitKind.NONE:
                self._exit = Exit.from_c(c)
        return self._exit

    @property
    def exit_code(self) -> Optional[int]:
        """The shell-style exit status (see :attr:`Exit.code`), or None while running."""
        e = self.exit
        return None if e is None else e.code

    @property
    def stats(self) -> Stats:
        """Resource use so far."""
        c = _lib.CStats(version=_lib.STATS_VERSION)
        self._check(_lib.get().vmcore_domain_stats(self._handle(), ctypes.byref(c)))
        return Stats.from_c(c)

    @property
    def last_error(self) -> str:
        """The library's detail of the last error on this domain ("" if none)."""
        if self._h is None:
            return ""
        return _lib.text(_lib.get().vmcore_domain_last_error(self._h))

    def __repr__(self) -> str:
        return "<%s %r backend=%s state=%s>" % (type(self).__name__, self._name,
                                                self._backend, self.state)

    # --- events --------------------------------------------------------------------------

    def subscribe(self, callback: EventCallback, mask: int = EventType.ALL) -> int:
        """Call @callback(event) for every event whose type is in @mask; returns an id for
        :meth:`unsubscribe`. Callbacks run on the loop thread while the context's loop runs.
        An exception they raise is reported (``ctx.on_callback_error``) and the loop goes on.
        """
        sid = next(self._listener_ids)
        self._listeners[sid] = (int(mask), callback)
        return sid

    def unsubscribe(self, sid: int) -> None:
        """Cancel a subscription; safe inside a callback. Unknown ids are ignored."""
        self._listeners.pop(sid, None)

    def events(self, mask: int = EventType.ALL, *, timeout: Optional[float] = None
               ) -> EventIterator:
        """An iterator (``for`` / ``async for``) over events from now until the final state
        event. @timeout bounds each wait for the next event."""
        return EventIterator(self, mask, timeout)

    def _on_event(self, cev: "_lib.CEvent") -> None:
        ev = event_from_c(cev, self)
        if ev is None:
            return
        if isinstance(ev, ConsoleEvent):
            self.console._feed(ev.stream, ev.data)
        elif isinstance(ev, ExitEvent):
            self._exit = ev.exit
        elif isinstance(ev, StateEvent):
            self._last_state = ev.new_state
        for mask, callback in list(self._listeners.values()):
            if ev.type & mask:
                try:
                    callback(ev)
                except Exception as e:
                    self._ctx._report(e)

    # --- operations ----------------------------------------------------------------------

    def _error(self, rc: int) -> VmcoreError:
        return make_error(rc, self.last_error)

    def _check(self, rc: int) -> int:
        if rc < 0:
            raise self._error(rc)
        return rc

    def _call_async(self, fn: Callable[..., int], args: Sequence[Any], trampoline: Any,
                    keep: Any = None) -> _Completion:
        """Call fn(handle, *args, trampoline, token) and track the completion until its
        callback runs, or until the domain is closed (then it ends as canceled: the core
        does not call back an exec pending at close)."""
        handle = self._handle()
        c = _Completion(keep)

        def complete(status: int, cexit: Any = None) -> None:
            self._pending.pop(token, None)
            c.set(status, cexit)

        token = _callbacks.register(complete)
        rc = fn(handle, *args, trampoline, token)
        if rc < 0:
            _callbacks.unregister(token)
            raise self._error(rc)
        self._pending[token] = c
        self._ctx._poke()
        return c

    def _begin(self, fn: Callable[..., int], *args: Any) -> _Completion:
        """Start an asynchronous C operation whose callback is a vmcore_domain_cb."""
        return self._call_async(fn, args, _callbacks.domain_cb)

    def _finish(self, c: _Completion, *ok: int) -> None:
        if c.done and c.status < 0 and c.status not in ok:
            raise self._error(c.status)

    def _begin_exec(self, argv: Sequence[Union[str, bytes]]) -> _Completion:
        if not argv:
            raise ValueError("exec needs a non-empty argv")
        args = [a if isinstance(a, bytes) else str(a).encode() for a in argv]
        cargv = (ctypes.c_char_p * (len(args) + 1))(*args, None)
        return self._call_async(_lib.get().vmcore_domain_exec, (cargv,), _callbacks.exec_cb,
                                keep=cargv)

    def _begin_shutdown(self, timeout: float) -> _Completion:
        if timeout < 0:
            raise ValueError("timeout must be >= 0")
        return self._begin(_lib.get().vmcore_domain_shutdown,
                           ctypes.c_uint64(int(timeout * 1000)))

    def _check_waitable(self) -> None:
        """Waiting for the end of a domain nobody started would block forever."""
        if self.state == State.CREATED and not self._closing:
            raise StateError("domain %r was never started" % self._name)

    def _console_write(self, data: bytes) -> None:
        self._check(_lib.get().vmcore_domain_console_write(self._handle(), data, len(data)))
        self._ctx._poke()

    def _console_resize(self, rows: int, cols: int) -> None:
        self._check(_lib.get().vmcore_domain_resize_console(self._handle(), rows, cols))

    def _begin_close(self) -> None:
        if self._closing or self._h is None:
            return
        self._closing = True
        token = _callbacks.register(self._on_closed)
        _lib.get().vmcore_domain_close(self._h, _callbacks.close_cb, token)
        self._ctx._poke()

    def _on_closed(self) -> None:
        # Events stop at close (libuv semantics), but the handle is valid until this
        # callback returns: keep how the domain ended.
        self.state
        self.exit
        _callbacks.unregister(self._event_token)
        for token, c in list(self._pending.items()):
            _callbacks.unregister(token)
            c.set(ECANCELED)
        self._pending.clear()
        self._listeners.clear()
        self._h = None
        self._ctx._forget(self)


class Domain(DomainBase):
    """A VM or container in a blocking :class:`~vmcore.Context`.

    Lifecycle calls block until the operation has completed (they run the context's loop
    meanwhile, so events and callbacks are delivered); pass ``wait=False`` to only begin it,
    which is also the only form allowed inside an event callback.
    """

    def _do(self, c: _Completion, wait: bool, *ok: int) -> None:
        if wait:
            self._ctx._run_until(c.is_done)
            self._finish(c, *ok)

    def start(self, *, wait: bool = True) -> None:
        """Start the domain; returns once it runs. Raises on failure to start."""
        if wait:
            self._ctx._check_can_block()
        self._do(self._begin(_lib.get().vmcore_domain_start), wait)

    def pause(self, *, wait: bool = True) -> None:
        """Freeze a running domain (vCPUs stopped, or the cgroup frozen)."""
        if wait:
            self._ctx._check_can_block()
        self._do(self._begin(_lib.get().vmcore_domain_pause), wait)

    def resume(self, *, wait: bool = True) -> None:
        """Continue a paused domain."""
        if wait:
            self._ctx._check_can_block()
        self._do(self._begin(_lib.get().vmcore_domain_resume), wait)

    def shutdown(self, timeout: float = 10.0, *, wait: bool = True) -> Optional[Exit]:
        """Ask the domain to end (SIGTERM to a container's init), kill it after @timeout
        seconds; returns its exit (None with ``wait=False``)."""
        if wait:
            self._ctx._check_can_block()
        c = self._begin_shutdown(timeout)
        self._do(c, wait, ETIMEDOUT)
        return self.exit if wait else None

    def save(self, path: Union[str, "os.PathLike[str]"], stop: bool = False, *,
             wait: bool = True) -> None:
        """Write the VM's whole state to @path (doc/snapshot.md): the vCPUs pause while it
        is written, then run on, or with @stop the domain ends (exit status 0).
        :meth:`Context.restore` continues it. emu without virtio devices only, so far
        (:class:`vmcore.NotSupported` otherwise, naming what is missing)."""
        if wait:
            self._ctx._check_can_block()
        self._do(self._begin(_lib.get().vmcore_domain_save, os.fsencode(path),
                             ctypes.c_uint(1 if stop else 0)), wait)

    def kill(self, *, wait: bool = True) -> Optional[Exit]:
        """End the domain at once; returns its exit (None with ``wait=False``)."""
        if wait:
            self._ctx._check_can_block()
        self._do(self._begin(_lib.get().vmcore_domain_kill), wait)
        return self.exit if wait else None

    def wait(self, timeout: Optional[float] = None) -> Exit:
        """Wait until the domain has ended; returns how. Raises :class:`vmcore.Timeout`
        after @timeout seconds (the domain keeps running)."""
        self._check_waitable()
        self._ctx._run_until(lambda: self.ended, timeout)
        return self.exit or Exit(ExitKind.NONE, reason="closed before it ended", code=125)

    def exec(self, argv: Sequence[Union[str, bytes]]) -> Exit:
        """Run another process inside a running container; returns its exit. Its output
        arrives on the console."""
        self._ctx._check_can_block()
        c = self._begin_exec(argv)
        self._ctx._run_until(c.is_done)
        self._finish(c)
        assert c.exit is not None
        return c.exit

    def close(self) -> None:
        """Kill the domain if it runs, release everything it holds, and wait until that is
        done. Idempotent; the domain's properties keep their last values."""
        if self._h is None:
            return
        self._begin_close()
        self._ctx._run_until(lambda: self._h is None)

    def __enter__(self) -> "Domain":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncDomain(DomainBase):
    """A VM or container in an :class:`~vmcore.AsyncContext`: lifecycle calls are
    coroutines; ``async for`` iterates :attr:`console` and :meth:`events`."""

    async def _do(self, c: _Completion, *ok: int) -> None:
        await self._ctx._until(c.is_done)
        self._finish(c, *ok)

    async def start(self) -> None:
        """Start the domain; returns once it runs."""
        await self._do(self._begin(_lib.get().vmcore_domain_start))

    async def pause(self) -> None:
        """Freeze a running domain."""
        await self._do(self._begin(_lib.get().vmcore_domain_pause))

    async def resume(self) -> None:
        """Continue a paused domain."""
        await self._do(self._begin(_lib.get().vmcore_domain_resume))

    async def shutdown(self, timeout: float = 10.0) -> Optional[Exit]:
        """Ask the domain to end, kill it after @timeout seconds; returns its exit."""
        await self._do(self._begin_shutdown(timeout), ETIMEDOUT)
        return self.exit

    async def save(self, path: Union[str, "os.PathLike[str]"], stop: bool = False) -> None:
        """Write the VM's whole state to @path; see :meth:`Domain.save`."""
        await self._do(self._begin(_lib.get().vmcore_domain_save, os.fsencode(path),
                                   ctypes.c_uint(1 if stop else 0)))

    async def kill(self) -> Optional[Exit]:
        """End the domain at once; returns its exit."""
        await self._do(self._begin(_lib.get().vmcore_domain_kill))
        return self.exit

    async def wait(self, timeout: Optional[float] = None) -> Exit:
        """Wait until the domain has ended; returns how."""
        self._check_waitable()
        await self._ctx._until(lambda: self.ended, timeout)
        return self.exit or Exit(ExitKind.NONE, reason="closed before it ended", code=125)

    async def exec(self, argv: Sequence[Union[str, bytes]]) -> Exit:
        """Run another process inside a running container; returns its exit."""
        c = self._begin_exec(argv)
        await self._do(c)
        assert c.exit is not None
        return c.exit

    async def close(self) -> None:
        """Kill the domain if it runs and release everything it holds. Idempotent."""
        if self._h is None:
            return
        self._begin_close()
        await self._ctx._until(lambda: self._h is None)

    async def __aenter__(self) -> "AsyncDomain":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


__all__ = ["Console", "Domain", "AsyncDomain", "DomainBase", "EventIterator"]
