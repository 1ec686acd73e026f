"""The command line: parse, dispatch, and turn errors into Docker's exit codes.

Each verb lives in a small module (``images``, ``system``) that registers its argparse
sub-parser and a handler ``(ctx, args) -> int``. Handlers call one library function and
print; they are the only code that writes to stdout/stderr. Library modules are imported
inside the handlers, so ``rootless version`` loads none of tarfile, urllib or ctypes.
argparse itself is in ``cli.parser``; a usual ``run`` line is parsed without it
(``cli.fastparse``).
"""

import os
import sys

from rootless import __version__
from rootless.errors import RootlessError

PROG = "rootless"


# Go's strconv.ParseBool, which Docker's boolean flags use for ``--rm=VALUE``.
BOOL_WORDS = {"1": True, "t": True, "T": True, "true": True, "TRUE": True, "True": True,
              "0": False, "f": False, "F": False, "false": False, "FALSE": False, "False": False}


class Context:
    """What every handler gets besides its own options (read-only by convention).

    A plain class, not a dataclass: importing dataclasses costs ~10 ms of start-up.
    """

    __slots__ = ("root", "debug", "log_level", "image_stores", "_paths")

    def __init__(self, root, debug, log_level, image_stores=None):
        self.root, self.debug, self.log_level = root, debug, log_level
        self.image_stores = image_stores  # --image-store DIRs (None: ROOTLESS_IMAGE_STORE's)
        self._paths = None

    def paths(self):
        """Resolved once a command: the default root's check reads all of
        /proc/self/mountinfo, which on a cluster node holds hundreds of mounts, and a
        ``run`` asks four times."""
        if self._paths is None:
            from rootless import paths
            self._paths = paths.resolve(self.root, image_stores=self.image_stores)
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


def command_word(argv):
    """The first word of argv that is not a global option (or None)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in ("--root", "--image-store", "-l", "--log-level"):
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def global_args(p) -> None:
    """The options before the command (argparse's top-level parser, and cli.fastparse)."""
    p.add_argument("--root", metavar="DIR", help="storage root (default: $ROOTLESS_ROOT or "
                   "~/.local/share/rootless; a local directory if that is on NFS)")
    p.add_argument("--image-store", metavar="DIR", action="append",
                   help="a storage root to read images from, never written (repeatable; default: "
                   "$ROOTLESS_IMAGE_STORE, DIRs separated by ':')")
    p.add_argument("-D", "--debug", action="store_true", help="print debug messages")
    p.add_argument("-l", "--log-level", default="info",
                   choices=["debug", "info", "warn", "error", "fatal"], help="logging level")
    p.add_argument("-v", "--version", action="store_true", help="print the version and exit")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser = None
    if command_word(argv) == "run":
        from rootless.cli import fastparse
        args = fastparse.parse_run(argv)  # None: a line it leaves to argparse
    if args is None:
        from rootless.cli.parser import build_parser
        parser = build_parser(argv)
    try:
        if args is None:
            args = parser.parse_args(argv)
        if args.version:
            print("rootless version %s" % __version__)
            return 0
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.print_help()
            return 0 if args.command is None else 125
        ctx = Context(args.root, args.debug or args.log_level == "debug", args.log_level,
                      getattr(args, "image_store", None))
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
