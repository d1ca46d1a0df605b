"""Binding mechanics (lifecycle calls, events, console, callbacks, asyncio, leaks) on
domains run by the scripted backend of tests/python/shim/scripted.c, whose worker thread
reports from another thread the way a vCPU thread or a container's reaper does."""

import asyncio
import sys

import pytest

import vmcore
from vmcore import _callbacks, errors
from vmcore.model import EventType, ExitKind, State, Stream

from conftest import count_fds, count_threads

pytestmark = pytest.mark.scripted


# --- blocking API ------------------------------------------------------------------------

def test_run_to_exit_events_and_console(ctx, scripted):
    d = scripted(ctx, "exit-42")
    assert d.state == State.CREATED and d.exit is None and d.backend == "scripted"
    seen = []
    d.subscribe(seen.append)
    d.start()
    exit = d.wait()
    assert (exit.kind, exit.status, exit.code, exit.reason) == (ExitKind.STATUS, 42, 42, "exited")
    assert d.exit_code == 42 and d.state == State.STOPPED and d.ended
    assert list(d.console.chunks()) == [(Stream.STDOUT, b"hello\n"), (Stream.STDERR, b"oops\n")]

    states = [(e.old_state, e.new_state) for e in seen if isinstance(e, vmcore.StateEvent)]
    assert states[0][0] == State.CREATED
    assert states[-1][1] == State.STOPPED
    assert all(a[1] == b[0] for a, b in zip(states, states[1:]))  # a connected chain
    exits = [e for e in seen if isinstance(e, vmcore.ExitEvent)]
    assert len(exits) == 1 and exits[0].exit == exit
    assert seen.index(exits[0]) < len(seen) - 1  # exit comes before the final state event
    assert all(e.domain is d for e in seen)


def test_event_iterator_ends_after_the_final_state(ctx, scripted):
    d = scripted(ctx, "exit-0")
    events = d.events()
    d.start()
    got = list(events)
    assert isinstance(got[-1], vmcore.StateEvent) and got[-1].new_state == State.STOPPED
    assert b"".join(e.data for e in got if isinstance(e, vmcore.ConsoleEvent)) == b"hello\noops\n"
    assert list(events) == []  # exhausted and unsubscribed
    assert not d._listeners


def test_event_mask_filters(ctx, scripted):
    d = scripted(ctx, "exit-1")
    with d.events(EventType.EXIT | EventType.ERROR) as events:
        d.start()
        got = list(events)
    assert [type(e) for e in got] == [vmcore.ExitEvent]


def test_console_iteration_yields_all_output_then_stops(ctx, scripted):
    d = scripted(ctx, "exit-0")
    d.start()
    assert b"".join(d.console) == b"hello\noops\n"
    assert d.console.read() == b""


def test_console_input_is_echoed_and_eof_ends_it(ctx, scripted):
    d = scripted(ctx, "run")
    d.start()
    d.console.write("ping")
    assert next(iter(d.console)) == b"ping"
    d.console.write(b"")  # nothing to send: a no-op, not end of input
    assert d.state == State.RUNNING
    d.console.close_input()
    assert d.wait().status == 7


def test_shutdown_and_kill(ctx, scripted):
    d = scripted(ctx, "run")
    d.start()
    exit = d.shutdown(timeout=30)
    assert (exit.kind, exit.status, exit.reason) == (ExitKind.STATUS, 0, "shut down")

    d = scripted(ctx, "run")
    d.start()
    exit = d.kill()
    assert (exit.kind, exit.signal, exit.code) == (ExitKind.SIGNAL, 9, 137)
    with pytest.raises(vmcore.StateError):
        d.kill()


def test_shutdown_that_is_ignored_ends_in_a_kill(ctx, scripted):
    d = scripted(ctx, "ignore-shutdown")
    d.start()
    exit = d.shutdown(timeout=0.01)
    assert (exit.kind, exit.signal) == (ExitKind.SIGNAL, 9)


def test_crash(ctx, scripted):
    d = scripted(ctx, "crash")
    d.start()
    exit = d.wait()
    assert (exit.kind, exit.reason, exit.code) == (ExitKind.CRASH, "triple fault", 125)
    assert d.state == State.CRASHED
    assert d.console.read() == b"hello\n"


def test_failed_start_raises_the_backend_error(ctx, scripted):
    d = scripted(ctx, "fail-start")
    with pytest.raises(vmcore.SyscallError) as e:
        d.start()
    assert "scripted start failure" in e.value.message
    assert d.ended


def test_async_error_event(ctx, scripted):
    d = scripted(ctx, "error")
    events = d.events(EventType.ERROR)
    d.start()
    (ev,) = list(events)
    assert (ev.code, ev.message) == (errors.EIO, "scripted device failure")
    assert d.wait().ok


def test_pause_resume_stats_and_state_errors(ctx, scripted):
    d = scripted(ctx, "run")
    with pytest.raises(vmcore.StateError):
        d.wait()  # never started: would wait forever
    with pytest.raises(vmcore.StateError):
        d.pause()
    d.start()
    with pytest.raises(vmcore.StateError) as e:
        d.start()
    assert e.value.message  # the domain's own detail
    d.pause()
    assert d.state == State.PAUSED
    d.resume()
    assert d.state == State.RUNNING
    stats = d.stats
    assert (stats.pids, stats.exits) == (1, 3)
    d.kill()


