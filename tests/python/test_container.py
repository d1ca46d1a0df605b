"""Containers through the bindings: a busybox root file system built by the fixture, real
processes, blocking and asyncio. Needs root and the container backend (skips without them,
fails under VMCORE_TEST_STRICT=1 unless the backend is not built at all)."""

import asyncio

import pytest

import vmcore
from vmcore.model import ExitKind, State, Stream

from conftest import count_children, count_fds, count_threads


def test_echo_output_arrives(ctx, container):
    d = ctx.create(container(["/bin/echo", "hello from python"]))
    assert d.backend == "container"
    d.start()
    exit = d.wait()
    assert (exit.kind, exit.status, exit.code) == (ExitKind.STATUS, 0, 0)
    assert list(d.console.chunks()) == [(Stream.STDOUT, b"hello from python\n")]
    assert d.state == State.STOPPED


def test_exit_status_stderr_and_hostname(ctx, container):
    d = ctx.create(container(["/bin/sh", "-c", "hostname; echo err >&2; exit 3"],
                             hostname="pyhost"))
    d.start()
    assert d.wait().code == 3
    chunks = list(d.console.chunks())
    assert b"".join(data for s, data in chunks if s == Stream.STDOUT) == b"pyhost\n"
    assert b"".join(data for s, data in chunks if s == Stream.STDERR) == b"err\n"


def test_stdin_reaches_the_process(ctx, container):
    d = ctx.create(container(["/bin/cat"]))
    d.start()
    d.console.write("through stdin\n")
    d.console.close_input()
    assert d.wait().ok
    assert d.console.read() == b"through stdin\n"


def test_shutdown_kill_pause_and_stats(ctx, container):
    # PID 1 ignores SIGTERM it has no handler for: the tiny init forwards it to sleep.
    cfg = container(["/bin/sleep", "1000"], limits={"pids": 8})
    cfg["process"]["init"] = True
    d = ctx.create(cfg)
    d.start()
    assert d.state == State.RUNNING
    assert d.stats.pids >= 1
    d.pause()
    assert d.state == State.PAUSED
    d.resume()
    exit = d.shutdown(timeout=60)
    assert exit.code == 128 + 15  # SIGTERM (as a status or a signal, as init reports it)

    d = ctx.create(container(["/bin/sleep", "1000"]))
    d.start()
    assert d.kill().signal == 9


def test_exec_runs_inside_the_container(ctx, container):
    d = ctx.create(container(["/bin/sleep", "1000"], hostname="execbox"))
    d.start()
    assert d.exec(["/bin/hostname"]).ok
    assert d.exec(["/bin/sh", "-c", "exit 5"]).status == 5
    d.kill()
    assert b"execbox\n" in d.console.read()


def test_events_iterate_to_the_end(ctx, container):
    d = ctx.create(container(["/bin/echo", "evt"]))
    events = d.events()
    d.start()
    got = list(events)
    assert [e.data for e in got if isinstance(e, vmcore.ConsoleEvent)] == [b"evt\n"]
    assert isinstance(got[-1], vmcore.StateEvent) and got[-1].new_state == State.STOPPED


def test_many_containers_leak_nothing(container):
    def cycle():
        with vmcore.Context() as c:
            d = c.create(container(["/bin/true"]))
            d.start()
            d.wait()
            running = c.create(container(["/bin/sleep", "1000"]))
            running.start()  # the context's close kills and reaps it

    cycle()
    before = (count_fds(), count_threads(), count_children())
    for _ in range(20):
        cycle()
    assert (count_fds(), count_threads(), count_children()) == before


def test_async_echo_and_exit(container):
    async def main():
        async with vmcore.AsyncContext() as c:
            d = c.create(container(["/bin/sh", "-c", "echo one; echo two; exit 4"]))
            await d.start()
            out = b"".join([chunk async for chunk in d.console])
            return out, await d.wait()

    out, exit = asyncio.run(main())
    assert out == b"one\ntwo\n"
    assert exit.status == 4


def test_async_many_at_once(container):
    async def main():
        async with vmcore.AsyncContext() as c:
            ds = [c.create(container(["/bin/echo", str(i)])) for i in range(4)]
            await asyncio.gather(*(d.start() for d in ds))
            exits = await asyncio.gather(*(d.wait() for d in ds))
            return [d.console.read_nowait() for d in ds], exits

    outs, exits = asyncio.run(main())
    assert outs == [b"%d\n" % i for i in range(4)]
    assert all(e.ok for e in exits)


def test_async_exec_pause_resume_shutdown(container):
    async def main():
        async with vmcore.AsyncContext() as c:
            cfg = container(["/bin/sleep", "1000"], hostname="aexec")
            cfg["process"]["init"] = True
            d = c.create(cfg)
            await d.start()
            status = (await d.exec(["/bin/sh", "-c", "hostname; exit 6"])).status
            await d.pause()
            paused = d.state
            await d.resume()
            exit = await d.shutdown(60)
            return status, paused, exit, await d.console.aread()

    status, paused, exit, out = asyncio.run(main())
    assert (status, paused, exit.code) == (6, State.PAUSED, 143)
    assert b"aexec\n" in out


def test_terminal_window_size(ctx, container):
    d = ctx.create(container(["/bin/sh", "-c", "stty size; read x; stty size"],
                             process={"args": ["/bin/sh", "-c", "stty size; read x; stty size"],
                                      "env": ["PATH=/bin"], "terminal": True}))
    with pytest.raises(vmcore.errors.InvalidArgument):
        d.console.resize(0, 80)
    d.console.resize(30, 100)
    d.start()
    out = b""
    for chunk in d.console:
        out += chunk
        if b"30 100" in out:
            break
    d.console.resize(40, 132)
    d.console.write("\n")
    assert d.wait().ok
    out += d.console.read()
    assert b"30 100" in out and b"40 132" in out, out
    with pytest.raises(vmcore.errors.StateError):
        d.console.resize(40, 132)


def test_pipes_have_no_window_size(ctx, container):
    d = ctx.create(container(["/bin/true"]))
    with pytest.raises(vmcore.errors.NotSupported):
        d.console.resize(24, 80)
