"""``python3 -m vmcore``: the command-line client, mirroring the C ``vmcore`` program.

    python3 -m vmcore run [--backend B] CONFIG.json   run a domain, stream its console,
                                                      exit with its status
    python3 -m vmcore probe [BACKEND...]              which backends can run here, and why not
    python3 -m vmcore version

Exit codes: the domain's status (the debug-exit byte, the process's exit code, 128 + signal,
125 for a crash); 2 for usage errors; 125 when the domain could not be run at all.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import signal
import stat
import sys
import termios
from typing import Any, List, Optional, Sequence

EXIT_USAGE = 2
EXIT_FAILED = 125
SHUTDOWN_GRACE = 10.0
DETACH_KEY = 0x1D  # Ctrl-]: in raw terminal mode Ctrl-C goes to the domain


def say(message: str) -> None:
    """One line on stderr, whatever the message carries."""
    line = message.replace("\n", " ").replace("\r", " ")
    sys.stderr.write("vmcore: %s\n" % line)
    sys.stderr.flush()


def _write_all(fd: int, data: bytes) -> bool:
    """Write everything; False once the reader has gone away."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            import select
            select.select([], [fd], [])
            continue
        except OSError as e:
            if e.errno == errno.EPIPE:
                return False
            raise
        view = view[n:]
    return True


