"""examples/python/sandbox.py runs as documented."""

from conftest import SOURCE_DIR, run_python

SANDBOX = str(SOURCE_DIR / "examples" / "python" / "sandbox.py")


def test_sandbox_runs_a_command_unprivileged_and_read_only(container):
    r = run_python(SANDBOX, "echo hello; id -u; touch /x || echo read-only >&2; exit 3")
    assert r.returncode == 3
    assert r.stdout == b"hello\n65534\n"
    assert b"read-only\n" in r.stderr
    assert b"sandbox: " in r.stderr


def test_sandbox_kills_a_silent_command(container):
    r = run_python(SANDBOX, "--timeout", "0.5", "sleep 1000")
    assert r.returncode == 137
    assert b"killing it" in r.stderr


def test_sandbox_timeout_is_a_run_limit(container):
    # A command that prints all the time is killed too: --timeout bounds the run, not the
    # silence (it used to be an idle limit: this one ran until ctest's timeout).
    r = run_python(SANDBOX, "--timeout", "1", "while :; do echo busy; done")
    assert r.returncode == 137
    assert b"busy\n" in r.stdout
    assert b"killing it" in r.stderr
