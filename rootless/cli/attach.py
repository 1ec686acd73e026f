"""``attach`` and ``container attach``: the terminal joins a running container (Docker's flags)."""


def add_parsers(sub, csub) -> None:
    for p in [parent.add_parser("attach", help="attach local standard input, output, and error "
                                "streams to a running container")
              for parent in (sub, csub) if parent is not None]:
        p.add_argument("container", metavar="CONTAINER")
        p.add_argument("--detach-keys", default="", metavar="string",
                       help="override the key sequence for detaching a container (default ctrl-p,ctrl-q)")
        p.add_argument("--no-stdin", action="store_true", help="do not attach STDIN")
        p.add_argument("--sig-proxy", action="store_true", default=True,
                       help="proxy all received signals to the process (default true)")
        p.set_defaults(handler=cmd_attach)


def cmd_attach(ctx, args) -> int:
    from rootless.runtime import attached, state, terminal
    keys = terminal.detach_keys(args.detach_keys)
    record = state.Containers(ctx.paths()).find(args.container)
    return attached.attach(ctx.paths(), record, stdin=not args.no_stdin, detach_keys=keys,
                           sig_proxy=args.sig_proxy)
