"""Loading libvmcore.so and declaring its C ABI for ctypes.

The library is looked up, in order, at ``$VMCORE_LIBRARY``, next to this package
(``vmcore/`` itself, then the folder that holds it), in the library folder of the
installation this package came from (``cmake --install`` records it in ``_installed.py``)
and through the system loader.
Loading happens on first use, so ``import vmcore`` never fails for want of the library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import (CFUNCTYPE, POINTER, Structure, Union, c_char, c_char_p, c_int, c_size_t,
                    c_uint, c_uint64, c_void_p)
from pathlib import Path
from typing import List, Optional

#: The ABI major version (SONAME) these bindings were written against.
ABI_MAJOR = 0

STATS_VERSION = 2
PROBE_RESULT_VERSION = 1

RUN_DEFAULT, RUN_ONCE, RUN_NOWAIT = 0, 1, 2

_SONAME = "libvmcore.so.%d" % ABI_MAJOR


class LibraryNotFound(ImportError):
    """libvmcore.so could not be located or loaded."""


# --- Structures mirroring include/vmcore/*.h ----------------------------------------------

class CStats(Structure):
    _fields_ = [
        ("version", c_uint),
        ("cpu_time_ns", c_uint64),
        ("memory_bytes", c_uint64),
        ("pids", c_uint64),
        ("exits", c_uint64),
        ("instructions", c_uint64),
        ("tcache_hits", c_uint64),
        ("tcache_misses", c_uint64),
        ("jit_blocks", c_uint64),
        ("net_rx_bytes", c_uint64),
        ("net_rx_packets", c_uint64),
        ("net_tx_bytes", c_uint64),
        ("net_tx_packets", c_uint64),
    ]


class CProbeResult(Structure):
    _fields_ = [
        ("version", c_uint),
        ("backend", c_char * 16),
        ("available", c_int),
        ("flags", c_uint),
        ("reason", c_char * 256),
        ("details", c_char * 512),
    ]


class CExit(Structure):
    _fields_ = [
        ("kind", c_int),
        ("status", c_int),
        ("signal", c_int),
        ("reason", c_char_p),
    ]


class _CEventState(Structure):
    _fields_ = [("old_state", c_int), ("new_state", c_int)]


class _CEventConsole(Structure):
    # `data` is not NUL-terminated: keep it a raw pointer and read `len` bytes.
    _fields_ = [("stream", c_int), ("data", c_void_p), ("len", c_size_t)]


class _CEventError(Structure):
    _fields_ = [("code", c_int), ("message", c_char_p)]


class _CEventUnion(Union):
    _fields_ = [
        ("state", _CEventState),
        ("console", _CEventConsole),
        ("exit", CExit),
        ("error", _CEventError),
    ]


class CEvent(Structure):
    _fields_ = [("type", c_int), ("domain", c_void_p), ("u", _CEventUnion)]


# Callback signatures. The `arg` pointer carries an integer token (never a Python object),
# so a late or duplicate call from C can never touch freed memory: unknown tokens are ignored.
DOMAIN_CB = CFUNCTYPE(None, c_void_p, c_int, c_void_p)
CLOSE_CB = CFUNCTYPE(None, c_void_p, c_void_p)
EXEC_CB = CFUNCTYPE(None, c_void_p, c_int, POINTER(CExit), c_void_p)
EVENT_CB = CFUNCTYPE(None, POINTER(CEvent), c_void_p)

_P = c_void_p  # opaque handles

_PROTOTYPES = {
    "vmcore_version_string": (c_char_p, []),
    "vmcore_version": (c_uint, []),
    "vmcore_strerror": (c_char_p, [c_int]),
    "vmcore_error_name": (c_char_p, [c_int]),
    "vmcore_ctx_new": (c_int, [POINTER(_P), c_void_p]),
    "vmcore_ctx_free": (c_int, [_P]),
    "vmcore_ctx_loop": (c_void_p, [_P]),
    "vmcore_ctx_run": (c_int, [_P, c_int]),
    "vmcore_ctx_backend_fd": (c_int, [_P]),
    "vmcore_ctx_backend_timeout": (c_int, [_P]),
    "vmcore_ctx_last_error": (c_char_p, [_P]),
    "vmcore_ctx_last_error_path": (c_char_p, [_P]),
    "vmcore_probe": (c_int, [c_char_p, POINTER(CProbeResult)]),
    "vmcore_backend_names": (POINTER(c_char_p), []),
    "vmcore_state_name": (c_char_p, [c_int]),
    "vmcore_exit_code": (c_int, [POINTER(CExit)]),
    "vmcore_domain_new_json": (c_int, [POINTER(_P), _P, c_char_p]),
    "vmcore_domain_new_file": (c_int, [POINTER(_P), _P, c_char_p]),
    "vmcore_domain_new_jansson": (c_int, [POINTER(_P), _P, c_void_p, c_char_p]),
    "vmcore_domain_start": (c_int, [_P, DOMAIN_CB, c_void_p]),
    "vmcore_domain_pause": (c_int, [_P, DOMAIN_CB, c_void_p]),
    "vmcore_domain_resume": (c_int, [_P, DOMAIN_CB, c_void_p]),
    "vmcore_domain_shutdown": (c_int, [_P, c_uint64, DOMAIN_CB, c_void_p]),
    "vmcore_domain_kill": (c_int, [_P, DOMAIN_CB, c_void_p]),
    "vmcore_domain_save": (c_int, [_P, c_char_p, ctypes.c_uint, DOMAIN_CB, c_void_p]),
    "vmcore_domain_new_restore": (c_int, [POINTER(_P), _P, c_char_p, c_char_p]),
    "vmcore_domain_close": (None, [_P, CLOSE_CB, c_void_p]),
    "vmcore_domain_state": (c_int, [_P]),
    "vmcore_domain_exit": (c_int, [_P, POINTER(CExit)]),
    "vmcore_domain_backend": (c_char_p, [_P]),
    "vmcore_domain_name": (c_char_p, [_P]),
    "vmcore_domain_stats": (c_int, [_P, POINTER(CStats)]),
    "vmcore_domain_console_write": (c_int, [_P, c_void_p, c_size_t]),
    "vmcore_domain_resize_console": (c_int, [_P, c_uint, c_uint]),
    "vmcore_domain_exec": (c_int, [_P, POINTER(c_char_p), EXEC_CB, c_void_p]),
    "vmcore_domain_subscribe": (c_int, [_P, c_uint, EVENT_CB, c_void_p]),
    "vmcore_domain_unsubscribe": (c_int, [_P, c_int]),
    "vmcore_domain_last_error": (c_char_p, [_P]),
    "vmcore_domain_ctx": (c_void_p, [_P]),
}

_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_jansson: Optional[ctypes.CDLL] = None


def candidates() -> List[str]:
    """The places :func:`get` tries, in order (for error messages and debugging)."""
    out: List[str] = []
    env = os.environ.get("VMCORE_LIBRARY")
    if env:
        out.append(env)
    here = Path(__file__).resolve().parent
    folders = [here, here.parent]
    try:
        from . import _installed  # only in an installed copy of the package
        folders.append((here / _installed.LIBDIR).resolve())
    except (ImportError, AttributeError, TypeError, OSError):
        pass
    for folder in folders:
        for name in (_SONAME, "libvmcore.so"):
            if (folder / name).exists():
                out.append(str(folder / name))
    out.append(_SONAME)
    found = ctypes.util.find_library("vmcore")
    if found:
        out.append(found)
    return list(dict.fromkeys(out))  # in order, without repeats


def _load() -> ctypes.CDLL:
    env = os.environ.get("VMCORE_LIBRARY")
    errors = []
    for path in candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            if env and path == env:
                # An explicit choice that fails is an error, not a cue to try others.
                raise LibraryNotFound("VMCORE_LIBRARY=%s cannot be loaded: %s" % (env, e)) from e
            errors.append("%s: %s" % (path, e))
            continue
        _declare(lib)
        major = lib.vmcore_version() // 10000
        if major != ABI_MAJOR:
            raise LibraryNotFound("%s has ABI version %d; these bindings need %d"
                                  % (path, major, ABI_MAJOR))
        return lib
    raise LibraryNotFound("libvmcore.so not found (set VMCORE_LIBRARY to its path); tried: "
                          + "; ".join(errors))


def _declare(lib: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as e:
            raise LibraryNotFound("%s lacks the symbol %s" % (lib._name, name)) from e
        fn.restype = restype
        fn.argtypes = argtypes


def get() -> ctypes.CDLL:
    """The loaded library (loaded on first call). Raises :class:`LibraryNotFound`."""
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                _lib = _load()
    return _lib


def jansson() -> ctypes.CDLL:
    """libjansson, already mapped into the process by libvmcore (for base_dir creation)."""
    global _jansson
    get()
    if _jansson is None:
        with _lock:
            if _jansson is None:
                j = ctypes.CDLL(ctypes.util.find_library("jansson") or "libjansson.so.4")
                j.json_loadb.restype = c_void_p
                j.json_loadb.argtypes = [c_char_p, c_size_t, c_size_t, c_void_p]
                j.json_delete.restype = None
                j.json_delete.argtypes = [c_void_p]
                _jansson = j
    return _jansson


def text(value: Optional[bytes]) -> str:
    """Decode a C string the library returned ("" for NULL)."""
    return value.decode("utf-8", "replace") if value else ""