def test_wait_timeout_leaves_the_domain_running(ctx, scripted):
    d = scripted(ctx, "run")
    d.start()
    with pytest.raises(vmcore.Timeout):
        d.wait(timeout=0.01)
    assert d.state == State.RUNNING
    d.console.close_input()
    assert d.wait().status == 7


def test_close_kills_and_keeps_the_last_values(ctx, scripted):
    d = scripted(ctx, "run")
    d.start()
    d.close()
    d.close()  # idempotent
    assert d.closed and d.ended
    assert d.name == "run" and d.backend == "scripted"
    assert d.state.final
    with pytest.raises(vmcore.ClosedError):
        d.start()
    with pytest.raises(vmcore.ClosedError):
        d.console.write("x")
    assert not ctx.domains


def test_context_close_closes_running_domains(scripted):
    before = _callbacks.pending()
    with vmcore.Context() as c:
        domains = [scripted(c, "run") for _ in range(3)]
        for d in domains:
            d.start()
    assert c.closed and all(d.closed for d in domains)
    assert _callbacks.pending() == before


def test_exception_in_a_callback_is_reported_and_the_loop_goes_on(ctx, scripted):
    reported, seen = [], []
    ctx.on_callback_error = reported.append

    def bad(event):
        raise RuntimeError("boom")

    d = scripted(ctx, "exit-3")
    d.subscribe(bad)
    d.subscribe(seen.append)
    d.start()
    assert d.wait().status == 3
    assert reported and all(str(e) == "boom" for e in reported)
    assert len(reported) == len(seen)  # every event reached both subscribers


def test_default_report_goes_to_sys_excepthook(ctx, scripted, monkeypatch):
    hooked = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc_info: hooked.append(exc_info[1]))
    d = scripted(ctx, "exit-0")
    d.subscribe(lambda ev: 1 / 0, EventType.EXIT)
    d.start()
    d.wait()
    assert len(hooked) == 1 and isinstance(hooked[0], ZeroDivisionError)


def test_blocking_call_inside_a_callback_is_refused_nonblocking_is_fine(ctx, scripted):
    reported = []
    ctx.on_callback_error = reported.append
    d = scripted(ctx, "run")

    def on_console(ev):
        d.kill()  # would re-enter the loop: refused with a clear error

    def on_console_ok(ev):
        d.kill(wait=False)

    d.subscribe(on_console, EventType.CONSOLE)
    d.subscribe(on_console_ok, EventType.CONSOLE)
    d.start()
    d.console.write("x")
    assert d.wait().signal == 9
    assert len(reported) == 1 and isinstance(reported[0], RuntimeError)
    assert "inside a vmcore callback" in str(reported[0])


def test_keyboard_interrupt_in_a_callback_reaches_the_caller(ctx, scripted):
    d = scripted(ctx, "run")

    def interrupt(ev):
        raise KeyboardInterrupt

    d.start()
    sid = d.subscribe(interrupt, EventType.EXIT)
    d.console.close_input()
    with pytest.raises(KeyboardInterrupt):
        d.wait()
    d.unsubscribe(sid)
    assert d.wait().status == 7  # the loop is intact


def test_unsubscribe_inside_a_callback(ctx, scripted):
    d = scripted(ctx, "exit-0")
    seen = []

    def once(ev):
        seen.append(ev)
        d.unsubscribe(sid)

    sid = d.subscribe(once)
    d.start()
    d.wait()
    assert len(seen) == 1


def test_many_create_start_close_cycles_leak_nothing(scripted):
    def cycle():
        with vmcore.Context() as c:
            for script in ("exit-0", "run", "fail-start"):
                d = scripted(c, script)
                try:
                    d.start()
                except vmcore.SyscallError:
                    pass
                d.close()
            d = scripted(c, "run")  # left running: the context's close ends it
            d.start()

    cycle()
    fds, threads, pending = count_fds(), count_threads(), _callbacks.pending()
    for _ in range(100):
        cycle()
    assert (count_fds(), count_threads(), _callbacks.pending()) == (fds, threads, pending)


# --- asyncio -----------------------------------------------------------------------------

@pytest.fixture
def arun(scripted):
    """Run a coroutine taking (ctx, make) in a fresh AsyncContext; check nothing is left."""
    def run(coro_fn):
        before = _callbacks.pending()

        async def main():
            async with vmcore.AsyncContext() as c:
                result = await coro_fn(c, lambda script: scripted(c, script))
            assert c.closed
            return result

        result = asyncio.run(main())
        assert _callbacks.pending() == before
        return result
    return run


def test_async_lifecycle_console_and_events(arun):
    async def body(c, make):
        d = make("exit-5")
        events = d.events()
        await d.start()
        chunks = [chunk async for chunk in d.console]
        got = [ev async for ev in events]
        exit = await d.wait()
        return chunks, got, exit

    chunks, got, exit = arun(body)
    assert b"".join(chunks) == b"hello\noops\n"
    assert got[-1].new_state == State.STOPPED
    assert exit.status == 5


