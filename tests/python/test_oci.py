"""vmcore-oci, the OCI runtime (doc/oci.md): the create -> start -> kill -> delete lifecycle
and its states, the same bundle under runc, config.json fields one by one, and bad input
(every refusal names the field or file, exits non-zero and leaves no state directory, no
cgroup, no process behind).

The built program is $VMCORE_OCI (ctest sets it). Every test uses a --root of its own. The
test process makes itself a child subreaper, as conmon and containerd's shim are, so the
containers' first processes are handed to it when vmcore-oci exits and it reaps them."""

from __future__ import annotations

import array
import ctypes
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

from conftest import require, require_root

PR_SET_CHILD_SUBREAPER = 36
WAIT = 30.0  # generous bound for conditions we poll (never asserted as a duration)


def oci_bin() -> str:
    path = os.environ.get("VMCORE_OCI")
    require(path and os.access(path, os.X_OK), "VMCORE_OCI does not name the built vmcore-oci")
    return path


@pytest.fixture(scope="module", autouse=True)
def subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def wait_until(cond, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not cond():
        assert time.monotonic() < deadline, "gave up waiting for " + what
        time.sleep(0.02)


def reap(pid: int) -> None:
    """Reap @pid if it is our (adopted) child and has ended; ignore it otherwise."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def cgroup_dirs(root: Path, cid: str) -> List[str]:
    state = json.loads((root / cid / "state.json").read_text())
    return list(state["cgroup"]["cgroups"].values())


def oci_groups(cid: str) -> List[str]:
    """Every folder named oci-<cid>-<hash> in the cgroup hierarchies (none may be left)."""
    found = []
    for top in Path("/sys/fs/cgroup").iterdir():
        if not top.is_dir():
            continue
        for dirpath, dirnames, _ in os.walk(top):
            found += [os.path.join(dirpath, d) for d in dirnames
                      if d.startswith("oci-" + cid + "-")]
            if dirpath.count("/") > 8:
                dirnames[:] = []
    return found


class Runtime:
    def __init__(self, binary: str, root: Path, out: Path) -> None:
        self.binary = binary
        self.root = root
        self.out = out  # stdout/stderr files: the container inherits them
        self.n = 0
        self.last_out = out / "none"

    def run(self, *args: str, log: Optional[List[str]] = None, timeout: float = 60
            ) -> subprocess.CompletedProcess:
        """Run the runtime with stdio on files (a container inherits them: pipes would
        keep a reader waiting for its end)."""
        self.out.mkdir(exist_ok=True)
        self.n += 1
        o, e = self.out / ("%d.out" % self.n), self.out / ("%d.err" % self.n)
        self.last_out = o
        with open(o, "wb") as fo, open(e, "wb") as fe:
            p = subprocess.run([self.binary, "--root", str(self.root), *(log or []), *args],
                               stdin=subprocess.DEVNULL, stdout=fo, stderr=fe, timeout=timeout)
        p.stdout_path, p.stderr_path = o, e  # type: ignore[attr-defined]
        p.stdout = o.read_bytes()
        p.stderr = e.read_bytes()
        return p

    def ok(self, *args: str) -> str:
        p = self.run(*args)
        assert p.returncode == 0, (args, p.returncode, p.stderr.decode())
        return p.stdout.decode()

    def state(self, cid: str) -> Dict:
        return json.loads(self.ok("state", cid))

    def status(self, cid: str) -> str:
        return self.state(cid)["status"]


@pytest.fixture
def rt(tmp_path: Path) -> Iterator[Runtime]:
    require_root()
    r = Runtime(oci_bin(), tmp_path / "root", tmp_path / "io")
    yield r
    # A failed test must not leave containers running for the next ones.
    if r.root.is_dir():
        for d in r.root.iterdir():
            subprocess.run([r.binary, "--root", str(r.root), "delete", "--force", d.name],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)


@pytest.fixture
def bundle(tmp_path: Path, busybox_rootfs: Path, rt: Runtime) -> Path:
    """A bundle made by `vmcore-oci spec`, its root.path the shared busybox rootfs."""
    b = tmp_path / "bundle"
    b.mkdir()
    rt.ok("spec", "--bundle", str(b))
    cfg = json.loads((b / "config.json").read_text())
    cfg["root"]["path"] = str(busybox_rootfs)
    (b / "config.json").write_text(json.dumps(cfg))
    return b


def edit(bundle: Path, fn) -> None:
    cfg = json.loads((bundle / "config.json").read_text())
    fn(cfg)
    (bundle / "config.json").write_text(json.dumps(cfg))


def set_args(bundle: Path, *args: str) -> None:
    edit(bundle, lambda c: c["process"].__setitem__("args", list(args)))


def assert_nothing_left(rt: Runtime, cid: str) -> None:
    assert not (rt.root / cid).exists(), "state directory left behind"
    assert oci_groups(cid) == [], "cgroup left behind"
    with open("/proc/self/mountinfo") as f:
        assert cid not in f.read()


# --- the lifecycle --------------------------------------------------------------------

def test_lifecycle(rt: Runtime, bundle: Path) -> None:
    set_args(bundle, "sh", "-c", "echo started; exec sleep 1000")
    rt.ok("create", "--bundle", str(bundle), "--pid-file", str(bundle / "pid"), "c1")
    out_file = rt.last_out  # create's stdout, inherited by the container
    st = rt.state("c1")
    assert st["status"] == "created"
    assert st["id"] == "c1" and st["bundle"] == str(bundle)
    assert st["ociVersion"].startswith("1.")
    assert st["rootfs"] and st["created"] and st["annotations"] == {}
    pid = st["pid"]
    assert pid > 0 and int((bundle / "pid").read_text()) == pid
    assert os.path.exists("/proc/%d" % pid)
    # Set up, not exec'd: the first process is still the runtime's image, and silent.
    assert os.readlink("/proc/%d/exe" % pid) != "/bin/busybox"
    groups = cgroup_dirs(rt.root, "c1")
    assert groups and all(os.path.isdir(g) for g in groups)
    assert all(str(pid) in Path(g, "cgroup.procs").read_text().split() for g in groups)

    assert b"started" not in out_file.read_bytes()
    rt.ok("start", "c1")
    assert rt.status("c1") == "running"
    wait_until(lambda: b"started" in out_file.read_bytes(), "the container's output")
    assert json.loads(rt.ok("ps", "--format", "json", "c1")) == [pid]

    p = rt.run("start", "c1")
    assert p.returncode != 0 and b"cannot start an already running container" in p.stderr

    rt.ok("pause", "c1")
    assert rt.status("c1") == "paused"
    rt.ok("resume", "c1")
    assert rt.status("c1") == "running"

    p = rt.run("delete", "c1")
    assert p.returncode != 0 and b"that is not stopped: running" in p.stderr
    assert rt.status("c1") == "running"

    rt.ok("kill", "c1", "KILL")
    wait_until(lambda: rt.status("c1") == "stopped", "the stopped state")
    reap(pid)
    assert rt.state("c1")["pid"] == 0
    p = rt.run("kill", "c1", "TERM")
    assert p.returncode != 0 and b"container not running" in p.stderr
    rt.ok("delete", "c1")
    assert_nothing_left(rt, "c1")
    p = rt.run("state", "c1")
    assert p.returncode != 0 and b"container c1 does not exist" in p.stderr


def test_kill_signal_names_and_all(rt: Runtime, bundle: Path) -> None:
    # A PID 1 with a TERM handler: signals by name and number reach it.
    set_args(bundle, "sh", "-c", "trap 'echo got-usr1' USR1; trap 'exit 3' TERM; "
             "sleep 1000 & while :; do wait; done")
    rt.ok("create", "--bundle", str(bundle), "k1")
    out_file = rt.last_out
    pid = rt.state("k1")["pid"]
    rt.ok("start", "k1")
    wait_until(lambda: len(json.loads(rt.ok("ps", "--format", "json", "k1"))) == 2, "sleep")
    rt.ok("kill", "k1", "SIGUSR1")
    wait_until(lambda: b"got-usr1" in out_file.read_bytes(), "the USR1 trap")
    rt.ok("kill", "k1", "15")
    wait_until(lambda: rt.status("k1") == "stopped", "the end after TERM")
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3
    rt.ok("delete", "k1")
    assert_nothing_left(rt, "k1")
    # --all: every process of the group, not only the first
    set_args(bundle, "sh", "-c", "sleep 1000 & sleep 1000 & wait")
    rt.ok("create", "--bundle", str(bundle), "k2")
    pid = rt.state("k2")["pid"]
    rt.ok("start", "k2")
    wait_until(lambda: len(json.loads(rt.ok("ps", "--format", "json", "k2"))) == 3, "sleeps")
    rt.ok("kill", "--all", "k2", "KILL")
    wait_until(lambda: rt.status("k2") == "stopped", "the end after kill --all")
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9
    assert json.loads(rt.ok("ps", "--format", "json", "k2")) == []
    rt.ok("delete", "k2")
    assert_nothing_left(rt, "k2")
    p = rt.run("kill", "k1", "NOSUCHSIG")
    assert p.returncode == 2 and b"unknown signal" in p.stderr


def test_delete_created_and_force(rt: Runtime, bundle: Path) -> None:
    set_args(bundle, "sleep", "1000")
    rt.ok("create", "--bundle", str(bundle), "d1")
    pid = rt.state("d1")["pid"]
    rt.ok("delete", "d1")  # a created container is removed (its process killed), as runc does
    wait_until(lambda: not os.path.exists("/proc/%d/stat" % pid) or
               open("/proc/%d/stat" % pid).read().split(") ")[1][0] == "Z", "the kill")
    reap(pid)
    assert_nothing_left(rt, "d1")
    rt.ok("create", "--bundle", str(bundle), "d2")
    pid = rt.state("d2")["pid"]
    rt.ok("start", "d2")
    rt.ok("delete", "--force", "d2")
    reap(pid)
    assert_nothing_left(rt, "d2")
    rt.ok("delete", "--force", "never-made")  # --force on a missing id is not an error


def test_run_exit_status_and_streams(rt: Runtime, bundle: Path) -> None:
    set_args(bundle, "sh", "-c", "echo to-out; echo to-err >&2; exit 7")
    p = rt.run("run", "--bundle", str(bundle), "r1")
    assert p.returncode == 7
    assert p.stdout == b"to-out\n" and p.stderr == b"to-err\n"
    assert_nothing_left(rt, "r1")
    # killed from outside (a PID 1 ignores signals it has no handler for from inside)
    set_args(bundle, "sleep", "1000")
    with open(rt.out / "r2.out", "wb") as o:
        run = subprocess.Popen([rt.binary, "--root", str(rt.root), "run", "--bundle",
                                str(bundle), "r2"], stdin=subprocess.DEVNULL, stdout=o, stderr=o)
    wait_until(lambda: (rt.root / "r2" / "state.json").exists() and
               rt.run("state", "r2").returncode == 0 and rt.status("r2") == "running", "r2")
    rt.ok("kill", "r2", "KILL")
    assert run.wait(timeout=WAIT) == 128 + 9
    assert_nothing_left(rt, "r2")


def test_same_bundle_under_runc(rt: Runtime, bundle: Path, tmp_path: Path) -> None:
    """runc and vmcore-oci on one bundle: the same states in the same order, the same
    State keys, the same output."""
    runc = shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin")
    require(runc, "needs runc for the comparison")
    set_args(bundle, "sh", "-c", "echo $(hostname) $(id -u); exec sleep 1000")
    results = {}
    for name, binary in (("ours", rt.binary), ("runc", runc)):
        r = Runtime(binary, tmp_path / ("root-" + name), tmp_path / ("io-" + name))
        seen = []
        r.ok("create", "--bundle", str(bundle), "cmp")
        out_file = r.last_out
        st = r.state("cmp")
        seen.append(st["status"])
        keys = set(st)
        pid = st["pid"]
        r.ok("start", "cmp")
        seen.append(r.status("cmp"))
        wait_until(lambda: b"\n" in out_file.read_bytes(), name + "'s output")
        r.ok("kill", "cmp", "KILL")
        wait_until(lambda: r.status("cmp") == "stopped", name + " stopped")
        seen.append("stopped")
        reap(pid)
        r.ok("delete", "cmp")
        results[name] = (seen, keys, out_file.read_bytes())
    assert results["ours"][0] == results["runc"][0] == ["created", "running", "stopped"]
    assert results["runc"][1] - {"owner"} <= results["ours"][1]
    assert results["ours"][2] == results["runc"][2] == b"vmcore 0\n"


# --- config.json, field by field ---------------------------------------------------------

def run_out(rt: Runtime, bundle: Path, cid: str, *args: str) -> str:
    set_args(bundle, *args)
    p = rt.run("run", "--bundle", str(bundle), cid)
    assert p.returncode == 0, p.stderr.decode()
    assert_nothing_left(rt, cid)
    return p.stdout.decode()


def test_process_fields(rt: Runtime, bundle: Path) -> None:
    def f(c):
        c["process"]["env"] = ["PATH=/bin", "GREETING=hello"]
        c["process"]["cwd"] = "/tmp"
        c["process"]["user"] = {"uid": 1234, "gid": 4321}
        c["process"]["capabilities"] = {}
        c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 77, "hard": 88}]
        c["hostname"] = "oci-host"
        c["linux"]["sysctl"] = {"net.ipv4.ping_group_range": "0 0"}
    edit(bundle, f)
    out = run_out(rt, bundle, "p1", "sh", "-c",
                  "echo $GREETING $(pwd) $(id -u) $(id -g) $(hostname) $(ulimit -n) $(ulimit -Hn);"
                  " grep CapEff /proc/self/status; cat /proc/sys/net/ipv4/ping_group_range")
    lines = out.splitlines()
    assert lines[2].split() == ["0", "0"]
    assert lines[0] == "hello /tmp 1234 4321 oci-host 77 88"
    assert lines[1].split() == ["CapEff:", "0000000000000000"]


def test_capabilities(rt: Runtime, bundle: Path) -> None:
    caps = ["CAP_CHOWN", "CAP_KILL"]
    edit(bundle, lambda c: c["process"].__setitem__(
        "capabilities", {"bounding": caps, "effective": caps, "permitted": caps}))
    out = run_out(rt, bundle, "cap1", "grep", "-E", "^Cap(Eff|Bnd)", "/proc/self/status")
    want = "%016x" % ((1 << 0) | (1 << 5))
    assert [l.split()[1] for l in out.splitlines()] == [want, want]


def test_root_readonly_and_mounts(rt: Runtime, bundle: Path, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (share / "f").write_text("shared\n")

    def f(c):
        c["root"]["readonly"] = True
        c["mounts"] += [
            {"destination": "/data", "type": "bind", "source": str(share),
             "options": ["rbind", "ro", "nosuid", "nodev"]},
            {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "noexec", "mode=700", "size=1m"]},
        ]
    edit(bundle, f)
    out = run_out(rt, bundle, "m1", "sh", "-c",
                  "cat /data/f; touch /x 2>/dev/null || echo root-ro; "
                  "touch /data/y 2>/dev/null || echo data-ro; echo ok > /scratch/z && cat /scratch/z;"
                  " grep -E ' /(data|scratch|dev/mqueue) ' /proc/mounts")
    lines = out.splitlines()
    assert lines[:4] == ["shared", "root-ro", "data-ro", "ok"]
    opts = {l.split()[1]: l.split()[3].split(",") for l in lines[4:]}
    assert {"ro", "nosuid", "nodev"} <= set(opts["/data"])
    assert {"rw", "nosuid", "noexec"} <= set(opts["/scratch"]) and "size=1024k" in opts["/scratch"]
    assert "mode=700" in opts["/scratch"]
    assert {"nosuid", "nodev", "noexec"} <= set(opts["/dev/mqueue"])
    assert not (share / "y").exists()


def test_namespaces_and_masked_paths(rt: Runtime, bundle: Path) -> None:
    out = run_out(rt, bundle, "n1", "sh", "-c",
                  "echo $$; ls /sys/class/net; wc -c < /proc/keys; "
                  "echo 1 > /proc/sys/kernel/domainname 2>/dev/null || echo sys-ro")
    lines = out.splitlines()
    assert lines[0] == "1"                 # its own pid namespace
    assert lines[1:2] == ["lo"]            # "network": only loopback
    assert lines[2] == "0"                 # maskedPaths: /proc/keys
    assert lines[3] == "sys-ro"            # readonlyPaths: /proc/sys
    # without "network" the host's network namespace is shared
    edit(bundle, lambda c: c["linux"].__setitem__(
        "namespaces", [n for n in c["linux"]["namespaces"] if n["type"] != "network"]))
    out = run_out(rt, bundle, "n2", "readlink", "/proc/self/ns/net")
    assert out.strip() == os.readlink("/proc/self/ns/net")


def test_user_namespace_mappings(rt: Runtime, bundle: Path) -> None:
    # container root (host 200000) must reach the rootfs: a copy in a folder all may enter
    top = Path(tempfile.mkdtemp(prefix="vmcore-oci-userns-"))
    top.chmod(0o755)
    shutil.copytree(json.loads((bundle / "config.json").read_text())["root"]["path"],
                    top / "rootfs", symlinks=True)
    (top / "rootfs").chmod(0o755)

    def f(c):
        c["root"]["path"] = str(top / "rootfs")
        c["linux"]["namespaces"].append({"type": "user"})
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    edit(bundle, f)
    try:
        out = run_out(rt, bundle, "u1", "cat", "/proc/self/uid_map", "/proc/self/gid_map")
    finally:
        shutil.rmtree(top)
    assert [l.split() for l in out.splitlines()] == [["0", "200000", "65536"]] * 2


def test_resources(rt: Runtime, bundle: Path) -> None:
    set_args(bundle, "sleep", "1000")

    def f(c):
        c["linux"]["resources"]["memory"] = {"limit": 64 << 20}
        c["linux"]["resources"]["pids"] = {"limit": 32}
        c["linux"]["resources"]["cpu"] = {"quota": 50000, "period": 100000}
    edit(bundle, f)
    rt.ok("create", "--bundle", str(bundle), "res1")
    pid = rt.state("res1")["pid"]
    groups = json.loads((rt.root / "res1" / "state.json").read_text())["cgroup"]
    cg = groups["cgroups"]

    def read(key: str, v1: str, v2: str) -> str:
        d = cg["unified"] if groups["v2"] else cg[key]
        return Path(d, v2 if groups["v2"] else v1).read_text().strip()
    assert read("memory", "memory.limit_in_bytes", "memory.max") == str(64 << 20)
    assert read("pids", "pids.max", "pids.max") == "32"
    if groups["v2"]:
        assert read("cpu", "", "cpu.max") == "50000 100000"
    else:
        assert read("cpu", "cpu.cfs_quota_us", "") == "50000"
    rt.ok("delete", "--force", "res1")
    reap(pid)
    assert_nothing_left(rt, "res1")


def test_cgroups_path_cgroup_mount_umask(rt: Runtime, bundle: Path) -> None:
    """linux.cgroupsPath from the hierarchies' root, the container's own cgroups mounted
    read-only on /sys/fs/cgroup (its cgroup namespace: its limits at the top), umask."""
    parent = "vmcore-oci-test-%d" % os.getpid()

    def f(c):
        c["linux"]["cgroupsPath"] = "/%s/cg1" % parent
        c["linux"]["resources"]["pids"] = {"limit": 77}
        c["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
        c["process"]["user"]["umask"] = 0o027
    edit(bundle, f)
    set_args(bundle, "sh", "-c", "umask; cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max "
             "2>/dev/null; mkdir /sys/fs/cgroup/x 2>/dev/null || echo cg-ro; exec sleep 1000")
    rt.ok("create", "--bundle", str(bundle), "cg1")
    out_file = rt.last_out
    pid = rt.state("cg1")["pid"]
    groups = cgroup_dirs(rt.root, "cg1")
    assert groups and all(g.endswith("/%s/cg1" % parent) for g in groups)
    rt.ok("start", "cg1")
    wait_until(lambda: b"cg-ro" in out_file.read_bytes(), "the output")
    assert out_file.read_bytes().decode().split() == ["0027", "77", "cg-ro"]
    rt.ok("delete", "--force", "cg1")
    reap(pid)
    assert not any(os.path.exists(g) for g in groups)
    for g in groups:  # the folder above stays (shared); ours to remove here
        try:
            os.rmdir(os.path.dirname(g))
        except FileNotFoundError:
            pass
    assert_nothing_left(rt, "cg1")


def test_annotations_in_state(rt: Runtime, bundle: Path) -> None:
    set_args(bundle, "sleep", "1000")
    edit(bundle, lambda c: c.__setitem__("annotations", {"org.example/k": "v"}))
    rt.ok("create", "--bundle", str(bundle), "a1")
    pid = rt.state("a1")["pid"]
    assert rt.state("a1")["annotations"] == {"org.example/k": "v"}
    rt.ok("delete", "a1")
    reap(pid)
    assert_nothing_left(rt, "a1")


def recv_fd(sock: socket.socket) -> int:
    conn, _ = sock.accept()
    with conn:
        fds = array.array("i")
        _, anc, _, _ = conn.recvmsg(64, socket.CMSG_LEN(fds.itemsize))
        for level, kind, data in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[:fds.itemsize])
        assert len(fds) == 1
        return fds[0]


def test_terminal_console_socket(rt: Runtime, bundle: Path, tmp_path: Path) -> None:
    def f(c):
        c["process"]["terminal"] = True
        c["process"]["consoleSize"] = {"height": 33, "width": 99}
        c["process"]["args"] = ["sh", "-c", "tty; stty size; read line; echo got $line"]
    edit(bundle, f)
    path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(WAIT)
    rt.ok("create", "--bundle", str(bundle), "--console-socket", path, "t1")
    master = recv_fd(srv)
    srv.close()
    pid = rt.state("t1")["pid"]
    rt.ok("start", "t1")
    os.write(master, b"abc\n")
    data = b""
    deadline = time.monotonic() + WAIT
    while b"got abc" not in data and time.monotonic() < deadline:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the slave side closed
            break
        data += chunk
    os.close(master)
    text = data.decode(errors="replace").replace("\r", "")
    # `tty` names the terminal: the library binds it on /dev/console too
    # (the terminal echoes what we typed, maybe before the first lines)
    assert {"/dev/console", "/dev/pts/0"} & set(text.split("\n"))
    assert "33 99" in text and "got abc" in text
    wait_until(lambda: rt.status("t1") == "stopped", "the end")
    reap(pid)
    rt.ok("delete", "t1")
    assert_nothing_left(rt, "t1")


# --- bad input: an error naming what, a non-zero exit, nothing left ------------------------

def refused(rt: Runtime, bundle: Path, cid: str, want: str, *extra: str) -> None:
    p = rt.run("create", "--bundle", str(bundle), *extra, cid)
    assert p.returncode == 1, p.stderr.decode()
    assert want in p.stderr.decode(), p.stderr.decode()
    assert_nothing_left(rt, cid)


@pytest.mark.parametrize("change, want", [
    (lambda c: c.__setitem__("ociVersion", "2.0.0"), "ociVersion: \"2.0.0\" is not supported"),
    (lambda c: c["linux"].__setitem__("seccomp", {"defaultAction": "SCMP_ACT_ALLOW"}),
     "config.json: linux.seccomp: not supported by vmcore-oci yet"),
    (lambda c: c.__setitem__("hooks", {"prestart": [{"path": "/bin/true"}]}),
     "config.json: hooks.prestart: not supported by vmcore-oci yet"),
    (lambda c: c["mounts"].append({"destination": "tmp", "type": "tmpfs", "source": "t"}),
     "mounts[6].destination: \"tmp\" must be an absolute path"),
    (lambda c: c["mounts"].append({"destination": "/a/../../etc", "type": "tmpfs"}),
     "mounts[6].destination: \"/a/../../etc\" must be an absolute path without \"..\""),
    (lambda c: c["mounts"].append({"destination": "/x", "type": "tmpfs", "options": ["lazytime"]}),
     "mounts[6].options[0]: \"lazytime\" is not supported"),
    (lambda c: c["mounts"].append({"destination": "/x", "type": "nfs", "source": "h:/x"}),
     "mounts[6].type: \"nfs\" is not supported"),
    (lambda c: c["mounts"].append({"destination": "/proc", "type": "tmpfs"}),
     "mounts[6].type: /proc is always the library's own proc mount"),
    (lambda c: c["process"].__setitem__("noNewPrivileges", False), "process.noNewPrivileges"),
    (lambda c: c["process"]["user"].__setitem__("additionalGids", [5]),
     "process.user.additionalGids: not supported"),
    (lambda c: c["process"].__setitem__("selinuxLabel", "system_u:system_r:x"),
     "process.selinuxLabel: not supported"),
    (lambda c: c["linux"]["namespaces"].append({"type": "ipc", "path": "/proc/1/ns/ipc"}),
     "linux.namespaces[6].path: joining an existing namespace is not supported"),
    (lambda c: c["linux"].__setitem__("namespaces", [{"type": "mount"}]),
     "linux.namespaces: sharing the host's pid namespace is not supported"),
    (lambda c: c["linux"]["resources"].__setitem__("cpu", {"shares": 512}),
     "linux.resources.cpu.shares: not supported"),
    (lambda c: c["linux"].__setitem__("maskedPaths", ["/etc/shadow"]),
     "linux.maskedPaths[0]: \"/etc/shadow\" is not supported"),
    (lambda c: c["linux"].__setitem__("cgroupsPath", "system.slice:vmcore:x"),
     "linux.cgroupsPath: \"system.slice:vmcore:x\": systemd's slice:prefix:name form"),
    (lambda c: c["linux"].__setitem__("cgroupsPath", "/a/../b"), "detach.cgroup"),
    (lambda c: c["process"]["user"].__setitem__("umask", 4096), "process.user.umask"),
    (lambda c: c["linux"].__setitem__("sysctl", {"kernel.hostname": "x"}),
     "sysctl.kernel.hostname: not a parameter of the container's own namespaces"),
    (lambda c: c["process"].__setitem__("args", ["/bin/nonexistent"]), "process.args[0]"),
    (lambda c: c.__delitem__("process"), "config.json: process: missing (required)"),
])
def test_config_refused(rt: Runtime, bundle: Path, change, want: str) -> None:
    edit(bundle, change)
    refused(rt, bundle, "bad1", want)


def test_malformed_and_huge_config(rt: Runtime, bundle: Path) -> None:
    (bundle / "config.json").write_text('{"ociVersion": "1.1.0", "process": ')
    refused(rt, bundle, "bad2", str(bundle / "config.json") + ": line 1")
    (bundle / "config.json").write_text('{"a": 1, "a": 2}')
    refused(rt, bundle, "bad3", "duplicate object key")
    with open(bundle / "config.json", "w") as f:
        f.write('{"ociVersion": "1.1.0", "x": "' + "y" * (5 << 20) + '"}')
    refused(rt, bundle, "bad4", "is too large (at most 4194304)")
    (bundle / "config.json").unlink()
    refused(rt, bundle, "bad5", "config.json: No such file or directory")


def test_console_socket_not_a_socket(rt: Runtime, bundle: Path, tmp_path: Path) -> None:
    edit(bundle, lambda c: c["process"].__setitem__("terminal", True))
    plain = tmp_path / "plain"
    plain.write_text("")
    refused(rt, bundle, "bad6", "--console-socket %s: not a socket" % plain,
            "--console-socket", str(plain))
    refused(rt, bundle, "bad7", "--console-socket is required")


def test_ids(rt: Runtime, bundle: Path) -> None:
    set_args(bundle, "sleep", "1000")
    rt.ok("create", "--bundle", str(bundle), "dup")
    pid = rt.state("dup")["pid"]
    p = rt.run("create", "--bundle", str(bundle), "dup")
    assert p.returncode == 1 and b"container with id exists: dup" in p.stderr
    assert rt.status("dup") == "created"  # the first one is untouched
    rt.ok("delete", "dup")
    reap(pid)
    assert_nothing_left(rt, "dup")
    for bad in ("../x", "a/b", ""):
        p = rt.run("create", "--bundle", str(bundle), bad)
        assert p.returncode != 0 and (b"invalid container id" in p.stderr or b"missing" in p.stderr)
    for cmd in ("start", "state", "kill", "delete", "pause", "resume", "ps"):
        p = rt.run(cmd, "nope")
        assert p.returncode == 1 and p.stderr == b"vmcore-oci: container nope does not exist\n", cmd
    p = rt.run("state")
    assert p.returncode == 2 and b"missing the container id" in p.stderr


def test_log_file_formats(rt: Runtime, tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    p = rt.run("state", "nope", log=["--log", str(log), "--log-format", "json"])
    assert p.returncode == 1
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and entry["msg"] == "container nope does not exist"
    assert entry["time"].endswith("Z")
    text = tmp_path / "log.txt"
    rt.run("state", "nope", log=["--log", str(text)])
    assert 'level=error msg="container nope does not exist"' in text.read_text()
    p = rt.run("state", "nope", log=["--log-format", "xml"])
    assert p.returncode == 2 and b"--log-format must be text or json" in p.stderr


def test_global_flags_spec_features(rt: Runtime, tmp_path: Path) -> None:
    p = rt.run("--systemd-cgroup", "state", "x")
    assert p.returncode == 1 and b"--systemd-cgroup: not supported" in p.stderr
    assert b"vmcore-oci version" in rt.run("--version").stdout
    feats = json.loads(rt.ok("features"))
    assert feats["ociVersionMax"] == "1.1.0"
    assert "user" in feats["linux"]["namespaces"]
    assert feats["linux"]["seccomp"]["enabled"] is False
    b = tmp_path / "b"
    b.mkdir()
    rt.ok("spec", "--bundle", str(b))
    p = rt.run("spec", "--bundle", str(b))
    assert p.returncode == 1 and b"exists" in p.stderr
    for flag in ("--no-pivot", "--preserve-fds=1"):
        p = rt.run("create", "--bundle", str(b), flag, "f1")
        assert p.returncode == 1 and flag.split("=")[0].encode() in p.stderr
        assert_nothing_left(rt, "f1")
