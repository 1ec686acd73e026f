"""Run a small function in a forked child and get its one-line answer back.

Used by the probes, which must unshare namespaces without touching the caller. The child
never returns into the caller's code: it answers with one ``ok`` message, or an ``error``
message, on the parent/child protocol of ``rootless.linux.sync``, and ``_exit``s.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Callable, Tuple

from rootless.linux import sync


def run_in_child(fn: Callable[[], str]) -> Tuple[bool, str]:
    """(True, fn's answer) or (False, "why it failed")."""
    parent, child = sync.pair()
    pid = os.fork()
    if pid == 0:  # the child: nothing may propagate out of this block
        parent.close()
        sync.child_main(lambda: sync.send(child, "ok", text=fn()), child)
    child.close()
    try:
        message = sync.recv(parent)
    finally:
        parent.close()
        os.waitpid(pid, 0)
    if message and message.get("op") == "ok":
        return True, message["text"]
    return False, (message or {}).get("message") or "the probe process died"


def read_all(fd: int) -> str:
    """Everything a pipe carries until its writers close it, decoded; ``fd`` is closed."""
    chunks = []
    try:
        while True:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")
