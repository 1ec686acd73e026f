"""Lifecycle verbs: stop, kill, restart, wait (Docker's flags, output and exit codes)."""

import sys

from rootless.cli import out


def add_parsers(sub, csub) -> None:
    """Each verb at the top level and under ``container``."""
    for parsers in ((sub, "stop"), (csub, "stop"), (sub, "restart"), (csub, "restart")):
        if parsers[0] is None:
            continue
        p = parsers[0].add_parser(parsers[1], help="%s one or more running containers" % parsers[1])
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        p.add_argument("-s", "--signal", default=None, help="signal to send to the container")
        p.add_argument("-t", "--timeout", "--time", type=int, default=None,
                       help="seconds to wait before killing the container")
        p.set_defaults(handler=cmd_stop if parsers[1] == "stop" else cmd_restart)
    for parent in (p for p in (sub, csub) if p is not None):
        p = parent.add_parser("kill", help="kill one or more running containers")
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        p.add_argument("-s", "--signal", default="KILL", help="signal to send to the container (default KILL)")
        p.set_defaults(handler=cmd_kill)
        p = parent.add_parser("wait", help="block until containers stop, then print their exit codes")
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        p.set_defaults(handler=cmd_wait)
        for verb in ("pause", "unpause"):
            p = parent.add_parser(verb, help="%s all processes within one or more containers" % verb)
            p.add_argument("containers", nargs="+", metavar="CONTAINER")
            p.set_defaults(handler=cmd_pause if verb == "pause" else cmd_unpause)


def _each(ctx, refs, act) -> int:
    """``act(record, ref)`` for each container; errors are reported one line each and the
    last one's exit code returned, as Docker does for several containers."""
    from rootless.errors import RootlessError
    from rootless.runtime import state
    from rootless.runtime.start import remove
    paths = ctx.paths()
    containers = state.Containers(paths)
    failed = None
    for ref in refs:
        try:
            act(containers.find(ref, lambda r: remove(paths, r)), ref)
        except RootlessError as e:
            sys.stderr.write("rootless: error: %s\n" % e)
            failed = e
    return failed.exit_code if failed else 0


def _signal(args):
    from rootless.runtime.lifecycle import signal_number
    return signal_number(args.signal) if args.signal else None


def cmd_stop(ctx, args):
    from rootless.runtime import lifecycle
    sig = _signal(args)

    def stop(record, ref):
        lifecycle.stop(ctx.paths(), record, args.timeout, sig)
        out(ref)
    return _each(ctx, args.containers, stop)


def cmd_restart(ctx, args):
    from rootless.runtime import lifecycle
    sig = _signal(args)

    def restart(record, ref):
        lifecycle.restart(ctx.paths(), record, args.timeout, sig)
        out(ref)
    return _each(ctx, args.containers, restart)


def cmd_kill(ctx, args):
    from rootless.runtime import lifecycle
    sig = _signal(args)

    def kill(record, ref):
        lifecycle.kill(ctx.paths(), record, sig)
        out(ref)
    return _each(ctx, args.containers, kill)


def cmd_pause(ctx, args):
    from rootless.runtime import pausing

    def pause(record, ref):
        pausing.pause(ctx.paths(), record)
        out(ref)
    return _each(ctx, args.containers, pause)


def cmd_unpause(ctx, args):
    from rootless.runtime import pausing

    def unpause(record, ref):
        pausing.unpause(ctx.paths(), record)
        out(ref)
    return _each(ctx, args.containers, unpause)


def cmd_wait(ctx, args):
    from rootless.runtime import lifecycle

    def wait(record, ref):
        out(str(lifecycle.wait_exit(ctx.paths(), record)))
    return _each(ctx, args.containers, wait)
