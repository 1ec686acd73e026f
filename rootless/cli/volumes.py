"""``volume create|ls|inspect|rm|prune``: Docker's volume commands (storage.volumes)."""

from __future__ import annotations

import sys

from rootless.cli import out


def register(sub) -> None:
    v = sub.add_parser("volume", help="manage volumes")
    vsub = v.add_subparsers(dest="volume_command", metavar="COMMAND", parser_class=type(v))
    v.set_defaults(handler=lambda ctx, args: _usage(v))
    p = vsub.add_parser("create", help="create a volume")
    p.add_argument("name", nargs="?", default="", metavar="VOLUME")
    p.add_argument("-d", "--driver", default="local", help="volume driver (local)")
    p.add_argument("--label", action="append", default=[], metavar="KEY[=VALUE]", help="set metadata for a volume")
    p.add_argument("-o", "--opt", action="append", default=[], metavar="KEY=VALUE",
                   help="driver options: type=tmpfs with o=size=..., or o=bind with device=/path")
    p.set_defaults(handler=cmd_create)
    for name in ("ls", "list"):
        p = vsub.add_parser(name, help="list volumes")
        p.add_argument("-q", "--quiet", action="store_true", help="only display volume names")
        p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                       help="filter: name=, label=KEY[=VALUE], dangling=true|false, driver=local")
        p.add_argument("--format", default=None, help="table, json or a Go template")
        p.set_defaults(handler=cmd_ls)
    p = vsub.add_parser("inspect", help="display detailed information on one or more volumes")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p.add_argument("-f", "--format", default=None, help="json or a Go template")
    p.set_defaults(handler=cmd_inspect)
    for name in ("rm", "remove"):
        p = vsub.add_parser(name, help="remove one or more volumes")
        p.add_argument("names", nargs="+", metavar="VOLUME")
        p.add_argument("-f", "--force", action="store_true", help="no error for a volume that does not exist")
        p.set_defaults(handler=cmd_rm)
    p = vsub.add_parser("prune", help="remove unused local volumes")
    p.add_argument("-a", "--all", action="store_true", help="remove all unused volumes, not just anonymous ones")
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE", help="label=KEY[=VALUE]")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.set_defaults(handler=cmd_prune)


def _usage(parser) -> int:
    parser.print_help()
    return 0


def _pairs(items, what: str) -> dict:
    from rootless.errors import UsageError
    pairs = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key or (what == "opt" and not eq):
            raise UsageError("invalid %s %r: use KEY=VALUE" % (what, item))
        pairs[key] = value
    return pairs


def _volumes(ctx):
    from rootless.runtime.start import remove_as_mapped_root
    from rootless.storage.volumes import Volumes
    return Volumes(ctx.paths(), remove_as_mapped_root)


def _users(ctx, volumes) -> dict:
    from rootless.runtime import state
    return volumes.users(state.Containers(ctx.paths()).all())


def cmd_create(ctx, args) -> int:
    record = _volumes(ctx).create(args.name, labels=_pairs(args.label, "label"), options=_pairs(args.opt, "opt"),
                                  driver=args.driver)
    out(record["Name"])
    return 0


def _row(volumes, record: dict) -> dict:
    labels = record.get("Labels") or {}
    return {"Name": record["Name"], "Driver": record.get("Driver", "local"), "Scope": "local",
            "Mountpoint": volumes.data(record["Name"]), "Labels": ",".join("%s=%s" % kv for kv in sorted(labels.items())),
            "Links": "N/A", "Size": "N/A", "Group": "", "Availability": "", "Status": ""}


def _matches(record: dict, filters: list, used: dict) -> bool:
    from rootless.errors import UsageError
    for f in filters:
        key, _, value = f.partition("=")
        if key == "name":
            if value not in record["Name"]:
                return False
        elif key == "label":
            k, eq, v = value.partition("=")
            labels = record.get("Labels") or {}
            if k not in labels or (eq and labels[k] != v):
                return False
        elif key == "dangling":
            if value.lower() not in ("true", "false", "1", "0"):
                raise UsageError("invalid filter 'dangling=%s': true or false" % value)
            if (value.lower() in ("true", "1")) == bool(used.get(record["Name"])):
                return False
        elif key == "driver":
            if value != record.get("Driver", "local"):
                return False
        else:
            raise UsageError("invalid filter %r (name, label, dangling, driver)" % key)
    return True


def cmd_ls(ctx, args) -> int:
    from rootless.cli import format as fmt
    volumes = _volumes(ctx)
    used = _users(ctx, volumes) if any(f.startswith("dangling=") for f in args.filter) else {}
    rows = [_row(volumes, r) for r in volumes.all() if _matches(r, args.filter, used)]
    text = fmt.emit(rows, args.format, [("DRIVER", "Driver"), ("VOLUME NAME", "Name")],
                    quiet_field="Name", quiet=args.quiet)
    if text:
        out(text)
    return 0


def cmd_inspect(ctx, args) -> int:
    from rootless.cli.inspect import find_all, print_found
    from rootless.errors import NotFound, UsageError
    volumes = _volumes(ctx)

    def lookup(name: str) -> dict:
        try:
            return volumes.inspect(volumes.get(name))
        except UsageError:  # not a volume name at all: not found either
            raise NotFound(name)
    return print_found(*find_all(args.names, [("volume", lookup)]), args.format)


def cmd_rm(ctx, args) -> int:
    from rootless.errors import NotFound, RootlessError
    volumes = _volumes(ctx)
    used = _users(ctx, volumes)
    failed = None
    for name in args.names:
        try:
            volumes.remove(name, used.get(name) or [])
            out(name)
        except NotFound as e:
            if not args.force:
                sys.stderr.write("rootless: error: %s\n" % e)
                failed = e
        except RootlessError as e:
            sys.stderr.write("rootless: error: %s\n" % e)
            failed = e
    return failed.exit_code if failed else 0


def cmd_prune(ctx, args) -> int:
    from rootless.errors import NotFound
    from rootless.storage.volumes import ANONYMOUS_LABEL
    if not args.force and sys.stdin.isatty():  # as image prune: no terminal, no question
        what = "all local volumes" if args.all else "anonymous local volumes"
        sys.stderr.write("WARNING! This will remove %s not used by at least one container.\n"
                         "Are you sure you want to continue? [y/N] " % what)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    volumes = _volumes(ctx)
    used = _users(ctx, volumes)
    removed, reclaimed = [], 0
    for record in volumes.all():
        name = record["Name"]
        anonymous = record.get("Anonymous") or ANONYMOUS_LABEL in (record.get("Labels") or {})
        if used.get(name) or not (args.all or anonymous) or not _matches(record, args.filter, used):
            continue
        from rootless.fsutil import tree_size
        size = tree_size(volumes.dir(name))
        try:
            volumes.remove(name, [])
        except NotFound:
            continue
        removed.append(name)
        reclaimed += size
    if removed:
        out("Deleted Volumes:\n" + "\n".join(removed) + "\n")
    from rootless.streams import human_size
    out("Total reclaimed space: %s" % human_size(reclaimed))
    return 0
