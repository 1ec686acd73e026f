"""``port`` and ``container port``: a container's published ports, as Docker's client
prints them (``80/tcp -> 0.0.0.0:8080``, or the host addresses of one port).

The bindings are the ones the runtime made, kept in the container's record while it
runs (``network.ports``); a container that is not running has none, so ``port`` prints
nothing and exits 0, and asking for one port is Docker's ``No public port`` error, exit 1.
"""

from rootless.cli import out


def add_parsers(sub, csub) -> None:
    for parent in (p for p in (sub, csub) if p is not None):
        p = parent.add_parser("port", help="list port mappings or a specific mapping for the container")
        p.add_argument("container", metavar="CONTAINER")
        p.add_argument("private", nargs="?", metavar="PRIVATE_PORT[/PROTO]")
        p.set_defaults(handler=cmd_port)


def cmd_port(ctx, args) -> int:
    from rootless.errors import NotFound
    from rootless.network import ports
    from rootless.runtime import state
    from rootless.runtime.start import remove
    from rootless.runtime.status import is_running
    paths = ctx.paths()
    record = state.Containers(paths).find(args.container, lambda r: remove(paths, r))
    actual = ports.from_json(record.get("ports")) if is_running(record) else []
    lines = ports.port_lines(actual, args.private)
    if args.private is not None and not lines:
        error = NotFound("No public port '%s' published for %s" % (args.private, args.container))
        error.exit_code = 1  # as Docker's client: scripts test for it
        raise error
    out("\n".join(lines))
    return 0
