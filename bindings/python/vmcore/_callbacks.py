"""The four C callback trampolines and the token registry behind them.

C never holds a pointer to a Python object: every callback's ``arg`` is an integer token
looked up here, and the trampolines are module-level objects that live as long as the
interpreter, so the library can call them at any time without touching freed memory.
One-shot callbacks (completion, close, exec) remove their token when they fire; an unknown
token (a late or duplicate call) is ignored.

The registered Python functions are internal and report user exceptions themselves; what
escapes them anyway is caught here: Exceptions go to sys.excepthook, and a
KeyboardInterrupt or SystemExit raised while C code was running is kept and re-raised by
:func:`reraise_deferred` once control is back in Python.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any, Callable, Dict, List, Optional

from . import _lib

_registry: Dict[int, Callable[..., None]] = {}
_tokens = itertools.count(1)  # 0 would arrive as NULL
_deferred: List[BaseException] = []


def register(fn: Callable[..., None]) -> int:
    """Keep @fn reachable from C; returns the token to pass as ``arg``."""
    token = next(_tokens)
    _registry[token] = fn
    return token


def unregister(token: int) -> None:
    _registry.pop(token, None)


def pending() -> int:
    """How many callbacks C may still call (for leak tests)."""
    return len(_registry)


def _call(fn: Optional[Callable[..., None]], *args: Any) -> None:
    if fn is None:
        return
    try:
        fn(*args)
    except Exception:  # a bug in the bindings: never let it unwind into C
        sys.excepthook(*sys.exc_info())
    except BaseException as e:  # KeyboardInterrupt, SystemExit: raise once back in Python
        _deferred.append(e)


def reraise_deferred() -> None:
    """Raise the first KeyboardInterrupt/SystemExit caught inside a callback, if any."""
    if _deferred:
        e = _deferred.pop(0)
        _deferred.clear()
        raise e


@_lib.DOMAIN_CB
def domain_cb(domain: int, status: int, arg: Optional[int]) -> None:
    _call(_registry.pop(arg or 0, None), status)


@_lib.CLOSE_CB
def close_cb(domain: int, arg: Optional[int]) -> None:
    _call(_registry.pop(arg or 0, None))


@_lib.EXEC_CB
def exec_cb(domain: int, status: int, exitp: Any, arg: Optional[int]) -> None:
    fn = _registry.pop(arg or 0, None)
    _call(fn, status, exitp.contents if exitp else None)


@_lib.EVENT_CB
def event_cb(eventp: Any, arg: Optional[int]) -> None:
    if eventp:
        _call(_registry.get(arg or 0), eventp.contents)
