"""Times in logs: ``--since``/``--until`` as the docker CLI and dockerd read them, and the
``time`` field of a json-file line.

``docker logs --since V`` goes through two functions, reproduced here step by step:

1. the CLI's ``timetypes.GetTimestamp(V, now)``: a Go duration (``10m``, ``1h30m``,
   ``-5s``; not ``0``) counts back from now and is cut to whole seconds; else a date or
   time in one of the RFC 3339 forms below (in the local zone, at the offset it has now,
   unless the value has ``Z``, ``+`` or three dashes); else it must be Unix seconds with an
   optional fraction (``1700000000.5``), passed on as written;
2. dockerd's ``ParseTimestamps``: ``SECONDS[.FRACTION]`` -> an instant.

Forms of step 1 (Go layouts)::

    2006-01-02  2006-01-02Z07:00                    (a dot anywhere: the Nano forms)
    2006-01-02T15  2006-01-02T15:04  2006-01-02T15:04:05  (each + Z07:00 when zoned)
    2006-01-02T15:04:05.999999999  2006-01-02T15:04:05.999999999Z07:00

Go's own parsing rules apply: the hour may have one digit, other fields exactly two, a
fraction of a second may follow the seconds in any layout, a date must exist.
"""

import re
from typing import Optional, Tuple

from rootless.errors import UsageError

_LAYOUT_NANO = "2006-01-02T15:04:05.999999999"
_UNITS = {"ns": 1, "us": 1000, "\u00b5s": 1000, "\u03bcs": 1000, "ms": 1000000,
          "s": 1000000000, "m": 60 * 1000000000, "h": 3600 * 1000000000}
