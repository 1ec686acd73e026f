"""How a container record reads to a user: Docker's state word, STATUS text and COMMAND.

Pure functions of a record (see ``state``) and the time now, as Docker's daemon computes
them for ``ps`` (its State.String and StateString)::

    record status   state word    STATUS text
    created         created       Created
    running         running       Up 3 seconds
    paused          paused        Up 2 minutes (Paused)
    restarting      restarting    Restarting (1) 5 seconds ago
    removing        removing      Removal In Progress
    dead            dead          Dead
    exited          exited        Exited (0) 2 minutes ago     ("created" if it never started)

Durations are go-units' HumanDuration of the time since the start (Up) or the end
(Exited, Restarting), to the fraction of a second as Docker measures them.
"""

import time
from typing import List, Optional

from rootless.units import human_duration

CREATED, RUNNING, PAUSED, RESTARTING = "created", "running", "paused", "restarting"
REMOVING, EXITED, DEAD = "removing", "exited", "dead"
STATES = (CREATED, RUNNING, PAUSED, RESTARTING, REMOVING, EXITED, DEAD)  # Docker's order
# A paused or restarting container still has its processes: Docker counts it as running
# (``ps`` without -a lists it; ``container prune`` keeps it).
ALIVE = (RUNNING, PAUSED, RESTARTING)


def is_running(record: dict) -> bool:
    return record.get("status") in ALIVE


def state_string(record: dict) -> str:
    """Docker's one-word state (``.State``, the ``status=`` filter)."""
    status = record.get("status") or CREATED
    if status in ALIVE or status in (REMOVING, DEAD):
        return status
    if not record.get("started"):
        return CREATED
    return EXITED


def status_text(record: dict, now: Optional[float] = None) -> str:
    """Docker's STATUS column (``.Status``)."""
    now = time.time() if now is None else now
    status = record.get("status") or CREATED
    code = record.get("exit_code") or 0
    if status in ALIVE:
        if status == RESTARTING:
            return "Restarting (%d) %s ago" % (code, _since(record.get("finished"), now))
        up = "Up " + _since(record.get("started"), now)
        if record.get("network_error"):  # a network process of it crashed (runtime.network)
            up += " (%s)" % record["network_error"]
        return up + " (Paused)" if status == PAUSED else up
    if status == REMOVING:
        return "Removal In Progress"
    if status == DEAD:
        return "Dead"
    if not record.get("started"):
        return "Created"
    if not record.get("finished"):
        return ""
    return "Exited (%d) %s ago" % (code, _since(record["finished"], now))


def _since(when: Optional[float], now: float) -> str:
    return human_duration(now - (when or now))


def command_text(argv: Optional[List[str]]) -> str:
    """Docker's COMMAND before quoting: the program, then its arguments, each one that holds
    a space in single quotes (``sh -c 'echo hi'``)."""
    if not argv:
        return ""
    return " ".join([argv[0]] + ["'%s'" % a if " " in a else a for a in argv[1:]])
