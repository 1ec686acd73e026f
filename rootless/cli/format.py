"""Output formatting as Docker does it: aligned tables, ``--format`` templates, JSON.

``--format`` templates are Go's text/template with Docker's functions, rendered by
``rootless.cli.template`` (imported only when a template is given, parsed once per
command and cached, so 50 rows cost one parse). This module adds what Docker's formatter
adds around the engine: ``table`` (a header row, columns aligned by ``table``; the header
is the template run on the column names with Docker's header functions, under which
``json``, ``upper`` and the others but ``pad`` leave a name alone), ``json`` (one object per
line, callable fields left out as Go's marshaller leaves out methods), ``\\t``/``\\n``
escapes, and the spaces trimmed around a listing's template.

Strictness (see ``rootless.cli.template``): listing rows (``emit``, ``check``) stand for
Docker's Go structs, so a missing field is an error; ``render`` is for an inspected object's
JSON (``image inspect``, container ``inspect``) and by default prints ``<no value>`` for a
missing key, as Go does with maps; pass ``strict=True`` for objects that are Go structs in
Docker (``version``, ``info``).
"""

import re
import time
from functools import lru_cache
from typing import Any, Dict, List, Optional, Sequence

from rootless.units import human_duration  # noqa: F401  (re-exported for the image verbs)

_HEADER_FUNCTIONS = ("json", "split", "join", "title", "lower", "upper", "truncate")


@lru_cache(maxsize=32)
def compile_template(template: str):
    """The parsed template (a ``rootless.cli.template.Template``); a bad one raises
    ``UsageError`` before anything is printed."""
    from rootless.cli import template as engine
    return engine.parse(template)


def render(template: str, obj: Any, header: bool = False, strict: bool = False) -> str:
    """Render one object through a template. ``strict``: a missing key is an error instead
    of ``<no value>``. ``header``: the table's header row (``obj`` names the columns)."""
    tmpl = compile_template(template)
    if header:
        return _render_header(tmpl, obj)
    return tmpl.execute(obj, strict)


def _keep_name(name: Any, *_ignored: Any) -> Any:
    return name


def _render_header(tmpl, obj: Any) -> str:
    """Docker runs the header with its header functions and ignores an error there, keeping
    what was rendered up to it."""
    from rootless.errors import UsageError
    try:
        return tmpl.execute(obj, False, dict((name, _keep_name) for name in _HEADER_FUNCTIONS))
    except UsageError as e:
        return getattr(e, "partial", "")


def _json_line(obj: Any) -> str:
    from rootless.cli.template import go_json
    return go_json(obj)


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
    ``--format``; ``quiet`` prints only ``quiet_field``. Rows are strict (Go structs): a
    template naming a field they lack fails, even when there are no rows.
    """
    if quiet:
        return "\n".join(str(o[quiet_field]) for o in objects)
    if fmt == "json":
        return "\n".join(_json_line(o) for o in objects)
    if not fmt or fmt == "table":
        header = [h for h, _ in columns]
        return table([header] + [[str(o[f]) for _, f in columns] for o in objects])
    is_table, body = _template_of(fmt)
    tmpl = compile_template(body)
    if is_table:
        names = dict((f, h) for h, f in columns)
        header_cells = _render_header(tmpl, _HeaderObject(names)).split("\t")
        rows = [header_cells] + [tmpl.execute(o, True).split("\t") for o in objects]
        return table(rows)
    return "\n".join(tmpl.execute(o, True) for o in objects)


def _template_of(fmt: str) -> "tuple[bool, str]":
    """(is it a table, the template) of a listing's ``--format``, as Docker's formatter reads
    it: ``table`` taken off, spaces trimmed, ``\\t`` and ``\\n`` made tab and newline."""
    is_table = fmt.startswith("table")
    body = fmt[len("table"):] if is_table else fmt
    return is_table, body.strip(" ").replace("\\t", "\t").replace("\\n", "\n")


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
        compile_template(_template_of(fmt)[1]).execute(sample, True)


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
