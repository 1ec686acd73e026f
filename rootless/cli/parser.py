"""The argparse side of the command line: Docker's usage errors, boolean flags that take
``=VALUE``, and the parser of the command being run (``build_parser``).

Imported only when a command line is parsed with argparse: ``run`` parses its usual
lines without it (``cli.fastparse``), and importing it (with ``re`` and ``enum``) costs
~1 ms, building ``run``'s parser another.
"""

import os
import sys

if "argparse" not in sys.modules and "gettext" not in sys.modules:
    # argparse imports gettext only to translate its messages, which ours never are (see
    # below): a stand-in for the length of that import saves every command ~0.7 ms.
    import types
    _stand_in = types.ModuleType("gettext")
    _stand_in.gettext = lambda message: message
    _stand_in.ngettext = lambda singular, plural, n: singular if n == 1 else plural
    sys.modules["gettext"] = _stand_in
    try:
        import argparse
    finally:
        del sys.modules["gettext"], _stand_in
else:
    import argparse

from rootless.cli import BOOL_WORDS, COMMAND_MODULES, PROG, command_word, global_args
from rootless.errors import UsageError

# argparse asks gettext to translate every string it handles, and gettext searches the
# locale directories again on each call (~9 ms a run here). Our messages are English, so
# argparse's are too.
argparse._ = lambda message: message
argparse.ngettext = lambda singular, plural, n: singular if n == 1 else plural


class Formatter(argparse.HelpFormatter):
    """argparse's formatter, told the width so that it does not import shutil (and with it
    bz2 and lzma) to ask: argparse builds one for every argument it registers, so the
    width is asked once a command."""

    width = 0

    def __init__(self, prog, **kw):
        if kw.get("width") is None:
            if not Formatter.width:
                try:
                    columns = int(os.environ.get("COLUMNS") or os.get_terminal_size(sys.stdout.fileno()).columns)
                except (OSError, ValueError, AttributeError):
                    columns = 80
                Formatter.width = max(columns - 2, 40)
            kw["width"] = Formatter.width
        super().__init__(prog, **kw)


_UNSET = object()


class BoolFlag(argparse.Action):
    """``store_true`` (and ``store_false``) that also takes Docker's ``--rm=false``.

    argparse gives a flag with no value no way to read ``=VALUE``, and ``nargs="?"`` would
    take the image in ``--rm alpine`` for the value. So each ``--flag=WORD`` spelling is
    also a name of this action (added by Parser.parse_known_args, which argparse matches
    exactly before it splits at ``=``), and the action reads WORD from the name it was
    called by. A bad WORD is explained by cli.usage."""

    def __init__(self, option_strings, dest, default=_UNSET, const=True, **kw):
        super().__init__(option_strings, dest, nargs=0, const=const,
                         default=(not const) if default is _UNSET else default, **kw)

    def __call__(self, parser, namespace, values, option_string=None):
        word = option_string.partition("=")[2] if option_string and "=" in option_string else "true"
        setattr(namespace, self.dest, BOOL_WORDS[word] == self.const)


class FalseFlag(BoolFlag):
    def __init__(self, option_strings, dest, **kw):
        super().__init__(option_strings, dest, const=False, **kw)


class ParseRefused(Exception):
    """argparse's own complaint, caught by Parser.parse_known_args and explained there."""


class Parser(argparse.ArgumentParser):
    """argparse that speaks Docker's usage errors: one line, exit 125 (UsageError).

    Long flags are never abbreviated (Docker's parser refuses ``--priv``), boolean flags
    take ``=VALUE``, and when parsing fails, cli.usage works out what Docker would say
    from the command line and the parser that refused it (the verb's, not the top's)."""

    def __init__(self, *args, **kw):
        kw.setdefault("formatter_class", Formatter)
        kw.setdefault("allow_abbrev", False)
        super().__init__(*args, **kw)
        self.register("action", "store_true", BoolFlag)
        self.register("action", "store_false", FalseFlag)

    def parse_known_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        fresh = namespace is None
        self._add_bool_spellings()
        try:
            namespace, extras = super().parse_known_args(args, namespace)
        except ParseRefused as e:
            raise self._refusal(args, str(e)) from None
        except UsageError as refused:
            # A sub-command refused its words; a bad flag before them comes first, as in Docker.
            from rootless.cli import usage
            raise usage.before_command(self, args) or refused
        if extras:
            # A verb's parser refuses here, so the error names the verb's help (argparse
            # would leave extras to the top-level parser, which names its own). flags_first
            # gives None for a line already in order, so this retries once at most.
            from rootless.cli import usage
            retry = usage.flags_first(self, args) if fresh else None
            if retry is None:
                raise self._refusal(args, "unrecognized arguments: %s" % " ".join(extras))
            return self.parse_known_args(retry)
        return namespace, extras

    def error(self, message):
        raise ParseRefused(message)

    def _add_bool_spellings(self):
        """``--rm=true``, ``-t=0``...: names of the BoolFlag actions, added only to the
        parsers that parse (a dozen dictionary entries a flag, microseconds)."""
        for action in self._actions:
            if isinstance(action, BoolFlag):
                for option in action.option_strings:
                    for word in BOOL_WORDS:
                        self._option_string_actions.setdefault(option + "=" + word, action)

    def _refusal(self, args, message):
        from rootless.cli import usage
        return usage.explain(self, args, message)


def build_parser(argv=None) -> Parser:
    parser = Parser(prog=PROG, description="Run containers as an unprivileged user, "
                    "with Docker's commands and no daemon.")
    global_args(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    word = command_word(argv or [])
    wanted = [COMMAND_MODULES[word]] if word in COMMAND_MODULES else sorted(set(COMMAND_MODULES.values()))
    import importlib
    for name in wanted:
        module = importlib.import_module("rootless.cli." + name)
        if name == "containers":
            module.register(sub, word if word in COMMAND_MODULES else None)
        else:
            module.register(sub)
    return parser


