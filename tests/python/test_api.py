"""The library-wide API: loading, version, probe, error mapping, context lifetime."""

import asyncio
import json

import pytest

import vmcore
from vmcore import _lib, errors

from conftest import count_fds, count_threads


def test_version_matches_the_loaded_library():
    assert vmcore.version().split(".")[0] == str(_lib.ABI_MAJOR)
    assert vmcore.version() == "%d.%d.%d" % tuple(int(x) for x in vmcore.version().split("."))


def test_backend_names_and_probe_every_backend():
    names = vmcore.backend_names()
    assert {"kvm", "emu", "container"} <= set(names)
    results = vmcore.probe()
    assert list(results) == names
    for name, r in results.items():
        assert r.backend == name
        assert isinstance(r.flags, vmcore.ProbeFlags)
        assert bool(r) == r.available
        # an unavailable backend always says why; an available one never has a reason
        assert (r.reason != "") == (not r.available)


def test_probe_auto_and_unknown_backend():
    assert isinstance(vmcore.probe("auto"), vmcore.ProbeResult)
    with pytest.raises(vmcore.InvalidArgument) as e:
        vmcore.probe("nosuch")
    assert e.value.code == errors.EINVAL
    assert isinstance(e.value, ValueError)


def test_every_error_code_has_a_class_and_a_description():
    for code in range(errors.EPARSE, errors.OK):
        exc = errors.make_error(code, "")
        assert exc.code == code
        assert exc.name == errors.error_name(code) == _lib.text(_lib.get().vmcore_error_name(code))
        assert str(exc) == vmcore.strerror(code) != "unknown error"
        assert type(exc) is not vmcore.VmcoreError
    assert issubclass(vmcore.NotFound, FileNotFoundError)
    assert issubclass(vmcore.NotFound, vmcore.ConfigError)
    assert issubclass(vmcore.PermissionDenied, PermissionError)
    assert issubclass(vmcore.Timeout, TimeoutError)


@pytest.mark.parametrize("config, exc, path, text", [
    ({"name": 3}, vmcore.ConfigError, "name", "expected a string"),
    ({"nosuchkey": 1}, vmcore.ConfigError, "nosuchkey", ""),
    ({"backend": "container", "rootfs": "/", "process": {"args": [1]}},
     vmcore.ConfigError, "process.args[0]", ""),
    ({"boot": {"kernel": "/nonexistent/vmlinuz"}}, vmcore.NotFound, "boot.kernel",
     "/nonexistent/vmlinuz"),
    ({"memory_mib": 1 << 40, "boot": {"kernel": "/bin/sh"}}, vmcore.LimitError, "memory_mib", ""),
])
def test_bad_config_raises_with_its_json_path(ctx, config, exc, path, text):
    with pytest.raises(exc) as e:
        ctx.create(config)
    assert type(e.value) is exc
    assert e.value.path == path
    assert e.value.message.startswith(path + ":")
    assert text in e.value.message
    assert not ctx.domains


def test_malformed_json_text_is_a_parse_error(ctx):
    with pytest.raises(vmcore.ParseError) as e:
        ctx.create('{"name": ')
    assert e.value.path is None
    assert "line 1" in e.value.message
    assert isinstance(e.value, vmcore.ConfigError)


def test_config_file_errors(ctx, tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(vmcore.NotFound) as e:
        ctx.create(missing)
    assert str(missing) in e.value.message
    assert isinstance(e.value, FileNotFoundError)

    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "name": "y"}')  # duplicate keys are rejected
    with pytest.raises(vmcore.ParseError) as e:
        ctx.create(str(bad))
    assert str(bad) in e.value.message

    rel = tmp_path / "rel.json"  # relative paths resolve against the file's folder
    rel.write_text(json.dumps({"boot": {"kernel": "nope.bin"}}))
    with pytest.raises(vmcore.NotFound) as e:
        ctx.create(rel)
    assert e.value.path == "boot.kernel"
    assert str(tmp_path / "nope.bin") in e.value.message


def test_base_dir_resolves_relative_paths(ctx, tmp_path):
    with pytest.raises(vmcore.NotFound) as e:
        ctx.create({"boot": {"kernel": "k.bin"}}, base_dir=str(tmp_path))
    assert str(tmp_path / "k.bin") in e.value.message
    with pytest.raises(vmcore.ParseError):  # the library's parser reports bad text
        ctx.create(b'{"boot": ', base_dir=str(tmp_path))
    with pytest.raises(TypeError):
        ctx.create(tmp_path / "x.json", base_dir=str(tmp_path))


def test_wrong_config_types(ctx):
    with pytest.raises(TypeError):
        ctx.create(42)
    with pytest.raises(ValueError):
        ctx.create({"memory_mib": float("nan")})


def test_unavailable_backend_raises_backend_unavailable(ctx, tmp_path):
    kernel = tmp_path / "k.bin"
    kernel.write_bytes(b"\xf4")
    unavailable = [n for n in ("kvm", "emu") if not vmcore.probe(n).available]
    if not unavailable:
        pytest.skip("every VM backend is available here")
    name = unavailable[0]
    with pytest.raises(vmcore.BackendUnavailable) as e:
        ctx.create({"backend": name, "boot": {"kernel": str(kernel)}})
    assert vmcore.probe(name).reason in e.value.reason
    assert e.value.code == errors.EUNAVAIL


def test_closed_context_refuses_work():
    c = vmcore.Context()
    c.close()
    c.close()  # idempotent
    with pytest.raises(vmcore.ClosedError):
        c.create({"name": "x"})
    with pytest.raises(vmcore.ClosedError):
        c.backend_fd


def test_many_contexts_and_failed_creates_leak_nothing():
    def cycle():
        with vmcore.Context() as c:
            for _ in range(5):
                with pytest.raises(vmcore.ConfigError):
                    c.create({"name": 3})
    cycle()  # warm up lazily created state (the library, the trampolines)
    fds, threads = count_fds(), count_threads()
    for _ in range(200):
        cycle()
    assert count_fds() == fds
    assert count_threads() == threads


def test_async_context_reports_config_errors_too():
    async def main():
        async with vmcore.AsyncContext() as c:
            with pytest.raises(vmcore.ConfigError) as e:
                c.create({"process": {"args": "echo"}})
            return e.value.path, c
    path, c = asyncio.run(main())
    assert path == "process"
    assert c.closed


def test_blocking_and_async_flavours_do_not_mix():
    with vmcore.Context() as c:
        with pytest.raises(TypeError):
            asyncio.run(c._until(lambda: True))

    async def main():
        async with vmcore.AsyncContext() as c:
            with pytest.raises(TypeError):
                c._run_until(lambda: False)
    asyncio.run(main())