def _reject_duplicates(pairs: List[Any]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise ValueError("duplicate object key %r" % k)
        out[k] = v
    return out


class _Runner:
    """Runs one domain on asyncio: console to stdout/stderr, stdin to the console,
    SIGINT/SIGTERM/SIGHUP to a shutdown (a second one kills)."""

    def __init__(self, domain: Any) -> None:
        self.domain = domain
        self.stdout_ok = True
        self.stderr_ok = True
        self.shutting_down = False
        self.raw_tty: Optional[list] = None
        self.stdin_fd: Optional[int] = None
        self.loop = asyncio.get_running_loop()
        self.tasks: "set[asyncio.Task[Any]]" = set()

    def on_event(self, ev: Any) -> None:
        import vmcore
        if isinstance(ev, vmcore.ConsoleEvent):
            if ev.stream == vmcore.Stream.STDERR:
                if self.stderr_ok:
                    self.stderr_ok = _write_all(2, ev.data)
            elif self.stdout_ok:
                self.stdout_ok = _write_all(1, ev.data)
        elif isinstance(ev, vmcore.ExitEvent) and ev.exit.kind == vmcore.ExitKind.CRASH:
            say("domain crashed: %s" % (ev.exit.reason or "unknown reason"))
        elif isinstance(ev, vmcore.ErrorEvent):
            say(ev.message or vmcore.strerror(ev.code))

    def _spawn(self, coro: Any) -> None:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: "asyncio.Task[Any]") -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            e = task.exception()
            import vmcore
            if not isinstance(e, (vmcore.StateError, vmcore.ClosedError)):
                say(str(e))

    def request_shutdown(self) -> None:
        import vmcore
        d = self.domain
        if d.ended:
            return
        if self.shutting_down or d.state == vmcore.State.STOPPING:
            self._spawn(d.kill())
            return
        self.shutting_down = True
        self._spawn(d.shutdown(SHUTDOWN_GRACE))

    # --- stdin ---------------------------------------------------------------------------

    def open_stdin(self) -> None:
        """Forward a terminal (in raw mode) or a pipe/socket; a regular file or /dev/null
        is not a console."""
        fd = 0
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            return
        if os.isatty(fd):
            try:
                saved = termios.tcgetattr(fd)
                raw = termios.tcgetattr(fd)
                raw[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP |
                            termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
                raw[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG |
                            termios.IEXTEN)
                raw[2] &= ~(termios.CSIZE | termios.PARENB)
                raw[2] |= termios.CS8
                raw[6][termios.VMIN] = 1
                raw[6][termios.VTIME] = 0
                termios.tcsetattr(fd, termios.TCSAFLUSH, raw)
                self.raw_tty = saved
            except termios.error:
                pass
        elif not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            return
        self.stdin_fd = fd
        self.loop.add_reader(fd, self._on_stdin)

    def _on_stdin(self) -> None:
        try:
            data = os.read(self.stdin_fd, 4096)  # type: ignore[arg-type]
        except BlockingIOError:
            return
        except OSError as e:
            say("stdin: %s" % e.strerror)
            data = b""
        if data and self.raw_tty is not None and DETACH_KEY in data:
            self._forward(data[:data.index(DETACH_KEY)])
            self.request_shutdown()
            return
        if data:
            self._forward(data)
            return
        self._forward(b"")  # end of input: close a container's stdin
        self.close_stdin()

    def _forward(self, data: bytes) -> None:
        import vmcore
        d = self.domain
        if d.ended:
            return
        try:
            if data:
                d.console.write(data)
            else:
                d.console.close_input()
        except (vmcore.StateError, vmcore.ClosedError):
            pass
        except vmcore.NotSupported:
            if data:
                raise
        except vmcore.VmcoreError as e:
            say("console: %s" % e)

    def close_stdin(self) -> None:
        if self.stdin_fd is not None:
            self.loop.remove_reader(self.stdin_fd)
            self.stdin_fd = None
        if self.raw_tty is not None:
            termios.tcsetattr(0, termios.TCSAFLUSH, self.raw_tty)
            self.raw_tty = None


async def _run(config: str, backend: Optional[str]) -> int:
    import vmcore
    async with vmcore.AsyncContext() as ctx:
        try:
            if backend is None:
                domain = ctx.create(os.fspath(config))
            else:
                domain = _create_with_backend(ctx, config, backend)
        except vmcore.VmcoreError as e:
            detail = e.message or vmcore.strerror(e.code)
            say(detail if config in detail else "%s: %s" % (config, detail))
            return EXIT_FAILED
        except (OSError, ValueError) as e:
            say("%s: %s" % (config, e))
            return EXIT_FAILED

        runner = _Runner(domain)
        domain.subscribe(runner.on_event)
        loop = asyncio.get_running_loop()
        sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        for s in sigs:
            loop.add_signal_handler(s, runner.request_shutdown)
        try:
            try:
                await domain.start()
            except vmcore.VmcoreError as e:
                say("%s: start: %s" % (config, e.message or vmcore.strerror(e.code)))
                return EXIT_FAILED
            runner.open_stdin()
            return (await domain.wait()).code
        finally:
            runner.close_stdin()
            for s in sigs:
                loop.remove_signal_handler(s)
            for task in list(runner.tasks):
                await asyncio.gather(task, return_exceptions=True)


def _create_with_backend(ctx: Any, config: str, backend: str) -> Any:
    """Load CONFIG, replace its "backend" (``--backend``), resolve paths against its folder."""
    try:
        with open(config, "rb") as f:
            text = f.read()
    except OSError as e:
        raise OSError("cannot read: %s" % (e.strerror or e)) from None
    try:
        root = json.loads(text, object_pairs_hook=_reject_duplicates)
    except ValueError:
        # Let the library name line and column in its own words.
        return ctx.create(config)
    if isinstance(root, dict):
        root["backend"] = backend
    return ctx.create(root, base_dir=os.path.dirname(os.path.abspath(config)))


def _probe(backends: Sequence[str]) -> int:
    import vmcore
    names = list(backends) or vmcore.backend_names()
    all_ok = True
    for name in names:
        try:
            r = vmcore.probe(name)
        except vmcore.VmcoreError as e:
            print("%s: probe failed: %s" % (name, e))
            all_ok = False
            continue
        if r.available:
            print("%s: available%s" % (name, " (%s)" % r.details if r.details else ""))
        else:
            print("%s: unavailable: %s" % (name, r.reason or "no reason given"))
            all_ok = False
    return 0 if all_ok or not backends else 1


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python3 -m vmcore",
        description="Run virtual machines and containers with libvmcore.",
        epilog="The configuration schema is described in doc/config.md.")
    p.add_argument("-V", "--version", action="store_true", help="print the library version")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run", help="run a domain; its console goes to stdout",
        description="Create the domain CONFIG.json describes, start it, copy its console to "
                    "stdout (a container's stderr to stderr) and stdin to its console, wait "
                    "for it to end and exit with its status. SIGINT or SIGTERM asks it to shut "
                    "down (killed after 10 s); a second one kills it. When stdin is a terminal "
                    "it is put in raw mode; press Ctrl-] to shut the domain down.")
    run.add_argument("-b", "--backend",
                     help="override the config's \"backend\": auto, kvm, emu or container")
    run.add_argument("config", metavar="CONFIG.json")
    probe = sub.add_parser("probe", help="show which backends can run on this host",
                           description="For each backend (all by default) print one line. "
                                       "With BACKEND arguments, exit 1 unless all of them "
                                       "are available.")
    probe.add_argument("backends", nargs="*", metavar="BACKEND")
    sub.add_parser("version", help="print the library version")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    import vmcore
    try:
        if args.version or args.command == "version":
            print("vmcore %s" % vmcore.version())
            return 0
        if args.command is None:
            p.print_usage(sys.stderr)
            return EXIT_USAGE
        known = ["auto"] + vmcore.backend_names()
        if args.command == "probe":
            for b in args.backends:
                if b not in known:
                    p.error("probe: unknown backend '%s' (expected %s)" % (b, ", ".join(known)))
            return _probe(args.backends)
        if args.backend is not None and args.backend not in known:
            p.error("run: --backend: unknown backend '%s' (expected %s)"
                    % (args.backend, ", ".join(known)))
        return asyncio.run(_run(args.config, args.backend))
    except vmcore.LibraryNotFound as e:
        say(str(e))
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
