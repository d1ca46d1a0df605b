"""The toolstack: managed domains through the vmcore program (create, list, info, console,
logs, pause, resume, shutdown, kill, destroy, stats, exec, events), the control protocol
(doc/control.md) under garbage, a monitor killed with SIGKILL, 100 domains, and the Python
client vmcore.connect(). Every test uses a state directory of its own (--root) and
destroys what it made."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, List

import pytest

import vmcore

from conftest import require, require_backend

GUEST_DIR = Path(os.environ.get("VMCORE_GUEST_DIR", ""))


def cli() -> str:
    path = os.environ.get("VMCORE_CLI")
    require(path and os.access(path, os.X_OK), "VMCORE_CLI does not name the built vmcore")
    return path


class Stack:
    """vmcore with --root in a folder of the test's."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = dict(os.environ, VMCORE_ROOT=str(root))

    def run(self, *args: str, input: bytes = b"", timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([cli(), *args], input=input, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=self.env, timeout=timeout)

    def ok(self, *args: str, **kw) -> str:
        r = self.run(*args, **kw)
        assert r.returncode == 0, (args, r.returncode, r.stderr.decode())
        return r.stdout.decode()

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([cli(), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env)

    def list(self) -> List[dict]:
        return json.loads(self.ok("list", "--json"))

    def state(self, name: str) -> str:
        return json.loads(self.ok("info", "--json", name))["state"]

    def names(self) -> List[str]:
        return sorted(os.listdir(self.root)) if self.root.exists() else []


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    s = Stack(tmp_path / "r")
    yield s
    for name in s.names():
        s.run("destroy", name)
    assert s.names() == []


def settled_fds(pid: int) -> int:
    """How many descriptors process @pid has once the count stops moving (a monitor closes
    the connection of the command that created it a moment after that command returns)."""
    last = -1
    for _ in range(100):
        n = len(os.listdir("/proc/%d/fd" % pid))
        if n == last:
            return n
        last = n
        time.sleep(0.1)
    return last


def write_config(tmp_path: Path, cfg: dict, name: str = "cfg.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(cfg))
    return p


def read_until(stream, needle: bytes, limit: float = 60) -> bytes:
    """Read from a pipe until @needle shows up (os.read: no buffering surprises)."""
    buf = b""
    end = time.monotonic() + limit
    while needle not in buf:
        assert time.monotonic() < end, "timed out waiting for %r, got %r" % (needle, buf)
        chunk = os.read(stream.fileno(), 65536)
        assert chunk, "EOF before %r, got %r" % (needle, buf)
        buf += chunk
    return buf


def our_cgroups(pid: int) -> int:
    n = 0
    for dirpath, dirnames, _ in os.walk("/sys/fs/cgroup"):
        if dirpath.count("/") > 7:
            dirnames[:] = []
            continue
        n += sum(d.startswith("vmcore-%d-" % pid) for d in dirnames)
    return n


def monitor_pid(stack: Stack, name: str) -> int:
    return int((stack.root / name / "pid").read_text())


# --- containers ------------------------------------------------------------------------

SHELL_LOOP = ["/bin/sh", "-c", "echo started; while read l; do echo got:$l; done"]


def test_container_lifecycle(stack, container, tmp_path):
    cfg = write_config(tmp_path, container(SHELL_LOOP))
    assert stack.ok("create", "--name", "web", str(cfg)) == "web\n"
    mon = monitor_pid(stack, "web")
    (entry,) = stack.list()
    assert (entry["name"], entry["backend"], entry["state"]) == ("web", "container", "running")
    assert entry["stats"]["pids"] >= 1 and entry["stats"]["memory_bytes"] > 0
    text = stack.ok("list")
    assert text.splitlines()[0].split() == ["NAME", "BACKEND", "STATE", "UPTIME", "CPU", "MEMORY"]
    assert text.splitlines()[1].split()[:3] == ["web", "container", "running"]
    info = json.loads(stack.ok("info", "--json", "web"))
    assert info["config"] == str(cfg) and info["monitor_pid"] == mon
    assert json.loads(stack.ok("stats", "--json", "web"))["pids"] >= 1

    # exec: output and status
    r = stack.run("exec", "web", "--", "/bin/sh", "-c", "echo from-exec; exit 3")
    assert r.returncode == 3 and b"from-exec" in r.stdout

    # two console clients at once: a reader and a writer; both see the reply
    reader = stack.popen("console", "--read-only", "web")
    writer = stack.popen("console", "web")
    assert b"started" in read_until(writer.stdout, b"started")  # the replay
    read_until(reader.stdout, b"started")
    writer.stdin.write(b"ping\n")
    writer.stdin.flush()
    read_until(writer.stdout, b"got:ping")
    read_until(reader.stdout, b"got:ping")
    writer.stdin.write(b"\x1d")  # Ctrl-]: detach; the domain keeps running
    writer.stdin.flush()
    assert writer.wait(30) == 0
    reader.send_signal(signal.SIGTERM)
    reader.wait(30)
    assert stack.state("web") == "running"

    # pause / resume from "another shell"
    stack.ok("pause", "web")
    assert stack.state("web") == "paused"
    r = stack.run("pause", "web")
    assert r.returncode == 1 and b"web" in r.stderr
    stack.ok("resume", "web")
    assert stack.state("web") == "running"

    # shutdown: SIGTERM to the shell; it ends and its monitor exits
    stack.ok("shutdown", "--timeout", "5", "web")
    (entry,) = stack.list()
    assert entry["state"] == "stopped" and entry["exit"]["kind"] == "signal"
    assert "stopped(143)" in stack.ok("list")
    logs = stack.ok("logs", "web")
    assert "started" in logs and "got:ping" in logs and "from-exec" in logs
    r = stack.run("pause", "web")
    assert r.returncode == 1 and b"has ended" in r.stderr
    stack.ok("destroy", "web")
    assert stack.names() == [] and our_cgroups(mon) == 0


def test_monitor_killed_with_sigkill(stack, container, tmp_path):
    cfg = write_config(tmp_path, container(["/bin/sleep", "1000"]))
    stack.ok("create", "--name", "victim", str(cfg))
    stack.ok("create", "--name", "bystander", str(cfg))
    mon = monitor_pid(stack, "victim")
    assert our_cgroups(mon) > 0
    os.kill(mon, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while stack.state("victim") != "gone":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    states = {d["name"]: d["state"] for d in stack.list()}
    assert states == {"victim": "gone", "bystander": "running"}  # one crash, one domain
    r = stack.run("console", "victim")
    assert r.returncode == 1 and b"not running" in r.stderr
    r = stack.run("create", "--name", "victim", str(cfg))
    assert r.returncode == 1 and b"vmcore destroy victim" in r.stderr
    stack.ok("destroy", "victim")
    assert our_cgroups(mon) == 0  # the library's watcher removed them; destroy waited
    assert stack.names() == ["bystander"]
    # the name is free again
    stack.ok("create", "--name", "victim", str(cfg))
    stack.ok("kill", "victim")
    assert "stopped(137)" in stack.ok("list")


def test_foreground_exits_with_the_domain_status(stack, container, tmp_path):
    cfg = write_config(tmp_path, container(["/bin/sh", "-c", "echo fg; exit 7"]))
    r = stack.run("create", "--foreground", "--name", "fg", str(cfg))
    assert r.returncode == 7
    assert stack.state("fg") == "stopped"
    assert stack.ok("logs", "fg") == "fg\n"


def test_hundred_domains(stack, container, tmp_path):
    cfg = write_config(tmp_path, container(["/bin/sleep", "1000"]))
    names = ["d%03d" % i for i in range(100)]
    for n in names:
        stack.ok("create", "--name", n, str(cfg))
    listed = stack.list()
    assert [d["name"] for d in listed] == names
    assert {d["state"] for d in listed} == {"running"}
    assert len(stack.ok("list").splitlines()) == 101
    for n in names:
        stack.ok("destroy", n)
    assert stack.names() == []


# --- VMs -------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["emu", "kvm"])
def test_vm_lifecycle(stack, tmp_path, backend):
    require_backend(backend)
    kernel = GUEST_DIR / "echo.bin"
    require(kernel.exists(), "needs the test guests (VMCORE_GUEST_DIR)")
    cfg = write_config(tmp_path, {"name": "vm", "backend": backend, "memory_mib": 16,
                                  "boot": {"kernel": str(kernel), "format": "raw",
                                           "mode": "protected", "load_address": 1048576}})
    stack.ok("create", str(cfg))  # the name from the config
    assert stack.state("vm") == "running"
    con = stack.popen("console", "vm")
    read_until(con.stdout, b"echo ready")  # replayed
    con.stdin.write(b"abc")
    con.stdin.flush()
    read_until(con.stdout, b"abc")
    con.stdin.write(b"\x1d")
    con.stdin.flush()
    assert con.wait(30) == 0
    stack.ok("pause", "vm")
    assert stack.state("vm") == "paused"
    stack.ok("resume", "vm")
    st = json.loads(stack.ok("stats", "--json", "vm"))
    assert st["exits"] > 0
    if backend == "emu":
        assert st["instructions"] > 0
    r = stack.run("exec", "vm", "--", "/bin/true")
    assert r.returncode == 125 and b"not supported" in r.stderr
    # 'q' makes the guest exit with status 0; the console client sees the end
    con = stack.popen("console", "--no-replay", "vm")
    con.stdin.write(b"q")
    con.stdin.flush()
    assert con.wait(60) == 0
    deadline = time.monotonic() + 30
    while stack.state("vm") != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert json.loads(stack.ok("info", "--json", "vm"))["exit"]["code"] == 0
    assert "echo ready" in stack.ok("logs", "vm")
    stack.ok("destroy", "vm")


# --- bad input ---------------------------------------------------------------------------

def test_bad_input(stack, container, tmp_path):
    cfg = write_config(tmp_path, container(["/bin/sleep", "1000"]))
    for args in (["create", "--name", "a/b", str(cfg)], ["create", "--name", "", str(cfg)],
                 ["create", "--name", "-x", str(cfg)], ["pause"], ["list", "extra"],
                 ["info", "bad name"], ["shutdown", "--timeout", "x", "n"], ["exec", "n"],
                 ["create", "--bogus", str(cfg)], ["create", "--backend", "nope", str(cfg)]):
        r = stack.run(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith(b"vmcore: "), r.stderr
    for cmd in ("info", "console", "logs", "pause", "resume", "shutdown", "kill", "destroy",
                "stats", "events"):
        r = stack.run(cmd, "nosuch")
        assert r.returncode == 1 and b"domain 'nosuch' does not exist" in r.stderr, (cmd, r.stderr)
    r = stack.run("exec", "nosuch", "--", "/bin/true")
    assert r.returncode == 1 and b"does not exist" in r.stderr

    # a configuration the library refuses: the file and the JSON path, nothing left behind
    bad = write_config(tmp_path, container(["/bin/sleep", 1]), "bad.json")
    r = stack.run("create", str(bad))
    assert r.returncode == 125
    assert r.stderr.decode() == "vmcore: create: %s: process.args[1]: expected a string, got " \
                                "an integer\n" % bad
    assert stack.names() == []
    # a start that fails (the program does not exist in the rootfs): also nothing left
    nostart = write_config(tmp_path, container(["/bin/nonexistent"]), "nostart.json")
    r = stack.run("create", str(nostart))
    assert r.returncode == 125 and b"nonexistent" in r.stderr
    assert stack.names() == []

    stack.ok("create", "--name", "dup", str(cfg))
    r = stack.run("create", "--name", "dup", str(cfg))
    assert r.returncode == 1 and r.stderr == b"vmcore: create: domain 'dup' already exists\n"

    # a socket path too long for sun_path
    deep = tmp_path / ("x" * 90)
    r = subprocess.run([cli(), "create", "--root", str(deep), "--name", "toolong", str(cfg)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 1 and b"longer than a UNIX socket address allows" in r.stderr
    assert not deep.exists()

    # a state directory that is not ours
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    os.chown(foreign, 65534, 65534)
    r = subprocess.run([cli(), "create", "--root", str(foreign), "--name", "x", str(cfg)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert r.returncode == 1 and b"is not ours" in r.stderr
    assert os.listdir(foreign) == []
    # a folder in the root without our lock file is not listed
    (stack.root / "stranger").mkdir()
    assert [d["name"] for d in stack.list()] == ["dup"]
    (stack.root / "stranger").rmdir()


def raw_connect(stack: Stack, name: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(20)
    s.connect(str(stack.root / name / "sock"))
    return s


def read_line(s: socket.socket) -> dict:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1)
        assert chunk, "closed after %r" % buf
        buf += chunk
    return json.loads(buf)


def test_protocol_garbage(stack, container, tmp_path):
    cfg = write_config(tmp_path, container(SHELL_LOOP))
    stack.ok("create", "--name", "p", str(cfg))
    mon = monitor_pid(stack, "p")
    fds_before = settled_fds(mon)
    s = raw_connect(stack, "p")
    hello = read_line(s)
    assert hello["vmcore_control"] == 1 and hello["name"] == "p" and hello["pid"] == mon
    cases = [
        (b"{not json\n", "VMCORE_EPARSE"),
        (b"[1,2]\n", "VMCORE_EINVAL"),
        (b'{"id":1}\n', "VMCORE_EINVAL"),
        (b'{"id":2,"method":"nosuch"}\n', "VMCORE_ENOTSUP"),
        (b'{"id":3,"method":"info","params":[]}\n', "VMCORE_EINVAL"),
        (b'{"id":4,"method":"info","extra":1}\n', "VMCORE_EINVAL"),
        (b'{"id":5,"method":"shutdown","params":{"timeout_ms":-1}}\n', "VMCORE_EINVAL"),
        (b'{"id":6,"method":"exec","params":{"argv":[]}}\n', "VMCORE_EINVAL"),
        (b'{"id":7,"method":"exec","params":{"argv":["/bin/true",5]}}\n', "VMCORE_EINVAL"),
        (b'{"id":8,"method":"subscribe","params":{"events":["nope"]}}\n', "VMCORE_EINVAL"),
        (b'{"id":9,"method":"resize","params":{"rows":0,"cols":80}}\n', "VMCORE_EINVAL"),
        (b'{"id":10,"method":"resume"}\n', "VMCORE_ESTATE"),
        (b'{"id":11,"method":"resize","params":{"rows":24,"cols":80}}\n', "VMCORE_ENOTSUP"),
        (b'{"id":"s","method":"info"}\n', None),
    ]
    for line, err in cases:
        s.sendall(line)
        reply = read_line(s)
        if err is None:
            assert reply["id"] == "s" and reply["result"]["state"] == "running"
        else:
            assert reply["error"]["name"] == err, (line, reply)
            assert reply["error"]["message"]
    # random bytes, each line answered (or, past 64 KiB without a newline, refused)
    rng = random.Random(1234)
    for i in range(300):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))).replace(b"\n", b"")
        s.sendall(junk + b"\n")
        assert "error" in read_line(s)
    s.sendall(b'{"id":12,"method":"info"}\n')
    assert read_line(s)["id"] == 12
    s.close()
    # an over-long line: an error, then the connection is closed
    s = raw_connect(stack, "p")
    read_line(s)
    s.sendall(b"x" * (70 << 10))
    reply = read_line(s)
    assert reply["error"]["name"] == "VMCORE_ELIMIT"
    try:
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass  # closed with our unread bytes in its buffer: a reset, as TCP would
    s.close()
    # clients that never read: a console flood to one of them and a reply backlog to another
    # are bounded; a third client is served meanwhile
    stuck = raw_connect(stack, "p")
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    read_line(stuck)
    stuck.sendall(b'{"id":1,"method":"attach"}\n')
    backlog = raw_connect(stack, "p")
    read_line(backlog)
    backlog.setblocking(False)
    try:
        for _ in range(20000):
            backlog.send(b'{"id":1,"method":"info"}\n' * 100)
    except (BlockingIOError, BrokenPipeError, ConnectionResetError):
        pass
    r = stack.run("exec", "p", "--", "/bin/sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x")
    assert r.returncode == 0 and len(r.stdout) >= 3000000
    with vmcore.connect("p", root=str(stack.root)) as dom:
        assert dom.info()["state"] == "running"
    stuck.close()
    backlog.close()
    # 200 connections at once: the monitor refuses those past its limit and survives
    socks = []
    for _ in range(200):
        try:
            socks.append(raw_connect(stack, "p"))
        except OSError:
            break
    for c in socks:
        c.close()
    # Back to what it had (or fewer: when fds_before was counted, the monitor may not yet
    # have closed `create`'s connection). Only then is it below its connection limit again,
    # so `info` is answered rather than refused (which `vmcore info` reports as
    # "unresponsive").
    deadline = time.monotonic() + 20
    while len(os.listdir("/proc/%d/fd" % mon)) > fds_before:
        assert time.monotonic() < deadline, "the monitor leaked descriptors"
        time.sleep(0.05)
    assert stack.state("p") == "running"
    stack.ok("kill", "p")


# --- the Python client and the event stream ---------------------------------------------

def test_python_client_and_events(stack, container, tmp_path):
    cfg = write_config(tmp_path, container(SHELL_LOOP))
    stack.ok("create", "--name", "py", str(cfg))
    events = stack.popen("events", "py")
    with vmcore.connect("py", root=str(stack.root)) as dom:
        deadline = time.monotonic() + 30
        while dom.info()["event_clients"] < 1:  # `vmcore events` has subscribed
            assert time.monotonic() < deadline
            time.sleep(0.02)
        info = dom.info()
        assert info["name"] == "py" and info["backend"] == "container"
        assert dom.stats()["pids"] >= 1
        dom.pause()
        with pytest.raises(vmcore.StateError):
            dom.pause()
        dom.resume()
        res = dom.exec(["/bin/sh", "-c", "echo via-python; exit 4"])
        assert res["exit"]["code"] == 4 and b"via-python" in res["output"]
        with vmcore.connect("py", root=str(stack.root)) as watcher:
            stream = watcher.events()
            assert dom.shutdown(timeout_ms=5000) is False
            seen = [e for e in stream]
        kinds = [(e["event"], e.get("new")) for e in seen]
        assert ("exit", None) in kinds and ("state", "stopped") in kinds
    out, _ = events.communicate(timeout=30)
    lines = [json.loads(line) for line in out.decode().splitlines()]
    states = [e["new"] for e in lines if e["event"] == "state"]
    assert states[:2] == ["paused", "running"] and states[-1] == "stopped"
    assert all(e["name"] == "py" and e["time"] > 0 for e in lines)
    with pytest.raises(vmcore.NotFound):
        vmcore.connect("py", root=str(stack.root))


def test_concurrent_commands(stack, container, tmp_path):
    """Several shells at once: every command gets an answer, success or a clear state
    error, and the domain ends up in a state one of them left it in."""
    import threading
    cfg = write_config(tmp_path, container(["/bin/sleep", "1000"]))
    stack.ok("create", "--name", "busy", str(cfg))
    results = []
    lock = threading.Lock()

    def worker(seed):
        rng = random.Random(seed)
        for _ in range(15):
            cmd = rng.choice(["pause", "resume", "info", "stats", "list"])
            r = stack.run(cmd, *([] if cmd == "list" else ["busy"]))
            with lock:
                results.append((cmd, r.returncode, r.stderr))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for cmd, rc, err in results:
        if cmd in ("info", "list"):
            assert rc == 0, (cmd, err)
        else:
            # stats of a paused container works too; pause/resume may find the other state
            assert rc == 0 or (rc == 1 and b"busy: " in err), (cmd, rc, err)
    assert stack.state("busy") in ("running", "paused")
    stack.ok("destroy", "busy")


def test_events_follow_sees_new_domains(stack, container, tmp_path):
    """`events --follow` (no NAME) watches the state directory: domains created after it
    started are announced ("appeared") and their events follow; it runs until stopped."""
    stack.root.mkdir(parents=True, exist_ok=True)
    events = stack.popen("events", "--follow")
    try:
        time.sleep(0.2)  # a head start: the domains below must be found by the watch
        cfg = write_config(tmp_path, container(SHELL_LOOP))
        for name in ("f1", "f2"):
            stack.ok("create", "--name", name, str(cfg))
        stack.ok("pause", "f2")
        for name in ("f1", "f2"):
            stack.ok("kill", name)
        deadline = time.monotonic() + 30
        seen: List[dict] = []
        buf = b""
        os.set_blocking(events.stdout.fileno(), False)
        while time.monotonic() < deadline:
            stopped = {e["name"] for e in seen if e.get("new") == "stopped"}
            if stopped == {"f1", "f2"}:
                break
            chunk = events.stdout.read()
            if chunk:
                buf += chunk
                *lines, buf = buf.split(b"\n")
                seen += [json.loads(line) for line in lines if line]
            time.sleep(0.05)
        assert events.poll() is None  # still running: --follow never ends by itself
    finally:
        events.terminate()
        events.wait(timeout=10)
    appeared = [e["name"] for e in seen if e["event"] == "appeared"]
    assert sorted(appeared) == ["f1", "f2"]
    assert ("f2", "paused") in [(e["name"], e.get("new")) for e in seen]
    assert {e["name"] for e in seen if e.get("new") == "stopped"} == {"f1", "f2"}
    # --follow with a NAME is a usage error
    r = stack.run("events", "--follow", "f1")
    assert r.returncode == 2 and b"--follow" in r.stderr
