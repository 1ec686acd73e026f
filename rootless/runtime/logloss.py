"""What the monitor could not log: ``RUN/log-errors/<id>``, read back by ``logs``.

The json-file Writer never raises on a full disk; it keeps its first error and counts the
lines it dropped. Without this file nobody would ever see that loss. It lives in the run
dir, which is on another file system than the storage root (a tmpfs here), so that the
disk that is full is not the one the report must be written to. It is one small JSON
object, replaced atomically (write then rename) each time the count changes, and removed
with the container.
"""

import os
from typing import Optional

from rootless import jsonfast


def path(run_dir: str, cid: str) -> str:
    """(state.Containers.log_error_file names the same file, for rm.)"""
    return os.path.join(run_dir, "log-errors", cid)


def leave(run_dir: str, cid: str, error: str, lost_lines: int, lost_bytes: int) -> None:
    """Record the writer's first error and what it has lost so far (OSError on failure)."""
    final = path(run_dir, cid)
    os.makedirs(os.path.dirname(final), 0o700, exist_ok=True)
    tmp = final + ".tmp"
    with open(tmp, "w") as f:
        jsonfast.dump({"error": error, "lost_lines": lost_lines, "lost_bytes": lost_bytes}, f)
    os.rename(tmp, final)


def warning(run_dir: str, cid: str) -> Optional[str]:
    """The one-line warning ``logs`` prints, if this container's log lost anything."""
    try:
        with open(path(run_dir, cid)) as f:
            report = jsonfast.load(f)
        error, lost = str(report["error"]), int(report.get("lost_lines", 0))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return "%s; %d line%s lost" % (error, lost, "" if lost == 1 else "s")


def clear(run_dir: str, cid: str) -> None:
    try:
        os.unlink(path(run_dir, cid))
    except OSError:
        pass
