"""The command line: parse, dispatch, and turn errors into Docker's exit codes.

Each verb lives in a small module (``images``, ``system``) that registers its argparse
sub-parser and a handler ``(ctx, args) -> int``. Handlers call one library function and
print; they are the only code that writes to stdout/stderr. Library modules are imported
inside the handlers, so ``rootless version`` loads none of tarfile, urllib or ctypes.
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
import argparse

from rootless import __version__
from rootless.errors import RootlessError, UsageError

# argparse asks gettext to translate every string it handles, and gettext searches the
# locale directories again on each call (~9 ms a run here). Our messages are English, so
# argparse's are too.
argparse._ = lambda message: message
argparse.ngettext = lambda singular, plural, n: singular if n == 1 else plural

PROG = "rootless"


class Formatter(argparse.HelpFormatter):
    """argparse's formatter, told the width so that it does not import shutil (and with it
    bz2 and lzma) to ask: argparse builds one for every argument it registers."""

    def __init__(self, prog, **kw):
        if kw.get("width") is None:
            try:
                columns = int(os.environ.get("COLUMNS") or os.get_terminal_size(sys.stdout.fileno()).columns)
            except (OSError, ValueError, AttributeError):
                columns = 80
            kw["width"] = max(columns - 2, 40)
        super().__init__(prog, **kw)


# Go's strconv.ParseBool, which Docker's boolean flags use for ``--rm=VALUE``.
BOOL_WORDS = {"1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
              "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False}


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


class Context:
    """What every handler gets besides its own options (read-only by convention).

    A plain class, not a dataclass: importing dataclasses costs ~10 ms of start-up.
    """

    __slots__ = ("root", "debug", "log_level", "_paths")

    def __init__(self, root, debug, log_level):
        self.root, self.debug, self.log_level = root, debug, log_level
        self._paths = None

    def paths(self):
        """Resolved once a command: the default root's check reads all of
        /proc/self/mountinfo, which on a cluster node holds hundreds of mounts, and a
        ``run`` asks four times."""
        if self._paths is None:
            from rootless import paths
            self._paths = paths.resolve(self.root)
        return self._paths

    def store(self, **kw):
        """The image store, told how to learn what containers use (read only when rmi,
        prune or garbage collection asks, so commands that never ask pay nothing)."""
        from rootless.image.store import Store
        paths = self.paths()

        def usage():
            from rootless.cli.images import container_usage
            return container_usage(paths)
        return Store(paths, debug=self.log if self.debug else None, usage=usage, **kw)

    def log(self, message: str) -> None:
        sys.stderr.write("rootless: debug: %s\n" % message)


# Which module registers each top-level command. Only the module of the command being run
# is imported and registered: building every sub-parser costs start-up time on each call.
COMMAND_MODULES = {
    "version": "system", "info": "system", "system": "system", "volume": "volumes",
    "image": "images", "images": "images", "load": "images", "save": "images",
    "import": "images", "tag": "images", "rmi": "images", "history": "images",
    "inspect": "inspect",
    "container": "containers", "create": "containers", "run": "containers", "start": "containers",
    "rm": "containers", "ps": "containers", "stop": "containers", "kill": "containers",
    "restart": "containers", "wait": "containers", "logs": "containers", "rename": "containers",
    "pause": "containers", "unpause": "containers", "stats": "containers", "update": "containers",
    "exec": "containers", "attach": "containers", "cp": "containers", "export": "containers",
    "diff": "containers", "commit": "containers", "top": "containers", "port": "containers",
    "pull": "registry", "push": "registry", "search": "registry", "login": "login", "logout": "login",
}


def _command_word(argv):
    """The first word of argv that is not a global option (or None)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in ("--root", "-l", "--log-level"):
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def build_parser(argv=None) -> Parser:
    parser = Parser(prog=PROG, description="Run containers as an unprivileged user, "
                    "with Docker's commands and no daemon.")
    parser.add_argument("--root", metavar="DIR", help="storage root (default: $ROOTLESS_ROOT or "
                        "~/.local/share/rootless; a local directory if that is on NFS)")
    parser.add_argument("-D", "--debug", action="store_true", help="print debug messages")
    parser.add_argument("-l", "--log-level", default="info",
                        choices=["debug", "info", "warn", "error", "fatal"], help="logging level")
    parser.add_argument("-v", "--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    word = _command_word(argv or [])
    wanted = [COMMAND_MODULES[word]] if word in COMMAND_MODULES else sorted(set(COMMAND_MODULES.values()))
    import importlib
    for name in wanted:
        module = importlib.import_module("rootless.cli." + name)
        if name == "containers":
            module.register(sub, word if word in COMMAND_MODULES else None)
        else:
            module.register(sub)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
        if args.version:
            print("rootless version %s" % __version__)
            return 0
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 0 if args.command is None else 125
        ctx = Context(args.root, args.debug or args.log_level == "debug", args.log_level)
        return handler(ctx, args) or 0
    except RootlessError as e:
        _error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output went to a pipe that closed (``rootless images | head``): not an error.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except OSError as e:
        _error("%s%s" % (e.strerror or e, (": " + e.filename) if getattr(e, "filename", None) else ""))
        return 125


def exit_now(code: int) -> None:
    """End the CLI process with ``code`` once its output is flushed, skipping the
    interpreter's finalization: tearing down every module a ``run`` loaded costs it ~8 ms,
    a tenth of the command. The entry points call this; ``main()`` itself returns, for
    callers in the same process. Whatever could still depend on a normal shutdown takes
    the normal way: a thread still running, a profiler or tracer, or a flush that fails (a
    closed pipe, reported as Python always reports it). atexit handlers still run."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        sys.exit(code)
    threading = sys.modules.get("threading")  # not loaded: no thread was ever started
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    if sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)  # cProfile, coverage: they write their results at the normal exit
    import atexit
    atexit._run_exitfuncs()
    os._exit(code)


def require_tty(interactive: bool, tty: bool) -> None:
    """Docker's check before ``run -it`` (and ``start -ai``) does anything: with both, the
    terminal is stdin, so stdin must be one. ``-t`` alone is fine (the output is a pty)."""
    if interactive and tty:
        from rootless.runtime.terminal import require_stdin_tty
        require_stdin_tty()


def _error(message: str) -> None:
    message = " ".join(message.split("\n"))
    sys.stderr.write("%s: error: %s\n" % (PROG, message))


def out(text: str) -> None:
    if text:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
