#!/usr/bin/python3
"""ctest `bench_selftest`: the bench harness still works (behaviour only, no timing checks).

- the compute guest computes under Unicorn the checksum the host build of the same work.o
  prints (the guest is sound x86 code and the Unicorn harness maps it right);
- rawkvm sees exactly N+2 exits for N loop iterations (skipped without /dev/kvm);
- bench_vmcore probe answers with JSON for every backend, and rejects an unknown one;
- bench/run parses its options.
Exit 77 = skipped (ctest SKIP_RETURN_CODE).
"""
import errno
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    bdir = sys.argv[1]
    guests = os.path.join(bdir, "guests")
    failures = []

    try:
        host = subprocess.run([os.path.join(guests, "compute-host-small")], capture_output=True,
                              text=True)
        if host.returncode != 0 or not host.stdout.startswith("checksum "):
            failures.append("host build: %r" % host.stdout)
        expect = host.stdout
    except OSError as e:
        if e.errno != errno.ENOEXEC:
            raise
        # A kernel without IA32 emulation cannot run the 32-bit host build: then Unicorn's
        # run is only checked for a checksum line, not against the host's value.
        print("selftest: this kernel cannot run 32-bit programs, host build check skipped")
        expect = None
    try:
        import unicorn  # noqa: F401
        r = subprocess.run([sys.executable, os.path.join(HERE, "unicorn_run.py"),
                            os.path.join(guests, "compute-small.elf")], capture_output=True,
                           text=True)
        got = json.loads(r.stdout)
        if got["status"] != 0 or not got["console"].startswith("checksum ") or \
                (expect is not None and got["console"] != expect):
            failures.append("unicorn: %r, host build: %r" % (got, expect))
    except ImportError:
        print("selftest: python3-unicorn missing, Unicorn check skipped")

    if os.access("/dev/kvm", os.R_OK | os.W_OK):
        r = subprocess.run([os.path.join(bdir, "rawkvm"), "--runs", "2", "--exits", "1000"],
                           capture_output=True, text=True)
        lines = [json.loads(l) for l in r.stdout.splitlines()]
        if r.returncode != 0 or len(lines) != 2 or any(l["exits"] != 1002 for l in lines):
            failures.append("rawkvm: rc %d, %r %r" % (r.returncode, lines, r.stderr))
    else:
        print("selftest: no /dev/kvm, rawkvm check skipped")

    bv = os.path.join(bdir, "bench_vmcore")
    for backend in ("kvm", "emu", "container"):
        r = subprocess.run([bv, "probe", backend], capture_output=True, text=True)
        p = json.loads(r.stdout)
        if r.returncode != 0 or p["backend"] != backend or p["available"] not in (0, 1) or \
                (not p["available"] and not p["reason"]):
            failures.append("probe %s: %r" % (backend, r.stdout))
    r = subprocess.run([bv, "probe", "nonesuch"], capture_output=True, text=True)
    if json.loads(r.stdout)["code"] != "VMCORE_EINVAL":
        failures.append("probe nonesuch: %r" % r.stdout)
    r = subprocess.run([bv, "run"], capture_output=True, text=True)
    if r.returncode != 2 or "usage" not in r.stderr:
        failures.append("bench_vmcore without a config: rc %d" % r.returncode)

    r = subprocess.run([sys.executable, os.path.join(HERE, "run"), "--help"], capture_output=True,
                       text=True)
    if r.returncode != 0 or "--quick" not in r.stdout:
        failures.append("bench/run --help: rc %d" % r.returncode)

    for f in failures:
        print("selftest FAIL: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
