"""Docker's usage errors, worked out after argparse has refused a command line.

argparse complains in its own order and words ("the following arguments are required:
IMAGE, COMMAND", "unrecognized arguments" from the top-level parser). Docker's parser
(pflag under cobra) walks the line left to right, stops at the first flag it does not
know or cannot parse, and only then counts the arguments. ``explain`` walks the refused
line the same way, over the parser that refused it, and says what Docker would, in one
line naming that parser's help:

    unknown flag: --foo (see 'rootless run --help')
    --volume is not supported yet (see 'rootless run --help')
    'rootless tag' requires 2 arguments (see 'rootless tag --help')
    rootless has no 'build' command yet (see 'rootless --help')

A flag "not supported yet" is one in Docker's table (docker_flags, from ``docker VERB
--help``) that the verb's parser lacks; the parser is asked, not a list, so a flag added
to rootless stops being reported by itself. This module and the table are imported only
on this failure path: a command line that parses pays for neither.

argparse's parsers are read through ``_actions`` and ``_option_string_actions``, the
only way it offers to list them (unchanged from Python 3.2 to 3.13).
"""

import argparse

from rootless.cli import BOOL_WORDS
from rootless.cli.parser import BoolFlag
from rootless.errors import UsageError

MANY = float("inf")
# How many words a positional takes: (at least, at most).
ARITY = {None: (1, 1), argparse.OPTIONAL: (0, 1), argparse.ZERO_OR_MORE: (0, MANY),
         argparse.ONE_OR_MORE: (1, MANY), argparse.REMAINDER: (0, MANY), argparse.PARSER: (1, MANY)}


def explain(parser, args, message: str) -> UsageError:
    """The error for ``args`` refused by ``parser``, where argparse said ``message``.

    The first problem in Docker's order wins: a flag (unknown, unsupported, missing its
    value, a bad boolean), then an unknown command, then the number of arguments; if none
    shows, argparse's own words (an invalid choice, say) without its prefix."""
    walk = Walk(parser, args)
    text = (walk.problem or _command_problem(parser, walk.positionals)
            or _arity_problem(parser, len(walk.positionals)) or message)
    return UsageError("%s (see '%s --help')" % (text, parser.prog))


def before_command(parser, args):
    """The error for a flag problem in ``args`` before the sub-command's words, or None
    (``rootless --foo run``: Docker reports --foo, not run's missing image)."""
    walk = Walk(parser, args)
    return UsageError("%s (see '%s --help')" % (walk.problem, parser.prog)) if walk.problem else None


def flags_first(parser, args):
    """``args`` with the flags moved before the arguments, or None if that changes nothing
    or is not how Docker reads them.

    Docker takes flags between arguments (``rm a -f b``); argparse fills a ``nargs="+"``
    positional from the first run of words only and leaves ``b`` over. ``run`` and the
    commands with sub-commands stop at their first argument, as in Docker."""
    walk = Walk(parser, args)
    if walk.problem or not walk.interspersed or _arity_problem(parser, len(walk.positionals)):
        return None
    reordered = walk.flags + (["--"] if any(w.startswith("-") for w in walk.positionals) else []) \
        + walk.positionals
    return reordered if reordered != list(args) else None


class Walk:
    """``args`` read as Docker reads them: the flags (with their values), the arguments,
    and the first problem met (a message), if any."""

    def __init__(self, parser, args):
        self.parser, self.options = parser, parser._option_string_actions
        self.interspersed = not any(a.nargs in (argparse.REMAINDER, argparse.PARSER)
                                    for a in _positionals(parser))
        self.flags, self.positionals, self.problem = [], [], None
        args, i = list(args), 0
        while i < len(args) and self.problem is None:
            word = args[i]
            if word == "--":
                self.positionals += args[i + 1:]
                break
            if word.startswith("--"):
                i = self._long(args, i)
            elif word.startswith("-") and word != "-":
                i = self._short(args, i)
            elif self.interspersed:
                self.positionals.append(word)
                i += 1
            else:
                self.positionals += args[i:]
                break

    def _long(self, args, i) -> int:
        name, sep, value = args[i].partition("=")
        action = self.options.get(name)
        if action is None:
            self.problem = _unknown_long(self.parser, name)
        elif action.nargs == 0:
            if sep and not (isinstance(action, BoolFlag) and value in BOOL_WORDS):
                self.problem = _bad_value(action, value)
        elif not sep:
            return self._value(args, i, name)
        self.flags.append(args[i])
        return i + 1

    def _short(self, args, i) -> int:
        """A cluster such as ``-it``, ``-e=A`` or ``-eA``: flags until one takes a value."""
        word = args[i]
        for j in range(1, len(word)):
            action = self.options.get("-" + word[j])
            if action is None:
                self.problem = _unknown_short(self.parser, word[j], word[j:])
                return i + 1
            if action.nargs != 0:
                if j + 1 == len(word):
                    return self._value(args, i, "'%s' in -%s" % (word[j], word[j]))
                break
            if word[j + 1:j + 2] == "=":
                if not (isinstance(action, BoolFlag) and word[j + 2:] in BOOL_WORDS):
                    self.problem = _bad_value(action, word[j + 2:])
                break
        self.flags.append(word)
        return i + 1

    def _value(self, args, i, name) -> int:
        """The flag at ``i`` takes the next word, whatever it looks like (as pflag does)."""
        if i + 1 >= len(args):
            self.problem = "flag needs an argument: %s" % name
            return i + 1
        self.flags += args[i:i + 2]
        return i + 2


