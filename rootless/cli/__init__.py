"""The command line: parse, dispatch, and turn errors into Docker's exit codes.

Each verb lives in a small module (``images``, ``system``) that registers its argparse
sub-parser and a handler ``(ctx, args) -> int``. Handlers call one library function and
print; they are the only code that writes to stdout/stderr. Library modules are imported
inside the handlers, so ``rootless version`` loads none of tarfile, urllib or ctypes.
"""

import argparse
import os
import sys

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


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (exit 125, one line) instead of exiting 2."""

    def __init__(self, *args, **kw):
        kw.setdefault("formatter_class", Formatter)
        super().__init__(*args, **kw)

    def error(self, message):
        raise UsageError("%s: %s (see '%s --help')" % (self.prog, message, self.prog))


class Context:
    """What every handler gets besides its own options (read-only by convention).

    A plain class, not a dataclass: importing dataclasses costs ~10 ms of start-up.
    """

    __slots__ = ("root", "debug", "log_level")

    def __init__(self, root, debug, log_level):
        self.root, self.debug, self.log_level = root, debug, log_level

    def paths(self):
        from rootless import paths
        return paths.resolve(self.root)

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
    "version": "system", "info": "system", "system": "system",
    "image": "images", "images": "images", "load": "images", "save": "images",
    "import": "images", "tag": "images", "rmi": "images", "history": "images",
    "inspect": "images",
    "container": "containers", "create": "containers", "run": "containers", "start": "containers",
    "rm": "containers", "ps": "containers", "stop": "containers", "kill": "containers",
    "restart": "containers", "wait": "containers", "logs": "containers", "rename": "containers",
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
        importlib.import_module("rootless.cli." + name).register(sub)
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


def _error(message: str) -> None:
    message = " ".join(message.split("\n"))
    sys.stderr.write("%s: error: %s\n" % (PROG, message))


def out(text: str) -> None:
    if text:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
