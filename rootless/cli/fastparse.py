"""``run``'s usual command lines, parsed without argparse.

argparse, with the ``re`` and ``enum`` it imports, and the building of ``run``'s sixty
options cost every ``run`` ~2 ms, a twentieth of ``run --rm IMAGE true``. So ``run``'s
options are declared once (``cli.containers._run_args``, ``cli.global_args``), and read
here by a recorder that keeps what each ``add_argument`` says; ``parse_run`` then reads
the line the way argparse reads it, for the forms people write:

* options before the command word: those of ``global_args``;
* ``--flag``, ``--flag=VALUE``, ``--flag VALUE``, ``-f VALUE``, short boolean flags alone
  or together (``-it``), boolean flags as ``--rm=false`` (cli.BOOL_WORDS);
* the image, then everything after it as the command (argparse's ``...``).

Anything else gives None, and argparse parses the line: an unknown or misspelt flag, a
missing value, a value that begins with ``-``, ``--``, ``--help``, an attached short value
(``-eX``), a choice not in its list, a flag with a ``type`` or an ``nargs``. Its answers,
help and errors (Docker's, from cli.usage) are argparse's; for the lines read here, the
result is argparse's Namespace, attribute for attribute (tests/unit/test_fastparse.py
compares them over many lines).
"""

import types

from rootless.cli import BOOL_WORDS, global_args

_BOOL = {"store_true": True, "store_false": False}


class _Option:
    __slots__ = ("dest", "action", "default", "choices", "const")

    def __init__(self, dest, action, default, choices, const):
        self.dest, self.action, self.default, self.choices, self.const = dest, action, default, choices, const


class Recorder:
    """What a parser-building function declares: its options and positionals. Raises
    Unreadable for a declaration these rules do not cover (then argparse is used)."""

    def __init__(self) -> None:
        self.options = {}  # option string -> _Option
        self.positionals = []  # (dest, nargs)
        self.defaults = {}

    def add_argument(self, *names, **kw):
        action = kw.get("action", "store")
        if kw.get("type") is not None or kw.get("nargs") not in (None, "...") \
                or action not in ("store", "append", "store_true", "store_false"):
            raise Unreadable(names)
        if not names[0].startswith("-"):
            self.positionals.append((kw.get("dest") or names[0], kw.get("nargs")))
            return
        if kw.get("nargs") is not None:
            raise Unreadable(names)
        dest = kw.get("dest") or next((n for n in names if n.startswith("--")), names[0]).lstrip("-").replace("-", "_")
        if action in _BOOL:
            default = kw.get("default", not _BOOL[action])
        else:
            default = kw.get("default")
        option = _Option(dest, action, default, kw.get("choices"), _BOOL.get(action))
        for name in names:
            self.options[name] = option

    def set_defaults(self, **kw) -> None:
        self.defaults.update(kw)


class Unreadable(Exception):
    """A declaration, or a command line, that argparse must read."""


def parse_run(argv):
    """The Namespace argparse would give for a ``run`` line, or None (see above)."""
    from rootless.cli import containers
    top, run = Recorder(), Recorder()
    try:
        global_args(top)
        containers._run_args(run)
        values = {}
        at = _options(top, argv, 0, values)
        if at >= len(argv) or argv[at] != "run":
            return None
        values["command"] = "run"
        at = _options(run, argv, at + 1, values)
    except Unreadable:
        return None
    rest = argv[at:]
    for dest, nargs in run.positionals:
        if nargs == "...":
            values[dest], rest = list(rest), []
        elif rest:
            values[dest], rest = rest[0], rest[1:]
        else:
            return None  # the image is missing: argparse says so, in Docker's words
    if rest:
        return None
    namespace = {}
    for recorder in (top, run):
        for option in recorder.options.values():
            # argparse's default of an append option is its default as given (None stays None).
            namespace.setdefault(option.dest, list(option.default) if option.action == "append"
                                 and option.default is not None else option.default)
        namespace.update(recorder.defaults)
    for dest, value in values.items():
        namespace[dest] = value
    return types.SimpleNamespace(**namespace)


def _options(recorder, argv, at, values):
    """Read ``recorder``'s options from argv[at:] into values, up to the first word that is
    not one (returned: its index)."""
    while at < len(argv):
        word = argv[at]
        if not word.startswith("-") or word == "-":
            return at
        if word == "--" or word[1:2].isdigit():  # argparse's own rules (negative numbers)
            raise Unreadable(word)
        if word.startswith("--"):
            name, eq, inline = word.partition("=")
            option = recorder.options.get(name)
            if option is None:
                raise Unreadable(word)
            if option.const is not None:
                if eq and inline not in BOOL_WORDS:
                    raise Unreadable(word)
                values[option.dest] = (BOOL_WORDS[inline] == option.const) if eq else option.const
                at += 1
                continue
            if eq:
                if inline.startswith("-"):
                    raise Unreadable(word)  # argparse's versions differ on "--opt=--"
                value, at = inline, at + 1
            else:
                value, at = _value(argv, at + 1, word), at + 2
            _store(option, value, values)
            continue
        # short options: -x VALUE, or boolean ones alone or together (-it)
        option = recorder.options.get(word)
        if option is not None and option.const is None:
            _store(option, _value(argv, at + 1, word), values)
            at += 2
            continue
        for letter in word[1:]:
            flag = recorder.options.get("-" + letter)
            if flag is None or flag.const is None:
                raise Unreadable(word)
            values[flag.dest] = flag.const
        at += 1
    return at


def _value(argv, at, flag):
    if at >= len(argv) or argv[at].startswith("-"):
        raise Unreadable(flag)  # missing, or a word argparse may take for a flag
    return argv[at]


def _store(option, value, values):
    if option.choices is not None and value not in option.choices:
        raise Unreadable(value)
    if option.action == "append":
        values.setdefault(option.dest, list(option.default or [])).append(value)
    else:
        values[option.dest] = value
