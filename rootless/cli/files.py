"""``cp`` and ``export`` (also under ``container``): files between a container and the host."""

import sys


def add_parsers(sub, csub) -> None:
    for parent in (p for p in (sub, csub) if p is not None):
        p = parent.add_parser("cp", help="copy files/folders between a container and the local filesystem",
                              usage="rootless cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n"
                                    "       rootless cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH")
        p.add_argument("src", metavar="SRC")
        p.add_argument("dst", metavar="DEST")
        p.add_argument("-a", "--archive", action="store_true", help="archive mode (copy all uid/gid information)")
        p.add_argument("-L", "--follow-link", action="store_true", help="always follow symbol link in SRC_PATH")
        p.add_argument("-q", "--quiet", action="store_true", help="suppress progress output during copy; "
                       "progress output is automatically suppressed if no terminal is attached")
        p.set_defaults(handler=cmd_cp)
        p = parent.add_parser("export", help="export a container's filesystem as a tar archive")
        p.add_argument("container", metavar="CONTAINER")
        p.add_argument("-o", "--output", metavar="FILE", help="write to a file, instead of STDOUT")
        p.set_defaults(handler=cmd_export)


def cmd_cp(ctx, args) -> int:
    from rootless.runtime import cp
    done = cp.copy(ctx.paths(), args.src, args.dst, follow=args.follow_link, archive=args.archive,
                   stdin=sys.stdin.buffer, stdout=sys.stdout.buffer, debug=ctx.log if ctx.debug else None)
    if not args.quiet and args.dst != "-" and _terminal(sys.stderr):
        from rootless.units import human_size
        sys.stderr.write("Successfully copied %s to %s\n" % (human_size(done.size), done.shown))
    return 0


def cmd_export(ctx, args) -> int:
    from rootless.runtime import cp
    cp.export(ctx.paths(), args.container, args.output, sys.stdout.buffer)
    return 0


def _terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False
