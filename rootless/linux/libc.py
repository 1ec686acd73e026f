"""The one place rootless talks to libc through ctypes.

libc is loaded once, with ``use_errno=True`` so failures keep their errno. Each wrapper
retries on EINTR and raises ``OSError(errno, strerror, path)`` naming the call. No policy
lives here: callers decide what a failure means.
"""

from __future__ import annotations

import ctypes
import errno
import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Optional

_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def check(result: int, call: str, path: Optional[str] = None) -> int:
    """Raise OSError for a -1 result, with the errno of the call and what it acted on."""
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, "%s: %s" % (call, os.strerror(err)), path)
    return result


def call(name: str, *args, path: Optional[str] = None) -> int:
    """Call libc function ``name``, retrying on EINTR."""
    fn = getattr(libc(), name)
    while True:
        result = fn(*args)
        if result == -1 and ctypes.get_errno() == errno.EINTR:
            continue
        return check(result, name, path)
