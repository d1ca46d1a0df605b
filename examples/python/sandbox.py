#!/usr/bin/env python3
"""Run a shell command in a locked-down throw-away container and report what it did.

    sudo python3 sandbox.py 'echo hello; id; ls /'
    sudo python3 sandbox.py --timeout 2 'while :; do echo busy; done'  # killed after 2 s

The root file system is a static busybox copied into a temporary folder (or --rootfs DIR),
mounted read-only; the process gets no network, 64 MiB of memory, 32 processes and half a
CPU, and is killed if it runs longer than --timeout seconds (a run limit: output does not
extend it). Needs root and the libvmcore
container backend (`python3 -m vmcore probe container` says whether it can run here).
Copy this file and change run_sandboxed() to taste.
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import vmcore


def make_busybox_rootfs(root: Path) -> None:
    """A minimal root file system: busybox, a link per applet, the usual empty folders."""
    busybox = shutil.which("busybox", path="/bin:/usr/bin")
    if busybox is None:
        raise SystemExit("sandbox: needs a static busybox (Debian: apt-get install busybox-static)")
    root.chmod(0o755)  # mkdtemp() makes it 0700: the unprivileged user must enter it
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc"):
        (root / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, root / "bin" / "busybox")
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")


class RunLimit(Exception):
    """The command ran past its --timeout."""


def chunks_until(console, deadline: float):
    """The console's (stream, data) chunks until the domain ends, or RunLimit at @deadline
    (time.monotonic()). chunks(timeout=) bounds each wait, so each wait gets what is left."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RunLimit()
        try:
            item = next(console.chunks(timeout=left), None)
        except vmcore.Timeout:
            raise RunLimit() from None
        if item is None:
            return
        yield item


def run_sandboxed(rootfs: Path, command: str, timeout: float) -> int:
    """Run @command with /bin/sh in a container on @rootfs; stream its output; kill it once
    it has run @timeout seconds; return the shell-style exit status (128 + signal if it was
    killed)."""
    config = {
        "name": "sandbox",
        "backend": "container",
        "rootfs": str(rootfs),
        "rootfs_readonly": True,
        "hostname": "sandbox",
        "process": {
            "args": ["/bin/sh", "-c", command],
            "env": ["PATH=/bin", "HOME=/"],
            "uid": 65534,
            "gid": 65534,
        },
        "limits": {"memory_bytes": 64 << 20, "pids": 32, "cpus": 0.5},
        "network": {"mode": "none"},
    }
    with vmcore.Context() as ctx:
        try:
            domain = ctx.create(config)
        except vmcore.ConfigError as e:
            raise SystemExit("sandbox: bad configuration at %s: %s" % (e.path, e))
        except vmcore.BackendUnavailable as e:
            raise SystemExit("sandbox: containers cannot run here: %s" % e.reason)
        domain.start()
        try:
            # Output streams as it arrives; this returns when the process has ended.
            for stream, data in chunks_until(domain.console, time.monotonic() + timeout):
                out = sys.stderr if stream == vmcore.Stream.STDERR else sys.stdout
                out.buffer.write(data)
                out.flush()
        except RunLimit:
            print("sandbox: still running after %gs: killing it" % timeout, file=sys.stderr)
            domain.kill()
        exit = domain.wait()
        cpu = domain.stats.cpu_time_ns / 1e9
        print("sandbox: %s; %.3f s of CPU" % (exit.reason or "status %d" % exit.code, cpu),
              file=sys.stderr)
        return exit.code


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", help="shell command to run inside the sandbox")
    p.add_argument("--rootfs", type=Path, help="root file system (default: a busybox one)")
    p.add_argument("--timeout", type=float, default=30.0,
                   help="kill the command once it has run this many seconds (default 30)")
    args = p.parse_args()
    if args.rootfs:
        return run_sandboxed(args.rootfs, args.command, args.timeout)
    with tempfile.TemporaryDirectory(prefix="vmcore-sandbox-") as tmp:
        make_busybox_rootfs(Path(tmp))
        return run_sandboxed(Path(tmp), args.command, args.timeout)


if __name__ == "__main__":
    sys.exit(main())
