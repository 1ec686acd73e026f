"""A full disk or a quota hit while the store grows: one clear error.

The kernel's ENOSPC or EDQUOT names no file (a write's error carries none) and says
nothing about how much was needed; ``for_store`` turns it into a ``StoreError`` that names
the storage root, the space left on its file system, what the command was doing and,
where the command can tell, about how much it needed, with the remedies. What the command
had half-written is removed by its own clean-up (work in ``tmp/``), so nothing is listed.
"""

from __future__ import annotations

import errno
import os
from contextlib import contextmanager

TYPE_CHECKING = False  # typing costs every run ~2 ms to import; no annotation is evaluated
if TYPE_CHECKING:
    from typing import Optional

from rootless.errors import StoreError


def free_bytes(path: str) -> int:
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    st = os.statvfs(path or "/")
    return st.f_bavail * st.f_frsize


@contextmanager
def for_store(root: str, doing: str, needed: Optional[int] = None):
    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        from rootless.units import human_size
        what = "disk quota exceeded" if e.errno == errno.EDQUOT else "no space left on device"
        text = "%s under %s while %s (%s free there" % (what, root, doing, human_size(free_bytes(root)))
        text += ", about %s needed)" % human_size(needed) if needed else ")"
        if getattr(e, "filename", None):
            text += ", writing %s" % e.filename
        raise StoreError(text + ": free space (rootless system prune, rootless system df shows what "
                         "takes it) or choose another storage root with --root") from None
