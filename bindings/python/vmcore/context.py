"""Contexts: a libvmcore instance and the event loop that drives it.

:class:`Context` is for ordinary blocking code: its calls run the library's libuv loop
until what they wait for has happened. :class:`AsyncContext` is for asyncio: the asyncio
loop watches the library's backend descriptor (``add_reader``) and its next timer
(``call_later``), and runs one non-blocking round of the library's loop when either fires.
Neither uses a thread or busy polling.

A context, its domains and all their callbacks belong to the thread that created them.
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import json
import os
import select
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from typing import Any, Callable, List, Optional, Set, Tuple, Type, Union

from . import _callbacks, _lib
from .domain import AsyncDomain, Domain, DomainBase
from .errors import ClosedError, Timeout, VmcoreError, make_error

#: What :meth:`Context.create` accepts as a configuration.
ConfigLike = Union[Mapping, str, bytes, "os.PathLike[str]"]

_JSON_REJECT_DUPLICATES = 0x1  # as the library parses JSON texts and files

_open_contexts: "weakref.WeakSet[ContextBase]" = weakref.WeakSet()


class ContextBase:
    """What both context flavours share: the handle, domain creation and closing."""

    _domain_class: Type[DomainBase] = DomainBase

    def __init__(self) -> None:
        lib = _lib.get()
        handle = ctypes.c_void_p()
        rc = lib.vmcore_ctx_new(ctypes.byref(handle), None)
        if rc < 0:
            raise make_error(rc, "vmcore_ctx_new failed")
        self._h: Optional[int] = handle.value
        self._domains: Set[DomainBase] = set()
        self._in_run = False
        self._thread = threading.get_ident()
        self._poller: Optional["select.poll"] = None
        #: Called with the exception when a user callback (an event subscriber) raises.
        #: None reports it the default way: sys.excepthook, or asyncio's exception handler.
        self.on_callback_error: Optional[Callable[[BaseException], None]] = None
        _open_contexts.add(self)

    # --- handle --------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the context has been closed."""
        return self._h is None

    def _handle(self) -> int:
        if self._h is None:
            raise ClosedError("the vmcore context is closed")
        return self._h

    @property
    def backend_fd(self) -> int:
        """The descriptor a foreign event loop polls for readability."""
        return self._check(_lib.get().vmcore_ctx_backend_fd(self._handle()))

    @property
    def backend_timeout(self) -> int:
        """Milliseconds a foreign loop may sleep before running the library's loop; -1: none."""
        t = _lib.get().vmcore_ctx_backend_timeout(self._handle())
        return self._check(t) if t < -1 else t

    @property
    def domains(self) -> List[DomainBase]:
        """The domains of this context that are not closed yet."""
        return list(self._domains)

    def _check(self, rc: int) -> int:
        if rc < 0:
            raise self._error(rc)
        return rc

    def _error(self, rc: int) -> VmcoreError:
        lib = _lib.get()
        h = self._h
        message = _lib.text(lib.vmcore_ctx_last_error(h)) if h else ""
        path = _lib.text(lib.vmcore_ctx_last_error_path(h)) if h else ""
        return make_error(rc, message, path or None)

    # --- running the library's loop ------------------------------------------------------

    def _run_nowait(self) -> int:
        """One non-blocking round of the library's loop (callbacks run inside)."""
        if threading.get_ident() != self._thread:
            raise RuntimeError("a vmcore context must be used by the thread that created it")
        if self._in_run:
            raise RuntimeError("libvmcore's loop is already running: a blocking vmcore call "
                               "cannot be made from inside a vmcore callback")
        self._in_run = True
        try:
            rc = _lib.get().vmcore_ctx_run(self._handle(), _lib.RUN_NOWAIT)
        finally:
            self._in_run = False
        _callbacks.reraise_deferred()
        return self._check(rc)

    def _check_can_block(self) -> None:
        if self._in_run:
            raise RuntimeError("a blocking vmcore call cannot be made from inside a vmcore "
                               "callback (pass wait=False)")

    def _report(self, exc: BaseException) -> None:
        """Report an exception a user callback raised; the loop keeps running."""
        handler = self.on_callback_error
        try:
            if handler is not None:
                handler(exc)
            else:
                self._default_report(exc)
        except Exception:
            sys.excepthook(*sys.exc_info())

    def _default_report(self, exc: BaseException) -> None:
        sys.excepthook(type(exc), exc, exc.__traceback__)

    def _poke(self) -> None:
        """Called after an operation that may have given the library's loop new work."""

    def _poll(self, deadline: Optional[float]) -> bool:
        """Sleep until the library's loop has work (or its next timer is due); False if
        @deadline passed first."""
        t = self.backend_timeout
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            left_ms = int(left * 1000) + 1
            t = left_ms if t < 0 else min(t, left_ms)
        if self._poller is None:
            self._poller = select.poll()
            self._poller.register(self.backend_fd, select.POLLIN)
        # poll() on the loop's epoll descriptor rather than a blocking uv_run(): a signal
        # (Ctrl-C) interrupts it and its handler's exception propagates.
        self._poller.poll(None if t < 0 else t)
        return True

    def _block_until(self, pred: Callable[[], Any], timeout: Optional[float] = None) -> None:
        """Run the library's loop, sleeping in between, until pred() is true; Timeout
        after @timeout seconds."""
        if pred():
            return
        self._check_can_block()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._run_nowait()
            if pred():
                return
            if not self._poll(deadline):
                raise Timeout("timed out after %gs" % timeout)

    def _run_until(self, pred: Callable[[], Any], timeout: Optional[float] = None) -> None:
        raise TypeError("this is an asyncio context: await the coroutine instead")

    async def _until(self, pred: Callable[[], Any], timeout: Optional[float] = None) -> None:
        raise TypeError("this is a blocking context: use vmcore.AsyncContext with asyncio")

    # --- domains -------------------------------------------------------------------------

    def create(self, config: ConfigLike, *, base_dir: Optional[str] = None) -> Any:
        """Create a domain (in the ``created`` state) from a configuration.

        Args:
            config: a dict; a JSON text (``str`` starting with ``{``, or ``bytes``); or the
                path of a JSON file (``str`` or ``os.PathLike``).
            base_dir: the folder relative paths in a dict or JSON text resolve against
                (default: the current directory). A file's paths resolve against its folder.

        Returns:
            A :class:`Domain` (or :class:`AsyncDomain` for an :class:`AsyncContext`).

        Raises:
            ConfigError: a schema violation; ``.path`` names the JSON value.
            ParseError: malformed JSON.  NotFound: a missing file.
            BackendUnavailable: the backend cannot run here; ``.reason`` says why.
            ImageError, LimitError, VmcoreError: other failures the library reports.
        """
        lib = _lib.get()
        h = self._handle()
        out = ctypes.c_void_p()
        if isinstance(config, Mapping):
            text: Optional[bytes] = json.dumps(config, allow_nan=False).encode()
        elif isinstance(config, (bytes, bytearray)):
            text = bytes(config)
        elif isinstance(config, str) and config.lstrip().startswith("{"):
            text = config.encode()
        elif isinstance(config, (str, os.PathLike)):
            if base_dir is not None:
                raise TypeError("base_dir applies to a dict or JSON text; a config file's "
                                "paths resolve against its own folder")
            text = None
            rc = lib.vmcore_domain_new_file(ctypes.byref(out), h, os.fsencode(config))
        else:
            raise TypeError("config must be a dict, a JSON text or a path, not %s"
                            % type(config).__name__)
        if text is not None:
            if base_dir is None:
                rc = lib.vmcore_domain_new_json(ctypes.byref(out), h, text)
            else:
                rc = self._new_with_base_dir(out, text, os.fsencode(base_dir))
        if rc < 0:
            raise self._error(rc)
        return self._adopt(out.value)

    def restore(self, path: Union[str, "os.PathLike[str]"],
                overrides: Optional[Mapping[str, Any]] = None) -> Any:
        """Create a domain (in the ``created`` state) from a snapshot ``Domain.save()``
        wrote (doc/snapshot.md); starting it continues the guest where it was saved.

        Args:
            path: the snapshot file.
            overrides: host-side changes only: ``{"name": ...}`` (``"backend"`` may only
                name the snapshot's own). Any other key raises :class:`ConfigError` naming
                it (``overrides.memory_mib``).

        Raises:
            ImageError: not a snapshot, another format version, truncated, corrupt (a CRC
                mismatch), or a state that does not fit the configuration; the message names
                the section and file offset.
            NotFound: no such file.  ConfigError, ParseError: bad overrides.
            NotSupported: the snapshot's backend cannot restore yet.
        """
        out = ctypes.c_void_p()
        ov = json.dumps(dict(overrides)).encode() if overrides is not None else None
        rc = _lib.get().vmcore_domain_new_restore(ctypes.byref(out), self._handle(),
                                                  os.fsencode(path), ov)
        if rc < 0:
            raise self._error(rc)
        return self._adopt(out.value)

    def _adopt(self, handle: int) -> Any:
        """Wrap a domain handle this context's library call just created."""
        domain = self._domain_class(self, handle)
        self._domains.add(domain)
        return domain

    def _new_with_base_dir(self, out: ctypes.c_void_p, text: bytes, base_dir: bytes) -> int:
        lib = _lib.get()
        jansson = _lib.jansson()
        root = jansson.json_loadb(text, len(text), _JSON_REJECT_DUPLICATES, None)
        if not root:  # let the library report the parse error with line and column
            return lib.vmcore_domain_new_json(ctypes.byref(out), self._handle(), text)
        try:
            return lib.vmcore_domain_new_jansson(ctypes.byref(out), self._handle(), root,
                                                 base_dir)
        finally:
            jansson.json_delete(root)  # fresh object, refcount 1: what json_decref would do

    def _detach(self) -> None:
        """Stop watching the library's loop from a foreign one (asyncio)."""

    def __del__(self) -> None:
        # Unreachable with domains open: each one's callback token keeps the context alive.
        if getattr(self, "_h", None) is not None and not self._domains:
            try:
                self._detach()
                self._free()
            except Exception:
                pass

    def _forget(self, domain: DomainBase) -> None:
        self._domains.discard(domain)

    def _begin_close(self) -> None:
        for d in list(self._domains):
            d._begin_close()

    def _free(self) -> None:
        h = self._h
        if h is None:
            return
        rc = _lib.get().vmcore_ctx_free(h)
        if rc < 0:
            raise self._error(rc)
        self._h = None
        self._poller = None
        _open_contexts.discard(self)

    def __repr__(self) -> str:
        state = "closed" if self._h is None else "%d domains" % len(self._domains)
        return "<%s %s>" % (type(self).__name__, state)


