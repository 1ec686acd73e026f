"""Which containers ``ps`` lists, in which order: Docker's rules, as pure functions.

Docker walks its containers newest first and, for each, in this order:

1. ``before=X``: skip every container up to and including X; ``since=X``: stop at X;
2. without ``-a`` (or a ``status=`` filter, which implies it) and without ``-n``/``-l``,
   skip the ones that are not running (paused and restarting ones run);
3. ``name`` (a regular expression, against ``name`` and ``/name``), ``id`` (a unique
   ID prefix that also matches as a regular expression), ``label`` (every one given:
   ``key`` or ``key=value``);
4. ``-n N``: stop after N;
5. ``exited=N`` (any code given, of a container that has run and is not running),
   ``status=S`` (any state given), ``ancestor=IMAGE`` (any image given),
   ``publish=PORT[/PROTO]`` (a container port ``-p`` asked for, running or not: Docker
   reads HostConfig.PortBindings), ``expose=PORT[/PROTO]`` (one of Config.ExposedPorts);
   both take a range ``8000-8010`` and mean tcp without a proto.

Repeated keys OR their values (``label`` ANDs them, as Docker does); different keys AND.
Filters that need networks, volumes, health checks, Windows isolation or swarm tasks are
refused as not supported yet rather than silently matching everything.
"""

from typing import Callable, Dict, List, Optional

from rootless import filters as filt
from rootless.errors import Unsupported, UsageError
from rootless.runtime import state as state_mod
from rootless.runtime.status import STATES, is_running, state_string

ACCEPTED = ("ancestor", "before", "exited", "id", "isolation", "label", "name", "status", "health",
            "since", "volume", "network", "is-task", "publish", "expose")
NOT_YET = {"network": "networks",
           "volume": "volumes", "health": "health checks", "isolation": "isolation modes",
           "is-task": "swarm tasks"}


def check(filters: filt.Filters) -> None:
    """Docker's errors for unknown keys and bad values; ours for what is not built yet."""
    filt.validate(filters, ACCEPTED)
    for value in filters.get("exited", []):
        if not _is_int(value):
            raise UsageError("invalid filter 'exited=%s': strconv.Atoi: parsing \"%s\": invalid syntax"
                             % (value, value))
    for value in filters.get("status", []):
        if value not in STATES:
            raise UsageError("invalid filter 'status=%s': invalid value for state (%s): must be one of %s"
                             % (value, value, ", ".join(STATES)))
    for key in ("publish", "expose"):
        for value in filters.get(key, []):
            port_filter(key, value)
    for key in sorted(set(filters) & set(NOT_YET)):
        raise Unsupported("the '%s' filter is not supported yet: rootless has no %s yet" % (key, NOT_YET[key]))


def port_filter(key: str, value: str) -> set:
    """The ``"80/tcp"`` keys a ``publish``/``expose`` value names (Docker's portOp)."""
    if ":" in value:
        raise UsageError("filter for '%s' should not contain ':': %s" % (key, value))
    port, _, proto = value.partition("/")
    first, sep, last = port.partition("-")
    if not all(_is_int(n) and n[:1] not in "+-" for n in ([first, last] if sep else [first])) or \
            int(last if sep else first) > 65535 or int(last if sep else first) < int(first):
        raise UsageError("error while looking up for %s %s: invalid port range %r" % (key, value, port))
    return {"%d/%s" % (n, proto or "tcp") for n in range(int(first), int(last if sep else first) + 1)}


def _is_int(text: str) -> bool:
    digits = text[1:] if text[:1] in "+-" else text
    return digits.isdigit() and digits.isascii()


def select(records: List[dict], filters: filt.Filters, all: bool = False, limit: int = -1,
           image_id_of: Callable[[str], Optional[str]] = lambda name: None) -> List[dict]:
    """The records ``ps`` shows, newest first. ``records`` are every container, in any
    order; ``image_id_of(name)`` resolves an ``ancestor=`` value in the image store."""
    check(filters)
    records = sorted(records, key=lambda r: r["created"], reverse=True)
    all = all or "status" in filters
    before = _named(records, filters, "before")
    since = _named(records, filters, "since")
    by_prefix = _id_matches(records, filters.get("id"))
    ancestors = {v: image_id_of(v) for v in filters.get("ancestor", [])}
    shown = []
    for r in records:
        if before is not None:
            if r["id"] == before["id"]:
                before = None
            continue
        if since is not None and r["id"] == since["id"]:
            break
        if not is_running(r) and not all and limit <= 0:
            continue
        if not _identity(r, filters, by_prefix):
            continue
        if limit > 0 and len(shown) == limit:
            break
        if _condition(r, filters, ancestors):
            shown.append(r)
    return shown


def _named(records: List[dict], filters: filt.Filters, key: str) -> Optional[dict]:
    values = filters.get(key)
    return state_mod.pick(records, values[-1]) if values else None


def _id_matches(records: List[dict], values: Optional[List[str]]) -> Optional[set]:
    """IDs named by ``id=`` prefixes; an ambiguous or unknown prefix names none (Docker)."""
    if values is None:
        return None
    found = set()
    for prefix in values:
        hits = [r["id"] for r in records if prefix and r["id"].startswith(prefix)]
        if len(hits) == 1:
            found.add(hits[0])
    return found


def _identity(r: dict, filters: filt.Filters, by_prefix: Optional[set]) -> bool:
    if by_prefix is not None and (r["id"] not in by_prefix or not filt.match(filters["id"], r["id"])):
        return False
    names = filters.get("name")
    if names and not (filt.match(names, r["name"]) or filt.match(names, "/" + r["name"])):
        return False
    return filt.match_labels(filters.get("label"), r.get("labels"))


def _condition(r: dict, filters: filt.Filters, ancestors: Dict[str, Optional[str]]) -> bool:
    codes = filters.get("exited")
    if codes and (is_running(r) or not r.get("started") or
                  (r.get("exit_code") or 0) not in {int(c) for c in codes}):
        return False
    if not filt.match(filters.get("status"), state_string(r)):
        return False
    for key, kept in (("publish", (r.get("host_config") or {}).get("PortBindings")),
                      ("expose", (r.get("config") or {}).get("ExposedPorts"))):
        values = filters.get(key)
        if values and not set().union(*(port_filter(key, v) for v in values)) & set(kept or ()):
            return False
    return not ancestors or any(_descends(r, value, image_id) for value, image_id in ancestors.items())


def _descends(r: dict, value: str, image_id: Optional[str]) -> bool:
    """Whether ``r`` was made from the image ``value`` names. When the store no longer
    has that image, the reference the container was created with, or a prefix of its
    image ID, still names it."""
    if image_id is not None:
        return r.get("image_id") == image_id
    mine = r.get("image_id") or ""
    return bool(value) and (value == r.get("image") or mine == value or mine[7:].startswith(value))
