"""Registry verbs: pull (push and search live here too)."""

def _tls_verify(text):
    from rootless.errors import UsageError
    if text is None:
        return None
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise UsageError("invalid --tls-verify %r: use true or false" % text)


def add_tls_args(p) -> None:
    p.add_argument("--tls-verify", default=None, metavar="BOOL",
                   help="verify TLS certificates (false also allows plain HTTP); default: true "
                   "unless the registry is listed in insecure-registries")
    p.add_argument("--cert-dir", default=None, metavar="DIR",
                   help="CA certificates for the registry (*.crt), as in Docker's certs.d")


def register(sub) -> None:
    parsers = [sub.add_parser("pull", help="pull an image from a registry")]
    for p in parsers:
        p.add_argument("name", metavar="NAME[:TAG|@DIGEST]")
        p.add_argument("-q", "--quiet", action="store_true", help="print only the image name")
        p.add_argument("--platform", default=None, help="OS/ARCH[/VARIANT] (default: this host's)")
        p.add_argument("-a", "--all-tags", action="store_true", help=argparse_suppress())
        add_tls_args(p)
        p.set_defaults(handler=cmd_pull)
    p = sub.add_parser("push", help="push an image to a registry")
    p.add_argument("name", metavar="NAME[:TAG]")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the digest")
    add_tls_args(p)
    p.set_defaults(handler=cmd_push)
    p = sub.add_parser("search", help="search a registry for images")
    p.add_argument("term", metavar="[REGISTRY/]TERM")
    p.add_argument("--limit", type=int, default=25, help="at most this many results")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate descriptions")
    p.add_argument("--format", help="table, json, or a Go-like template")
    add_tls_args(p)
    p.set_defaults(handler=cmd_search)


def argparse_suppress():
    import argparse
    return argparse.SUPPRESS


def cmd_pull(ctx, args):
    from rootless.errors import UsageError
    from rootless.image.pull import pull
    if args.all_tags:
        raise UsageError("pull --all-tags is not supported; pull the tags you need one by one")
    from rootless import space
    with space.for_store(ctx.paths().root, "pulling %s" % args.name):
        pull(ctx.store(), args.name, platform=args.platform, tls_verify=_tls_verify(args.tls_verify),
             cert_dir=args.cert_dir, quiet=args.quiet, debug=ctx.log if ctx.debug else None)
    return 0



def cmd_push(ctx, args):
    from rootless.image.push import push
    digest = push(ctx.store(), args.name, tls_verify=_tls_verify(args.tls_verify), cert_dir=args.cert_dir,
                  quiet=args.quiet, debug=ctx.log if ctx.debug else None)
    if args.quiet:
        print(digest)
    return 0


def cmd_search(ctx, args):
    from rootless.cli import format as fmt, out
    from rootless.image.search import search
    rows = search(args.term, limit=args.limit, tls_verify=_tls_verify(args.tls_verify), cert_dir=args.cert_dir,
                  debug=ctx.log if ctx.debug else None)
    for r in rows:
        if not args.no_trunc and len(r["Description"]) > 45:
            r["Description"] = r["Description"][:44] + "…"
    out(fmt.emit(rows, args.format, [("NAME", "Name"), ("DESCRIPTION", "Description"), ("STARS", "StarCount"),
                                     ("OFFICIAL", "IsOfficial")]))
    return 0