class Context(ContextBase):
    """A libvmcore context for blocking code.

    Use it as a context manager: leaving the block closes every domain (killing those that
    still run) and frees the context::

        with vmcore.Context() as ctx:
            d = ctx.create({"backend": "container", ...})
            d.start()
            print(d.console.read())
    """

    _domain_class = Domain

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Close every domain, wait for their resources to be released, free the context.
        Idempotent."""
        if self._h is None:
            return
        self._begin_close()
        self._run_until(lambda: not self._domains)
        self._free()

    def run(self, timeout: Optional[float] = None) -> None:
        """Run the loop until nothing is left to do, or for at most @timeout seconds."""
        self._check_can_block()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            alive = self._run_nowait()
            if not alive:
                return
            if not self._poll(deadline):
                return

    def run_once(self) -> bool:
        """Handle what is ready now, without blocking; True if more work is pending."""
        return bool(self._run_nowait())

    def _run_until(self, pred: Callable[[], Any], timeout: Optional[float] = None) -> None:
        self._block_until(pred, timeout)


class AsyncContext(ContextBase):
    """A libvmcore context driven by the running asyncio loop.

    ::

        async with vmcore.AsyncContext() as ctx:
            d = ctx.create(config)
            await d.start()
            async for chunk in d.console:
                ...
            exit = await d.wait()

    The asyncio loop is attached on entering ``async with`` (or on the first await).
    """

    _domain_class = AsyncDomain

    def __init__(self) -> None:
        super().__init__()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._reader_fd = -1
        self._timer: Optional[asyncio.TimerHandle] = None
        self._kick_scheduled = False
        self._waiters: List[Tuple[Callable[[], Any], "asyncio.Future[None]"]] = []

    async def __aenter__(self) -> "AsyncContext":
        self._attach()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def _attach(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._reader_fd = self.backend_fd
            loop.add_reader(self._reader_fd, self._kick)
            self._loop = loop
            self._poke()
        elif self._loop is not loop:
            raise RuntimeError("this vmcore.AsyncContext is attached to another event loop")
        return loop

    def _detach(self) -> None:
        if self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._loop.is_closed():
            self._loop.remove_reader(self._reader_fd)
        self._loop = None

    def _poke(self) -> None:
        if self._loop is not None and not self._kick_scheduled:
            self._kick_scheduled = True
            self._loop.call_soon(self._kick)

    def _kick(self) -> None:
        """Run one non-blocking round of the library's loop, wake the coroutines whose
        condition now holds, and arm a timer for the library's next deadline."""
        self._kick_scheduled = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._h is None or self._loop is None:
            return
        try:
            self._run_nowait()
        finally:
            self._wake_waiters()
            if self._h is not None and self._loop is not None:
                t = self.backend_timeout
                if t >= 0:
                    self._timer = self._loop.call_later(t / 1000.0, self._kick)

    def _wake_waiters(self) -> None:
        for pred, fut in list(self._waiters):
            if fut.done():
                continue
            try:
                if pred():
                    fut.set_result(None)
            except Exception as e:
                fut.set_exception(e)

    async def _until(self, pred: Callable[[], Any], timeout: Optional[float] = None) -> None:
        loop = self._attach()
        if pred():
            return
        fut: "asyncio.Future[None]" = loop.create_future()
        waiter = (pred, fut)
        self._waiters.append(waiter)
        self._poke()
        try:
            if timeout is None:
                await fut
            else:
                try:
                    await asyncio.wait_for(fut, timeout)
                except asyncio.TimeoutError:
                    raise Timeout("timed out after %gs" % timeout) from None
        finally:
            self._waiters.remove(waiter)

    def _default_report(self, exc: BaseException) -> None:
        if self._loop is not None:
            self._loop.call_exception_handler({
                "message": "exception in a vmcore event callback",
                "exception": exc,
                "context": self,
            })
        else:
            super()._default_report(exc)

    async def aclose(self) -> None:
        """Close every domain, wait until they are released, detach from asyncio and free
        the context. Idempotent."""
        if self._h is None:
            return
        self._begin_close()
        await self._until(lambda: not self._domains)
        self._detach()
        self._free()


@atexit.register
def _close_open_contexts() -> None:
    """At interpreter exit, close what the program left open so no container process or
    VM thread outlives it. An asyncio context is detached and driven here directly."""
    for ctx in list(_open_contexts):
        if ctx._in_run or ctx._h is None or ctx._thread != threading.get_ident():
            continue
        try:
            ctx._detach()
            ctx._begin_close()
            ctx._block_until(lambda: not ctx._domains)
            ctx._free()
        except BaseException:
            pass
