"""Docker's human units (its go-units package): sizes and durations as ``docker`` prints and parses them.

One implementation for every verb: ``images`` and ``history`` (CREATED), ``ps`` (CREATED,
STATUS, SIZE) and the prune verbs (reclaimed space) must round the same way Docker does.
"""

import math
import re

_DECIMAL = {"k": 1000, "m": 1000 ** 2, "g": 1000 ** 3, "t": 1000 ** 4, "p": 1000 ** 5}
_BINARY = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3, "t": 1024 ** 4, "p": 1024 ** 5}
_GO_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")



def human_size(n: float, precision: int = 3) -> str:
    """1000-based units with ``precision`` significant digits: ``5.58MB`` (3, as ``ps -s``
    and ``images`` print), ``5.583MB`` (4, go-units' HumanSize, as the prune verbs print)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"):
        if abs(n) < 1000 or unit == "YB":
            if unit == "B":
                return "%dB" % n
            return ("%.*g" % (precision, n)) + unit
        n /= 1000.0
    return "%dB" % n


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration: whole seconds and minutes truncated, hours rounded to the
    nearest (``int(hours + 0.5)``), then days, weeks, months (30 days) and years."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return "%d seconds" % s
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return "%d minutes" % minutes
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return "%d hours" % hours
    if hours < 24 * 7 * 2:
        return "%d days" % (hours // 24)
    if hours < 24 * 30 * 2:
        return "%d weeks" % (hours // 24 // 7)
    if hours < 24 * 365 * 2:
        return "%d months" % (hours // 24 // 30)
    return "%d years" % (int(seconds / 3600) // 24 // 365)


def binary_size(n: float) -> str:
    """go-units' BytesSize: 1024-based units, 4 significant digits (``23.47GiB``), as
    ``docker info`` prints Total Memory."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"):
        if abs(n) < 1024 or unit == "ZiB":
            return ("%.4g" % n) + unit
        n /= 1024.0
    return ("%.4g" % n) + "YiB"


def go_size(text: str, binary: bool = False) -> int:
    """go-units FromHumanSize (decimal) or RAMInBytes (``binary``), errors included."""
    sep = max(text.rfind(c) for c in "0123456789. ")
    if sep < 0:
        raise ValueError("invalid size: '%s'" % text)
    num, suffix = (text[:sep + 1], text[sep + 1:]) if text[sep] != " " else (text[:sep], text[sep + 1:])
    if not _GO_FLOAT.match(num):
        raise ValueError('strconv.ParseFloat: parsing "%s": invalid syntax' % num)
    size = float(num)
    if math.isinf(size):
        raise ValueError('strconv.ParseFloat: parsing "%s": value out of range' % num)
    if size < 0:
        raise ValueError("invalid size: '%s'" % text)
    if not suffix:
        return int(size)
    low = suffix.lower()
    units = _BINARY if binary else _DECIMAL
    if len(low) > 3 or (low[0] == "b" and len(low) > 1) or (low[0] != "b" and low[0] not in units) \
            or (len(low) == 2 and low[1] != "b") or (len(low) == 3 and low[1:] != "ib"):
        raise ValueError("invalid suffix: '%s'" % (low if len(low) <= 3 else suffix))
    return int(size) if low[0] == "b" else int(size * units[low[0]])


def go_bool(text: str) -> bool:
    """strconv.ParseBool."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError('strconv.ParseBool: parsing "%s": invalid syntax' % text)
