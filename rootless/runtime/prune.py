"""``container prune``: remove every container that is not running, as Docker does.

Docker removes created, exited and dead containers, and keeps running, paused and
restarting ones (and one being removed). ``until=TIME`` keeps those created after TIME;
``label=`` / ``label!=`` keep those without / with the labels. The space reclaimed is the
sum of their writable layers, measured before each is removed.

Candidates are chosen and removed under the containers lock, which ``start`` holds while
it moves a container to running: a container cannot start between the check and its
removal.
"""

import time
from typing import Callable, List, Optional, Tuple

from rootless import filters as filt
from rootless.errors import RootlessError, UsageError
from rootless.runtime import state
from rootless.runtime.status import REMOVING, is_running

ACCEPTED = ("label", "label!", "until")


def until_of(filters: filt.Filters, now: Optional[float] = None) -> Optional[float]:
    """The ``until=`` time as epoch seconds, after Docker's checks of the keys (pure)."""
    filt.validate(filters, ACCEPTED)
    values = filters.get("until", [])
    if len(values) > 1:
        raise UsageError("more than one until filter specified")
    return filt.timestamp(values[0], now) if values else None


def prunable(records: List[dict], filters: filt.Filters, now: Optional[float] = None) -> List[dict]:
    """The records ``container prune`` removes (pure)."""
    until = until_of(filters, now)
    chosen = []
    for r in records:
        if is_running(r) or r.get("status") == REMOVING:
            continue
        if until is not None and r["created"] > until:
            continue
        if not filt.match_labels(filters.get("label"), r.get("labels")):
            continue
        if filters.get("label!") and filt.match_labels(filters["label!"], r.get("labels")):
            continue
        chosen.append(r)
    return chosen


def prune(paths, filters: filt.Filters, size_of: Callable[[dict], int],
          reap: Optional[Callable[[dict], None]] = None) -> Tuple[List[str], int, List[str]]:
    """Remove the prunable containers: (their IDs, the bytes their writable layers held,
    a message for each that could not be removed). As Docker, one failure does not stop
    the others."""
    from rootless.runtime.start import remove
    containers = state.Containers(paths)
    until_of(filters)  # refuse bad filters before taking the lock
    removed, reclaimed, failed = [], 0, []
    with containers.lock():
        for record in prunable(containers.all(reap), filters, time.time()):
            size = size_of(record)
            try:
                remove(paths, record)
            except (RootlessError, OSError) as e:
                failed.append("failed to prune container %s: %s" % (record["id"], e))
                continue
            removed.append(record["id"])
            reclaimed += size
    return removed, reclaimed, failed