_ELEMENTS = re.compile(r"2006|01|02|15|04|05|\.999999999|Z07:00")
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_RFC3339 = re.compile(r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?(?:([Zz])|([+-])(\d\d):(\d\d))\Z")


class GoTimeError(ValueError):
    """A value Go's time.Parse refuses; the message is Go's."""


def cli_stamp(value: str, flag: str, now_ns: int, utc_offset: int) -> str:
    """``--since``/``--until`` (``flag``) as the docker CLI sends it to dockerd
    (``SECONDS[.NANOS]``), or UsageError with its message. ``utc_offset``: the local
    zone's offset from UTC now, in seconds."""
    try:
        stamp = get_timestamp(value, now_ns, utc_offset)
        parse_timestamps(stamp)
        return stamp
    except ValueError as e:
        raise UsageError('invalid value for "%s": %s' % (flag, e))


def window(since: Optional[str], until: Optional[str], now_ns: int, utc_offset: int) -> Tuple[Optional[int], Optional[int]]:
    """``--since``/``--until`` -> (since_ns, until_ns) for the reader, None where unbounded.
    As dockerd: an until of ``0`` is no bound; a since of ``0`` is the epoch."""
    lo = hi = None
    if since:
        lo = parse_timestamps(cli_stamp(since, "since", now_ns, utc_offset))
    if until:
        stamp = cli_stamp(until, "until", now_ns, utc_offset)
        hi = None if stamp == "0" else parse_timestamps(stamp)
    return lo, hi


def local_offset() -> int:
    import time
    return time.localtime().tm_gmtoff


def get_timestamp(value: str, now_ns: int, utc_offset: int) -> str:
    """timetypes.GetTimestamp: the value as ``SECONDS[.NANOS]`` for dockerd."""
    if value != "0":
        d = go_duration(value)
        if d is not None:
            return str((now_ns - d) // 1000000000)
    in_location = not any(c in value for c in "zZ+") and value.count("-") != 3
    layout = _layout(value, in_location)
    try:
        ns = go_parse(layout, value, utc_offset if in_location else None)
    except GoTimeError:
        if "-" in value:
            raise  # an RFC 3339 look-alike that does not parse: Go's error
        _split_timestamp(value)  # else it must be Unix seconds, passed on unchanged
        return value
    sec, nanos = divmod(ns, 1000000000)
    return "%d.%09d" % (sec, nanos)


def _layout(value: str, in_location: bool) -> str:
    zone = "" if in_location else "Z07:00"
    if "." in value:
        return _LAYOUT_NANO + zone
    if "T" in value:
        colons = value.count(":")
        if not in_location and "z" not in value and "Z" not in value and colons > 0:
            colons -= 1  # the zone offset's own colon
        return ("2006-01-02T15", "2006-01-02T15:04", "2006-01-02T15:04:05")[min(colons, 2)] + zone
    return "2006-01-02" + zone


def parse_timestamps(value: str) -> int:
    """dockerd's ParseTimestamps + time.Unix: ``SECONDS[.FRACTION]`` -> nanoseconds."""
    sec, nanos = _split_timestamp(value)
    return sec * 1000000000 + nanos


def _split_timestamp(value: str) -> Tuple[int, int]:
    whole, dot, frac = value.partition(".")
    sec = _go_int(whole, value)
    if not dot:
        return sec, 0
    nanos = _go_int(frac, value)
    # As dockerd: the fraction scaled to nanoseconds in floating point, then truncated.
    return sec, int(float(nanos) * 10.0 ** (9 - len(frac)))


def _go_int(text: str, value: str) -> int:
    if not re.match(r"[+-]?[0-9]+\Z", text) or not -2 ** 63 <= int(text) < 2 ** 63:
        raise ValueError("failed to parse value as time or duration: %s" % _quote(value))
    return int(text)


def go_duration(text: str) -> Optional[int]:
    """time.ParseDuration in nanoseconds, or None where Go returns an error."""
    s, neg = text, False
    if s[:1] in ("-", "+"):
        neg, s = s[0] == "-", s[1:]
    if s == "0":
        return 0
    if not s:
        return None
    total = 0
    while s:
        m = re.match(r"([0-9]*)(?:\.([0-9]*))?", s)
        whole, frac = m.group(1), m.group(2)
        if not whole and not frac:
            return None  # needs digits before or after the point
        s = s[m.end():]
        unit = re.match(r"[^0-9.]*", s).group()
        if unit not in _UNITS:
            return None  # a missing or unknown unit
        s = s[len(unit):]
        scale = _UNITS[unit]
        v = int(whole or "0") * scale
        if frac:
            f, f_scale = _leading_fraction(frac)
            v += int(float(f) * (float(scale) / f_scale))
        total += v
        if total > 2 ** 63:
            return None
    if not neg and total > 2 ** 63 - 1:
        return None
    return -total if neg else total


def _leading_fraction(digits: str) -> Tuple[int, float]:
    """Go's leadingFraction: digits past what an int64 holds are dropped."""
    x, scale, overflow = 0, 1.0, False
    for c in digits:
        if overflow:
            continue
        if x > (2 ** 63 - 1) // 10 or x * 10 + int(c) > 2 ** 63:
            overflow = True
            continue
        x, scale = x * 10 + int(c), scale * 10
    return x, scale


def go_parse(layout: str, value: str, utc_offset: Optional[int]) -> int:
    """time.Parse (``utc_offset`` None) or ParseInLocation at a fixed offset, for the
    layouts of this module; nanoseconds since the epoch, or GoTimeError as Go says it."""
    fields = {"nanos": 0, "offset": utc_offset or 0}
    rest, pos = value, 0
    for m in _ELEMENTS.finditer(layout):
        rest = _literal(layout, value, layout[pos:m.start()], rest)
        rest = _element(layout, value, m.group(), rest, fields, layout[m.end():m.end() + 10])
        pos = m.end()
    rest = _literal(layout, value, layout[pos:], rest)
    if rest:
        raise GoTimeError("parsing time %s: extra text: %s" % (_quote(value), _quote(rest)))
    y, mo, d = fields["2006"], fields["01"], fields["02"]
    if d > _days_in(mo, y):
        raise GoTimeError("parsing time %s: day out of range" % _quote(value))
    seconds = days_from_civil(y, mo, d) * 86400 + fields.get("15", 0) * 3600 + \
        fields.get("04", 0) * 60 + fields.get("05", 0) - fields["offset"]
    return seconds * 1000000000 + fields["nanos"]


def _literal(layout, value, literal, rest):
    if not rest.startswith(literal):
        raise GoTimeError(_cannot(layout, value, rest, literal))
    return rest[len(literal):]


def _cannot(layout, value, rest, element):
    return "parsing time %s as %s: cannot parse %s as %s" % (
        _quote(value), _quote(layout), _quote(rest), _quote(element))


_RANGES = {"01": (1, 12, "month"), "02": (1, 31, "day"), "15": (0, 23, "hour"),
           "04": (0, 59, "minute"), "05": (0, 59, "second")}


def _element(layout, value, element, rest, fields, after):
    if element == "2006":
        if len(rest) < 4 or not rest[:4].isdigit() or not rest[:4].isascii():
            raise GoTimeError(_cannot(layout, value, rest, element))
        fields[element] = int(rest[:4])
        return rest[4:]
    if element == ".999999999":
        if len(rest) < 2 or rest[0] not in ".," or not "0" <= rest[1] <= "9":
            return rest  # the fraction is optional
        return _fraction(rest, fields)
    if element == "Z07:00":
        return _zone(layout, value, rest, fields)
    digits = 2 if len(rest) > 1 and "0" <= rest[1] <= "9" else 1
    if not rest or not "0" <= rest[0] <= "9" or (digits == 1 and element != "15"):
        raise GoTimeError(_cannot(layout, value, rest, element))
    number = int(rest[:digits])
    low, high, name = _RANGES[element]
    if not low <= number <= high:
        raise GoTimeError("parsing time %s: %s out of range" % (_quote(value), name))
    fields[element] = number
    rest = rest[digits:]
    if element == "05" and len(rest) >= 2 and rest[0] in ".," and "0" <= rest[1] <= "9" \
            and not after.startswith(".999999999"):
        rest = _fraction(rest, fields)  # Go takes a fraction after seconds in any layout
    return rest


def _fraction(rest, fields):
    n = 1
    while n < len(rest) and "0" <= rest[n] <= "9":
        n += 1
    digits = rest[1:n][:9]
    fields["nanos"] = int(digits) * 10 ** (9 - len(digits))
    return rest[n:]


def _zone(layout, value, rest, fields):
    if rest[:1] == "Z":
        fields["offset"] = 0
        return rest[1:]
    if len(rest) < 6 or rest[3] != ":" or rest[0] not in "+-" or not (rest[1:3] + rest[4:6]).isdigit():
        raise GoTimeError(_cannot(layout, value, rest, "Z07:00"))
    hours, minutes = int(rest[1:3]), int(rest[4:6])
    if hours > 24 or minutes > 60:
        raise GoTimeError("parsing time %s: time zone offset %s out of range"
                          % (_quote(value), "hour" if hours > 24 else "minute"))
    offset = (hours * 60 + minutes) * 60
    fields["offset"] = offset if rest[0] == "+" else -offset
    return rest[6:]


def _days_in(month: int, year: int) -> int:
    if month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        return 29
    return _MONTH_DAYS[month - 1]


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (integer arithmetic only)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _quote(text: str) -> str:
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')


# -- the time field of a log line --------------------------------------------------------

def line_time_ns(text: str) -> Optional[int]:
    """An RFC 3339 time (as json-file lines carry) -> nanoseconds, None if malformed."""
    m = _RFC3339.match(text)
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, z, sign, oh, om = m.groups()
    seconds = days_from_civil(int(y), int(mo), int(d)) * 86400 + int(h) * 3600 + int(mi) * 60 + int(s)
    if not z:
        offset = (int(oh) * 60 + int(om)) * 60
        seconds -= offset if sign == "+" else -offset
    nanos = int((frac or "")[:9].ljust(9, "0"))
    return seconds * 1000000000 + nanos


def fixed_nano(text: str) -> str:
    """A line's time as ``docker logs -t`` prints it: Go's RFC3339NanoFixed (nine digits),
    in the zone the line was written in (UTC: ``Z``)."""
    digits = text[20:-1]
    if text[-1:] == "Z" and (len(text) == 20 or text[19:20] == "." and 0 < len(digits) <= 9
                             and digits.isdigit() and digits.isascii()):
        # UTC, as Docker and our Writer write it: pad the fraction (Go trims its zeros)
        return text[:19] + "." + text[20:-1].ljust(9, "0") + "Z"
    m = _RFC3339.match(text)
    if m is None:
        return text
    frac = (m.group(7) or "")[:9].ljust(9, "0")
    zone = "Z" if m.group(8) or m.group(10) + m.group(11) == "0000" else \
        "%s%s:%s" % (m.group(9), m.group(10), m.group(11))
    return "%s-%s-%sT%s:%s:%s.%s%s" % (m.groups()[:6] + (frac, zone))
