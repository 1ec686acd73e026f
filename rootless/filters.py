"""Docker's ``--filter key=value`` arguments and its ways of matching them (pure functions).

The rules are Docker's (its CLI's FilterOpt and the API's filters.Args), so that a filter
a user wrote for ``docker`` selects the same objects here:

* ``-f key=value`` may repeat; keys are lower-cased, keys and values trimmed; an empty
  argument is ignored; one without ``=`` is refused by the flag parser.
* The values of one key form a set; how a set matches depends on the key (most OR their
  values, ``label`` ANDs them), different keys AND.
* ``match`` is Docker's Args.Match: an exact value, else a regular expression searched
  anywhere in the text (``name=web`` matches ``my-web-1``; ``name=^web$`` only ``web``);
  a value that is not a valid expression matches nothing.
* Timestamps (``until=``) take Go durations (``10m``, ``1h30m``: that long ago), RFC 3339
  dates and times (local time unless they name a zone) and Unix seconds.
"""

import re
import time
from typing import Dict, Iterable, List, Mapping, Optional

from rootless.errors import UsageError

Filters = Dict[str, List[str]]


def parse(items: Iterable[str], flag: str = "-f, --filter") -> Filters:
    """``["status=exited", "label=a"]`` -> ``{"status": ["exited"], "label": ["a"]}``."""
    filters: Filters = {}
    for item in items:
        if item == "":
            continue
        if "=" not in item:
            raise UsageError('invalid argument "%s" for "%s" flag: bad format of filter (expected name=value)'
                             % (item, flag))
        key, _, value = item.partition("=")
        values = filters.setdefault(key.strip().lower(), [])
        if value.strip() not in values:
            values.append(value.strip())
    return filters


def validate(filters: Filters, accepted: Iterable[str]) -> None:
    """Docker's error for a key the command does not know."""
    unknown = sorted(set(filters) - set(accepted))
    if unknown:
        raise UsageError("invalid filter '%s'" % unknown[0])


def match(values: Optional[List[str]], text: str) -> bool:
    """True without values; else an exact value or a regular expression found in ``text``."""
    if not values or text in values:
        return True
    for pattern in values:
        try:
            if re.search(pattern, text):
                return True
        except re.error:
            continue
    return False


def match_labels(values: Optional[List[str]], labels: Optional[Mapping[str, str]]) -> bool:
    """Every ``key`` or ``key=value`` in ``values`` is among ``labels`` (Docker's MatchKVList)."""
    if not values:
        return True
    labels = labels or {}
    for value in values:
        key, sep, wanted = value.partition("=")
        if key not in labels or (sep and labels[key] != wanted):
            return False
    return True


# -- timestamps -------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DATE_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:T(\d\d)(?::(\d\d)(?::(\d\d)(\.\d+)?)?)?)?"
                        r"([Zz]|[+-]\d\d:\d\d)?\Z")
_UNIX = re.compile(r"\+?(\d+)(?:\.(\d+))?\Z")


def go_duration(text: str) -> Optional[float]:
    """Go's time.ParseDuration in seconds (``1h30m`` -> 5400.0), or None when it is not one."""
    body = text[1:] if text[:1] in "+-" else text
    if not body:
        return None
    total, pos = 0.0, 0
    while pos < len(body):
        m = _DURATION_PART.match(body, pos)
        if not m:
            return None
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return -total if text.startswith("-") else total


def timestamp(text: str, now: Optional[float] = None) -> float:
    """Docker's GetTimestamp: ``text`` as an epoch time (``until=``, ``since=`` filters)."""
    now = time.time() if now is None else now
    ago = go_duration(text) if text != "0" else None
    if ago is not None:
        return float(int(now - ago))
    m = _DATE_TIME.match(text)
    if m:
        return _date_time(m, now)
    unix = _UNIX.match(text)
    if unix and "-" not in text:
        fraction = unix.group(2) or "0"
        return int(unix.group(1)) + int(fraction) / 10 ** len(fraction)
    if "-" in text:
        raise UsageError("invalid timestamp %r: use an RFC 3339 date or time (2006-01-02T15:04:05), "
                         "a duration (10m, 1h30m) or Unix seconds" % text)
    raise UsageError('failed to parse value as time or duration: "%s"' % text)


def _date_time(m, now: float) -> float:
    import calendar
    fields = tuple(int(g or 0) for g in m.groups()[:6])
    try:
        t = calendar.timegm(fields + (0, 0, 0))
        valid = tuple(time.gmtime(t)[:6]) == fields  # timegm rolls Feb 30 over into March
    except (ValueError, OverflowError):
        valid = False
    if not valid:
        raise UsageError("invalid timestamp %r: a field is out of range" % m.group(0))
    t += float(m.group(7) or 0)
    zone = m.group(8)
    if not zone:  # Docker reads a time without a zone in the zone it is now (a fixed offset)
        return t - time.localtime(now).tm_gmtoff
    if zone in "Zz":
        return t
    offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
    return t - offset if zone[0] == "+" else t + offset
