"""Exceptions raised by the bindings, one class per ``VMCORE_E*`` code.

Every exception derives from :class:`VmcoreError`, which carries the numeric ``code``, its
C ``name`` ("VMCORE_ECONFIG") and the library's detail ``message``. Where a builtin
exception means the same thing, the class derives from it too, so ``except ValueError`` or
``except FileNotFoundError`` work as a Python user expects.
"""

from __future__ import annotations

from typing import Dict, Optional, Type

OK = 0
EINVAL = -1
ENOMEM = -2
ECONFIG = -3
ENOENT = -4
EUNAVAIL = -5
ESTATE = -6
EIO = -7
ESYS = -8
EBUSY = -9
ETIMEDOUT = -10
EIMAGE = -11
EPERM = -12
ENOTSUP = -13
ECANCELED = -14
ELIMIT = -15
EPARSE = -16

_NAMES = {
    OK: "VMCORE_OK", EINVAL: "VMCORE_EINVAL", ENOMEM: "VMCORE_ENOMEM",
    ECONFIG: "VMCORE_ECONFIG", ENOENT: "VMCORE_ENOENT", EUNAVAIL: "VMCORE_EUNAVAIL",
    ESTATE: "VMCORE_ESTATE", EIO: "VMCORE_EIO", ESYS: "VMCORE_ESYS", EBUSY: "VMCORE_EBUSY",
    ETIMEDOUT: "VMCORE_ETIMEDOUT", EIMAGE: "VMCORE_EIMAGE", EPERM: "VMCORE_EPERM",
    ENOTSUP: "VMCORE_ENOTSUP", ECANCELED: "VMCORE_ECANCELED", ELIMIT: "VMCORE_ELIMIT",
    EPARSE: "VMCORE_EPARSE",
}


class VmcoreError(Exception):
    """Base class of every libvmcore failure.

    Attributes:
        code: the negative ``VMCORE_E*`` code.
        name: its C identifier, e.g. ``"VMCORE_ESTATE"``.
        message: the library's detail ("boot.kernel: no such file: /x/y"), or its
            generic description when no detail was recorded.
    """

    default_code = ESYS

    def __init__(self, message: str, code: Optional[int] = None) -> None:
        super().__init__(message)
        self.code: int = self.default_code if code is None else code
        self.name: str = _NAMES.get(self.code, "VMCORE_E?")
        self.message: str = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return "%s(%r, code=%s)" % (type(self).__name__, self.message, self.name)


class InvalidArgument(VmcoreError, ValueError):
    """An argument was invalid (``VMCORE_EINVAL``)."""
    default_code = EINVAL


class OutOfMemory(VmcoreError, MemoryError):
    """The library ran out of memory (``VMCORE_ENOMEM``)."""
    default_code = ENOMEM


class ConfigError(VmcoreError, ValueError):
    """The configuration is invalid (``VMCORE_ECONFIG``).

    Attributes:
        path: the JSON path of the offending value ("process.args[0]"), or None when the
            error is not about one value (a missing config file, malformed JSON).
    """
    default_code = ECONFIG

    def __init__(self, message: str, code: Optional[int] = None,
                 path: Optional[str] = None) -> None:
        super().__init__(message, code)
        self.path: Optional[str] = path


class ParseError(ConfigError):
    """The configuration is not well-formed JSON (``VMCORE_EPARSE``); the message gives
    line and column."""
    default_code = EPARSE


class NotFound(ConfigError, FileNotFoundError):
    """A file named by the configuration or the caller does not exist (``VMCORE_ENOENT``)."""
    default_code = ENOENT


class LimitError(ConfigError):
    """A requested size exceeds what the host has (``VMCORE_ELIMIT``)."""
    default_code = ELIMIT


class ImageError(ConfigError):
    """A guest image is malformed, truncated or does not fit (``VMCORE_EIMAGE``)."""
    default_code = EIMAGE


class BackendUnavailable(VmcoreError):
    """The chosen backend cannot run on this host (``VMCORE_EUNAVAIL``).

    Attributes:
        reason: why, in the library's words (same as ``message``).
    """
    default_code = EUNAVAIL

    @property
    def reason(self) -> str:
        return self.message


class StateError(VmcoreError):
    """The operation is not valid in the domain's current state (``VMCORE_ESTATE``)."""
    default_code = ESTATE


class VmcoreIOError(VmcoreError, OSError):
    """An I/O error while reading an image or talking to the kernel (``VMCORE_EIO``)."""
    default_code = EIO


class SyscallError(VmcoreError, OSError):
    """A system call failed (``VMCORE_ESYS``); the message names it and its errno."""
    default_code = ESYS


class Busy(VmcoreError):
    """The handle still has work in flight (``VMCORE_EBUSY``)."""
    default_code = EBUSY


class Timeout(VmcoreError, TimeoutError):
    """A timeout expired (``VMCORE_ETIMEDOUT``, or a ``timeout=`` given to a wait)."""
    default_code = ETIMEDOUT


class PermissionDenied(VmcoreError, PermissionError):
    """The caller lacks a privilege the operation needs (``VMCORE_EPERM``)."""
    default_code = EPERM


class NotSupported(VmcoreError):
    """The backend does not support this operation (``VMCORE_ENOTSUP``)."""
    default_code = ENOTSUP


class Canceled(VmcoreError):
    """The operation was canceled, for example because its domain was closed
    (``VMCORE_ECANCELED``)."""
    default_code = ECANCELED


class ClosedError(VmcoreError, ValueError):
    """The context or domain was already closed (raised by the bindings)."""
    default_code = EINVAL


_BY_CODE: Dict[int, Type[VmcoreError]] = {
    cls.default_code: cls for cls in (
        InvalidArgument, OutOfMemory, ConfigError, ParseError, NotFound, LimitError,
        ImageError, BackendUnavailable, StateError, VmcoreIOError, SyscallError, Busy,
        Timeout, PermissionDenied, NotSupported, Canceled)
}


def error_class(code: int) -> Type[VmcoreError]:
    """The exception class for a ``VMCORE_E*`` code (:class:`VmcoreError` if unknown)."""
    return _BY_CODE.get(code, VmcoreError)


def make_error(code: int, message: str, path: Optional[str] = None) -> VmcoreError:
    """Build the exception for @code. An empty @message falls back to the generic text."""
    cls = error_class(code)
    if not message:
        message = strerror(code)
    if issubclass(cls, ConfigError):
        return cls(message, code, path=path or None)
    return cls(message, code)


def strerror(code: int) -> str:
    """The library's one-sentence description of @code."""
    from . import _lib
    return _lib.text(_lib.get().vmcore_strerror(code))


def error_name(code: int) -> str:
    """The C identifier of @code ("VMCORE_ECONFIG")."""
    return _NAMES.get(code, "VMCORE_E?")
