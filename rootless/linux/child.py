"""Run a small function in a forked child and get its one-line answer back.

Used by the probes, which must unshare namespaces without touching the caller. The child
never returns into the caller's code: it writes ``ok:<text>`` or
``OSError:<hex errno>:<message>`` to a pipe and ``_exit``s.
"""

import os
from typing import Callable, Tuple


def run_in_child(fn: Callable[[], str]) -> Tuple[bool, str]:
    """(True, fn's answer) or (False, "why it failed")."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nothing may propagate out of this block
        code = 0
        try:
            os.close(read_fd)
            try:
                message = "ok:" + fn()
            except OSError as e:
                message = "OSError:%x:%s" % (e.errno or 0, e.strerror or e)
            except BaseException as e:  # report, never unwind into the parent's code
                message = "%s:0:%s" % (type(e).__name__, e)
            os.write(write_fd, message.encode(errors="replace")[:4000])
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    text = read_all(read_fd)
    os.waitpid(pid, 0)
    if text.startswith("ok:"):
        return True, text[3:]
    kind, _, rest = text.partition(":")
    _, _, message = rest.partition(":")
    return False, message or "the probe process died"


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
