"""The command-line parser's Docker rules (cli/__init__.py Parser, cli/usage.py), on the
real parsers of every verb: boolean values, no abbreviations, and the table of Docker's
flags against what each parser has."""

import argparse
import os
import subprocess
import sys

import pytest

from rootless.cli import docker_flags, usage
from rootless.cli.parser import Parser, build_parser
from rootless.errors import UsageError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def all_parsers():
    """Every parser of the command line, top level first (aliases once)."""
    found, todo = [], [build_parser([])]
    while todo:
        parser = todo.pop(0)
        if any(parser is p for p in found):
            continue
        found.append(parser)
        for action in parser._actions:
            if action.nargs == argparse.PARSER:
                todo.extend(action.choices.values())
    return found


def parse(*argv):
    return build_parser(list(argv)).parse_args(list(argv))


def refusal(*argv) -> str:
    with pytest.raises(UsageError) as e:
        parse(*argv)
    return str(e.value)


def test_every_parser_refuses_abbreviations_and_takes_boolean_values():
    parsers = all_parsers()
    assert len(parsers) > 25
    for parser in parsers:
        assert parser.allow_abbrev is False, parser.prog
        bools = [a for a in parser._actions if a.nargs == 0 and a.const in (True, False)]
        assert all(type(a).__name__ in ("BoolFlag", "FalseFlag") for a in bools), parser.prog


@pytest.mark.parametrize("word, value", [("true", True), ("1", True), ("t", True), ("T", True),
                                         ("TRUE", True), ("True", True), ("false", False),
                                         ("0", False), ("f", False), ("F", False),
                                         ("FALSE", False), ("False", False)])
def test_boolean_spellings(word, value):
    args = parse("run", "--rm=" + word, "-t=" + word, "busybox")
    assert args.rm is value and args.tty is value and args.interactive is False
    assert parse("history", "-H=" + word, "x").human is value  # a flag whose default is true
    parser = Parser(prog="t")
    parser.add_argument("--color", action="store_false")
    assert parser.parse_args([]).color is True
    assert parser.parse_args(["--color"]).color is False
    assert parser.parse_args(["--color=" + word]).color is (not value)


def test_boolean_flags_do_not_take_the_next_word():
    args = parse("run", "--rm", "true", "echo")
    assert args.rm is True and args.image == "true" and args.args == ["echo"]
    args = parse("run", "-it", "busybox", "--rm=true", "-x")
    assert args.interactive and args.tty and not args.rm and args.args == ["--rm=true", "-x"]


@pytest.mark.parametrize("word", ["yes", "no", "2", "", "tRUE", "on"])
def test_bad_boolean_values(word):
    assert refusal("run", "--rm=" + word, "busybox") == \
        'invalid argument "%s" for "--rm" flag: expected true or false (see \'rootless run --help\')' % word
    assert refusal("images", "-a=" + word).startswith('invalid argument "%s" for "-a, --all" flag' % word)


def test_docker_flags_are_unsupported_exactly_where_the_parser_lacks_them():
    """The table minus each verb's parser: a flag rootless has is never "not supported",
    whichever verb, and every Docker flag it lacks is (not "unknown")."""
    checked = 0
    for parser in all_parsers():
        path = usage.command_path(parser)
        for name, short in usage.docker_flags(path).items():
            has = name in parser._option_string_actions
            problem = usage.Walk(parser, [name + "=x" if _takes_value(parser, name) else name]).problem
            if has:
                assert problem is None or "not supported" not in problem, (path, name, problem)
            else:
                assert problem == "%s is not supported yet" % name, (path, name, problem)
            if short and "-" + short not in parser._option_string_actions:
                problem = usage.Walk(parser, ["-" + short]).problem
                assert problem.startswith("-%s " % short) and "not supported yet" in problem, (path, short)
                assert ("use %s" % name in problem) == has, problem
            checked += 1
    assert checked > 200


def _takes_value(parser, name):
    action = parser._option_string_actions.get(name)
    return action is not None and action.nargs != 0


def test_every_docker_command_of_rootless_has_flags_in_the_table():
    """The table covers each command rootless has that Docker has (by name or alias)."""
    for parser in all_parsers():
        path = usage.command_path(parser)
        if path and usage.docker_command(path):
            assert usage.docker_command(path) in docker_flags.COMMANDS
    assert usage.docker_command("ps") == "container ls"
    assert usage.docker_command("rmi") == "image rm"
    assert usage.docker_flags("images")["--filter"] == "f"
    assert usage.docker_command("frobnicate") is None


def test_arity_of_the_parsers():
    parsers = {usage.command_path(p): p for p in all_parsers()}
    assert usage.arity(parsers["run"]) == (1, usage.MANY)
    assert usage.arity(parsers["tag"]) == (2, 2)
    assert usage.arity(parsers["images"]) == (0, 1)
    assert usage.arity(parsers["ps"]) == (0, 0)
    assert usage.arity(parsers["import"]) == (1, 2)


def test_flags_first_moves_flags_only_where_docker_intersperses():
    parsers = {usage.command_path(p): p for p in all_parsers()}
    assert usage.flags_first(parsers["rm"], ["a", "-f", "b"]) == ["-f", "a", "b"]
    assert usage.flags_first(parsers["rm"], ["-f", "a", "b"]) is None  # nothing to move
    assert usage.flags_first(parsers["run"], ["busybox", "-f", "x"]) is None  # the command's words
    assert usage.flags_first(parsers["rm"], ["a", "--nope", "b"]) is None  # a problem to report
    args = parse("save", "a", "-o", "out.tar", "b")
    assert args.images == ["a", "b"] and args.output == "out.tar"


def test_a_command_line_that_parses_imports_neither_usage_nor_the_table():
    code = ("import sys; from rootless.cli.parser import build_parser; "
            "a = ['run', '--rm=true', '-it', '--name', 'x', 'busybox', 'true']; build_parser(a).parse_args(a); "
            "print(sorted(m for m in ('rootless.cli.usage', 'rootless.cli.docker_flags') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.stdout.strip() == "[]", proc.stderr
