"""Output formatting as Docker does it: aligned tables, ``--format`` templates, JSON.

Templates support the subset of Go's text/template that ``docker --format`` users write:
``{{.Field}}``, ``{{.A.B}}``, ``{{json .}}``, ``{{json .Field}}``, ``{{upper .F}}``,
``{{lower .F}}``, ``{{join .List ","}}``, literal text, ``\\t``/``\\n`` escapes, and the
``table`` prefix (a header row, columns aligned). ``json`` alone prints one JSON object per
line. Anything else is refused with a clear message rather than half-rendered.
"""

import json
import re
import time
from typing import Any, Dict, List, Optional, Sequence

from rootless.errors import UsageError

_ACTION = re.compile(r"{{-?\s*(.*?)\s*-?}}")


def render(template: str, obj: Any) -> str:
    """Render one object through a template."""
    out, pos = [], 0
    for m in _ACTION.finditer(template):
        out.append(template[pos:m.start()])
        out.append(_action(m.group(1), obj))
        pos = m.end()
    out.append(template[pos:])
    return "".join(out)


def _action(expr: str, obj: Any) -> str:
    words = _split_words(expr)
    if not words:
        return ""
    func, args = (words[0], words[1:]) if not words[0].startswith(".") else ("", words)
    if func == "" and len(args) == 1:
        return _go_string(_lookup(obj, args[0]))
    if func == "json" and len(args) == 1:
        return json.dumps(_lookup(obj, args[0]), separators=(",", ":"))
    if func in ("upper", "lower", "title") and len(args) == 1:
        return getattr(_go_string(_lookup(obj, args[0])), func)()
    if func == "join" and len(args) == 2:
        return _unquote(args[1]).join(_go_string(v) for v in (_lookup(obj, args[0]) or []))
    if func == "index" and len(args) == 2:
        value = _lookup(obj, args[0]) or {}
        return _go_string(value.get(_unquote(args[1]), "") if isinstance(value, dict) else "")
    raise UsageError("template: unsupported action {{%s}}; use {{.Field}}, {{json .}}, "
                     "{{join .List \",\"}}, {{index .Map \"key\"}}, {{upper .F}} or {{lower .F}}" % expr)


def _split_words(expr: str) -> List[str]:
    return re.findall(r'"(?:[^"\\]|\\.)*"|\S+', expr)


def _unquote(word: str) -> str:
    if len(word) >= 2 and word[0] == word[-1] == '"':
        return json.loads(word)
    return word


def _lookup(obj: Any, path: str) -> Any:
    if path == ".":
        return obj
    value = obj
    for key in path.lstrip(".").split("."):
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, dict):
            raise UsageError("template: no field %r (fields: %s)" % (key, ", ".join(sorted(value))))
        else:
            raise UsageError("template: cannot look up %r in a %s" % (key, type(value).__name__))
    return value


def _go_string(value: Any) -> str:
    """Print a value the way Go's template engine would."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(_go_string(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join("%s:%s" % (k, _go_string(v)) for k, v in sorted(value.items())) + "]"
    return str(value)


def table(rows: Sequence[Sequence[str]]) -> str:
    """Columns padded like Docker's tabwriter (minimum width 10, padding 3)."""
    if not rows:
        return ""
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(len(r) for r in rows))]
    lines = []
    for r in rows:
        cells = [c.ljust(max(10, widths[i] + 3)) if i < len(r) - 1 else c for i, c in enumerate(r)]
        lines.append("".join(cells).rstrip())
    return "\n".join(lines)


def emit(objects: List[Dict[str, Any]], fmt: Optional[str], columns: Sequence["tuple[str, str]"],
         quiet_field: Optional[str] = None, quiet: bool = False) -> str:
    """Format rows for a listing command.

    ``columns`` are (header, field) pairs for the default table; ``fmt`` is the user's
    ``--format``; ``quiet`` prints only ``quiet_field``.
    """
    if quiet:
        return "\n".join(str(o[quiet_field]) for o in objects)
    if fmt == "json":
        return "\n".join(json.dumps(o, separators=(",", ":")) for o in objects)
    if not fmt or fmt == "table":
        header = [h for h, _ in columns]
        return table([header] + [[str(o[f]) for _, f in columns] for o in objects])
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    if fmt.startswith("table"):
        body = fmt[len("table"):].strip()
        names = dict((f, h) for h, f in columns)
        header_cells = render(body, _HeaderObject(names)).split("\t")
        rows = [header_cells] + [render(body, o).split("\t") for o in objects]
        return table(rows)
    return "\n".join(render(fmt, o) for o in objects)


class _HeaderObject(dict):
    """Renders ``{{.Field}}`` as the column's header (``IMAGE ID`` for ``.ID``)."""

    def __init__(self, names):
        super().__init__()
        self.names = names

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return self.names.get(key, re.sub(r"(?<=[a-z])(?=[A-Z])", " ", key).upper())


def human_duration(seconds: float) -> str:
    """Docker's go-units HumanDuration."""
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


def parse_time(text: str) -> Optional[float]:
    """An RFC 3339 timestamp (as in image configs) -> epoch seconds, or None."""
    if not text:
        return None
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", text)
    if not m:
        return None
    import calendar
    t = calendar.timegm(tuple(int(m.group(i)) for i in range(1, 7)) + (0, 0, 0))
    t += float(m.group(7) or 0)
    zone = m.group(8)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        t -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return t


def since(text: str, now: Optional[float] = None) -> str:
    t = parse_time(text)
    if t is None:
        return "N/A"
    return human_duration((now or time.time()) - t) + " ago"