def test_async_shutdown_kill_and_echo(arun):
    async def body(c, make):
        a, b, e = make("run"), make("run"), make("run")
        await asyncio.gather(a.start(), b.start(), e.start())
        e.console.write("hi")
        echoed = await e.console.achunks().__anext__()
        e.console.close_input()
        return await asyncio.gather(a.shutdown(30), b.kill(), e.wait()), echoed

    (sa, sb, se), echoed = arun(body)
    assert (sa.status, sb.signal, se.status) == (0, 9, 7)
    assert echoed == (Stream.STDOUT, b"hi")


def test_async_failures_raise(arun):
    async def body(c, make):
        d = make("fail-start")
        with pytest.raises(vmcore.SyscallError):
            await d.start()
        r = make("run")
        with pytest.raises(vmcore.StateError):
            await r.wait()
        await r.start()
        with pytest.raises(vmcore.Timeout):
            await r.wait(timeout=0.01)
        with pytest.raises(TypeError):
            list(r.console)  # blocking iteration on an asyncio domain
        return True

    assert arun(body)


def test_async_idle_domain_arms_no_timer(arun):
    """No busy polling: while a domain runs quietly, the asyncio loop only watches the
    backend descriptor; no timer is armed and no callback is scheduled."""
    async def body(c, make):
        d = make("run")
        await d.start()
        await asyncio.sleep(0)
        c._kick()  # settle: one round with nothing ready
        idle = (c.backend_timeout, c._timer, c._kick_scheduled)
        await d.kill()
        return idle

    assert arun(body) == (-1, None, False)


def test_async_callback_exception_goes_to_the_loop_handler(scripted):
    caught = []

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda loop, context:
                                                         caught.append(context["exception"]))
        async with vmcore.AsyncContext() as c:
            d = scripted(c, "exit-0")
            d.subscribe(lambda ev: 1 / 0, EventType.EXIT)
            await d.start()
            return await d.wait()

    assert asyncio.run(main()).ok
    assert len(caught) == 1 and isinstance(caught[0], ZeroDivisionError)


def test_async_context_close_kills_running_domains(arun):
    async def body(c, make):
        ds = [make("run") for _ in range(3)]
        await asyncio.gather(*(d.start() for d in ds))
        return ds

    ds = arun(body)
    assert all(d.closed and d.exit.signal == 9 for d in ds)


def test_reading_a_domain_that_never_started_is_refused(ctx, scripted):
    d = scripted(ctx, "run")
    with pytest.raises(vmcore.StateError):
        list(d.console)
    with pytest.raises(vmcore.StateError):
        next(d.events())
    with pytest.raises(vmcore.StateError):
        d.console.read()


def test_operation_pending_at_close_is_canceled(ctx, scripted):
    d = scripted(ctx, "ignore-shutdown")
    d.start()
    assert d.shutdown(timeout=3600, wait=False) is None
    assert d._pending
    d.close()
    assert not d._pending
    assert d.exit.signal == 9


def test_context_run_returns_when_nothing_is_left(ctx, scripted):
    d = scripted(ctx, "exit-8")
    d.start(wait=False)
    ctx.run()
    assert d.exit.status == 8


def test_abandoned_event_iterators_stop_listening(ctx, scripted):
    d = scripted(ctx, "exit-0")
    for _ in range(10):
        d.events()
    assert not d._listeners


def test_a_context_belongs_to_its_thread(ctx, scripted):
    import threading
    d = scripted(ctx, "run")
    d.start()
    errors_seen = []

    def other():
        try:
            d.wait()
        except RuntimeError as e:
            errors_seen.append(e)

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert len(errors_seen) == 1 and "thread" in str(errors_seen[0])
    d.kill()


LEFT_OPEN = r"""
import asyncio, atexit, ctypes, sys
sys.path.insert(0, %r)
# atexit runs last-registered first: this report runs after vmcore's own handler
atexit.register(lambda: print("closed", ctx.closed, actx.closed))
import vmcore
from vmcore import _lib
from conftest import _shim_fn
fn = _shim_fn()

def make(ctx):
    out = ctypes.c_void_p()
    cfg = b'{"name": "run", "backend": "container", "rootfs": "/", "process": {"args": ["x"]}}'
    assert fn(ctypes.byref(out), ctx._handle(), cfg) == 0
    return ctx._adopt(out.value)

ctx = vmcore.Context()
make(ctx).start()

async def main():
    actx = vmcore.AsyncContext()
    await make(actx).start()
    return actx

actx = asyncio.run(main())
print("leaving")
"""


def test_contexts_left_open_are_closed_at_exit(tmp_path):
    from conftest import HERE, run_python
    script = tmp_path / "left_open.py"
    script.write_text(LEFT_OPEN % str(HERE))
    r = run_python(str(script))
    assert r.stderr == b""
    assert r.stdout == b"leaving\nclosed True True\n"
    assert r.returncode == 0