def _positionals(parser):
    return [a for a in parser._actions if not a.option_strings]


def _bad_value(action, value) -> str:
    return 'invalid argument "%s" for "%s" flag: expected true or false' % (
        value, ", ".join(action.option_strings))


# -- Docker's table ---------------------------------------------------------------------------

def command_path(parser) -> str:
    """``rootless image ls`` -> ``image ls``; the top-level parser -> ``""``."""
    return parser.prog.partition(" ")[2]


def docker_command(path: str):
    """Docker's canonical name for a command path (``ps`` -> ``container ls``), or None."""
    from rootless.cli import docker_flags
    path = docker_flags.ALIASES.get(path, path)
    return path if path in docker_flags.COMMANDS else None


def docker_flags(path: str) -> dict:
    """The flags Docker's ``path`` has: ``--long`` -> shorthand letter ("" for none)."""
    from rootless.cli import docker_flags as table
    flags = {}
    for spec in table.COMMANDS.get(docker_command(path), ()):
        words = spec.split()
        flags[words[-1].rstrip("=")] = words[0][1:] if len(words) == 2 else ""
    return flags


def _unknown_long(parser, name: str) -> str:
    if name in docker_flags(command_path(parser)):
        return "%s is not supported yet" % name
    return "unknown flag: %s" % name


def _unknown_short(parser, letter: str, rest: str) -> str:
    for name, short in docker_flags(command_path(parser)).items():
        if short == letter:
            if name in parser._option_string_actions:
                return "-%s is not supported yet; use %s" % (letter, name)
            return "-%s (%s) is not supported yet" % (letter, name)
    return "unknown shorthand flag: '%s' in -%s" % (letter, rest)


# -- commands and arguments --------------------------------------------------------------------

def _command_problem(parser, positionals):
    """An unknown command under a parser with sub-commands: one Docker has, or a typo."""
    commands = [a for a in _positionals(parser) if a.nargs == argparse.PARSER]
    if not commands or not positionals or positionals[0] in commands[0].choices:
        return None
    path = (command_path(parser) + " " + positionals[0]).strip()
    if docker_command(path):
        return "rootless has no '%s' command yet" % path
    return "unknown command: %s %s" % (parser.prog, positionals[0])


def arity(parser):
    """(at least, at most) arguments the parser takes (its sub-commands aside)."""
    low = high = 0
    for action in _positionals(parser):
        if action.nargs == argparse.PARSER:
            return 0, MANY
        a, b = ARITY.get(action.nargs, (action.nargs, action.nargs))
        low, high = low + a, high + b
    return low, high


def _arity_problem(parser, count: int):
    """Cobra's words (cli/required.go) for a wrong number of arguments, or None."""
    low, high = arity(parser)
    if low <= count <= high:
        return None
    if high == 0:
        need = "accepts no arguments"
    elif low == high:
        need = "requires %d %s" % (low, _arguments(low))
    elif high == MANY:
        need = "requires at least %d %s" % (low, _arguments(low))
    elif low == 0:
        need = "requires at most %d %s" % (high, _arguments(high))
    else:
        need = "requires at least %d and at most %d %s" % (low, high, _arguments(high))
    return "'%s' %s" % (parser.prog, need)


def _arguments(n) -> str:
    return "argument" if n == 1 else "arguments"
