"""Output formatting as Docker does it: aligned tables, ``--format`` templates, JSON.

Templates support the subset of Go's text/template that ``docker --format`` users write:
``{{.Field}}``, ``{{.A.B}}``, a method with arguments (``{{.Label "key"}}``: a callable
field), ``{{json .}}``, ``{{json .Field}}``, ``{{upper .F}}``, ``{{lower .F}}``,
``{{title .F}}``, ``{{join .List ","}}``, ``{{split .F ","}}``, ``{{index .Map "key"}}``,
``{{pad .F 1 0}}``, ``{{truncate .F 5}}``, ``{{-``/``-}}`` trimming, literal text,
``\\t``/``\\n`` escapes, and the ``table`` prefix (a header row, columns aligned; in the
header, as Docker's, the functions but ``pad`` leave the column's name alone). ``json``
alone prints one JSON object per line (callable fields left out, as Docker's marshaller
leaves out methods that take arguments). Anything else is refused with a clear message
rather than half-rendered.
"""

import json
import re
import time
from typing import Any, Dict, List, Optional, Sequence

from rootless.errors import UsageError
from rootless.units import human_duration  # noqa: F401  (re-exported for the image verbs)

_ACTION = re.compile(r"{{(-\s)?\s*(.*?)\s*(\s-)?}}", re.S)
_UNCHANGED_IN_HEADER = ("json", "upper", "lower", "title", "join", "split", "truncate")


def render(template: str, obj: Any, header: bool = False) -> str:
    """Render one object through a template (``header``: the table's header row)."""
    out, pos, trim_next = [], 0, False
    for m in _ACTION.finditer(template):
        text = template[pos:m.start()]
        text = text.lstrip() if trim_next else text
        out.append(text.rstrip() if m.group(1) else text)
        out.append(_action(m.group(2), obj, header))
        pos, trim_next = m.end(), bool(m.group(3))
    text = template[pos:]
    out.append(text.lstrip() if trim_next else text)
    return "".join(out)


def _action(expr: str, obj: Any, header: bool = False) -> str:
    words = _split_words(expr)
    if not words:
        return ""
    if words[0].startswith("."):
        return _go_string(_value(obj, words[0], words[1:]))
    if len(words) == 1 and words[0].startswith('"'):
        return _unquote(words[0])
    func, args = words[0], words[1:]
    if header and func in _UNCHANGED_IN_HEADER and args:
        return _go_string(_value(obj, args[0], []))
    if func == "json" and len(args) == 1:
        return json.dumps(_json_ready(_lookup(obj, args[0])), separators=(",", ":"), ensure_ascii=False)
    if func in ("upper", "lower", "title") and len(args) == 1:
        return getattr(_go_string(_lookup(obj, args[0])), func)()
    if func in ("join", "split") and len(args) == 2:
        value, sep = _lookup(obj, args[0]), _unquote(args[1])
        if func == "split":
            return _go_string(_go_string(value).split(sep))
        return sep.join(_go_string(v) for v in (value or []))
    if func == "index" and len(args) == 2:
        value = _lookup(obj, args[0]) or {}
        return _go_string(value.get(_unquote(args[1]), "") if isinstance(value, dict) else "")
    if func in ("pad", "truncate") and len(args) == 1 + (func == "pad") + 1 and all(a.isdigit() for a in args[1:]):
        text = _go_string(_lookup(obj, args[0]))
        if func == "truncate":
            return text[:int(args[1])]
        return " " * int(args[1]) + text + " " * int(args[2]) if text else text
    raise UsageError("template: unsupported action {{%s}}; use {{.Field}}, {{json .}}, "
                     "{{join .List \",\"}}, {{index .Map \"key\"}}, {{upper .F}} or {{lower .F}}" % expr)


def _value(obj: Any, path: str, args: List[str]) -> Any:
    """A field, or a method called with its (quoted) arguments: ``.Label "k"``."""
    value = _lookup(obj, path)
    if callable(value):
        try:
            return value(*[_unquote(a) for a in args])
        except TypeError:
            raise UsageError("template: wrong number of arguments for %s" % path)
    if args:
        raise UsageError("template: %s is not a method but has arguments" % path)
    return value


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if not callable(v)}
    return value


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
        return "\n".join(json.dumps(_json_ready(o), separators=(",", ":"), ensure_ascii=False) for o in objects)
    if not fmt or fmt == "table":
        header = [h for h, _ in columns]
        return table([header] + [[str(o[f]) for _, f in columns] for o in objects])
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    if fmt.startswith("table"):
        body = fmt[len("table"):].strip()
        names = dict((f, h) for h, f in columns)
        header_cells = render(body, _HeaderObject(names), header=True).split("\t")
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
        if key == "Label" and key not in self.names:
            return _label_header
        return self.names.get(key, re.sub(r"(?<=[a-z])(?=[A-Z])", " ", key).upper())


def _label_header(name: str = "") -> str:
    """Docker's header for ``{{.Label "com.example.my-team"}}``: ``my team``."""
    return name.split(".")[-1].replace("-", " ").replace("_", " ")


def check(fmt: Optional[str], sample: Dict[str, Any]) -> None:
    """Refuse a bad ``--format`` template even when there is nothing to list (Docker runs
    every template once against an empty object first)."""
    if fmt and fmt not in ("json", "table"):
        body = fmt.replace("\\t", "\t").replace("\\n", "\n")
        render(body[len("table"):] if body.startswith("table") else body, sample)


# -- Go's ways of printing (docker's templates are Go's) ---------------------------------------

def ellipsis(text: str, width: int) -> str:
    """Docker's Ellipsis: at most ``width`` columns (wide East Asian characters count two),
    the cut marked with "…"."""
    if width <= 0:
        return ""
    if text.isascii():
        return text if len(text) <= width else text[:width - 1] + "…"
    import unicodedata
    widths = [2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text]
    if sum(widths) <= width:
        return text
    used = 0
    for i, w in enumerate(widths):
        if used + w > width - 1:
            return text[:i] + "…"
        used += w
    return text


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """Go's strconv.Quote: double quotes, printable characters as they are."""
    out = []
    for c in text:
        if c in _GO_ESCAPES:
            out.append(_GO_ESCAPES[c])
        elif c.isprintable():
            out.append(c)
        elif ord(c) < 0x80:
            out.append("\\x%02x" % ord(c))
        else:
            out.append(("\\u%04x" if ord(c) < 0x10000 else "\\U%08x") % ord(c))
    return '"' + "".join(out) + '"'


def go_time(epoch: float) -> str:
    """Go's Time.String of whole seconds, in local time: ``2026-12-02 01:52:24 +0000 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S %z %Z", time.localtime(int(epoch)))


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
