"""Image verbs: images, load, save, import, tag, rmi, history, image prune; the JSON of
``image inspect`` (which cli.inspect prints)."""

import os
import sys
import time

from rootless import jsonfast
from rootless.cli import out
from rootless.cli import format as fmt
from rootless.errors import UsageError

IMAGE_COLUMNS = [("REPOSITORY", "Repository"), ("TAG", "Tag"), ("IMAGE ID", "ID"),
                 ("CREATED", "CreatedSince"), ("SIZE", "Size")]
HISTORY_COLUMNS = [("IMAGE", "ID"), ("CREATED", "CreatedSince"), ("CREATED BY", "CreatedBy"),
                   ("SIZE", "Size"), ("COMMENT", "Comment")]


def register(sub) -> None:
    image = sub.add_parser("image", help="manage images")
    isub = image.add_subparsers(dest="image_command", metavar="COMMAND", parser_class=type(image))
    for adder in (_images, _load, _save, _import, _tag, _rmi, _history, _inspect, _prune):
        adder(sub, isub)


def _both(sub, isub, top, group, aliases=(), **kw):
    parsers = []
    if top:
        parsers.append(sub.add_parser(top, **kw))
    parsers.append(isub.add_parser(group, aliases=list(aliases), **kw))
    return parsers


# -- images ----------------------------------------------------------------------------------

def _images(sub, isub):
    for p in _both(sub, isub, "images", "ls", aliases=["list"], help="list images"):
        p.add_argument("reference", nargs="?", help="only images matching this name")
        p.add_argument("-a", "--all", action="store_true", help="show all images")
        p.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
        p.add_argument("--digests", action="store_true", help="show digests")
        p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
        p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                       help="reference=PATTERN, dangling=true|false, label=KEY[=VALUE], "
                       "before=IMAGE, since=IMAGE")
        p.add_argument("--format", help="table, json, or a Go-like template")
        p.set_defaults(handler=cmd_images)


def image_rows(store, args):
    from rootless.image import reference
    from rootless.streams import human_size
    now = time.time()
    rows = []
    filters = _parse_filters(args.filter + (["reference=" + args.reference] if args.reference else []))
    records = store.images()
    for rec in records:
        config = None
        tags = rec.repo_tags or [None]
        for tag in tags:
            ref = reference.parse(tag) if tag else None
            row = {
                "Repository": ref.familiar_repository if ref else "<none>",
                "Tag": ref.tag if ref else "<none>",
                "ID": rec.id if args.no_trunc else rec.id[7:19],
                "Digest": _digest_for(rec, ref),
                "CreatedAt": rec.created, "CreatedSince": fmt.since(rec.created, now),
                "Size": human_size(rec.size), "VirtualSize": human_size(rec.size),
                "Containers": "N/A", "SharedSize": "N/A", "UniqueSize": "N/A",
            }
            if filters:
                if config is None:
                    config = jsonfast.loads(store.read_blob(rec.id)).get("config") or {}
                if not _matches(filters, rec, tag, config, records):
                    continue
            rows.append(row)
    return rows


def _digest_for(rec, ref) -> str:
    if not ref:
        return rec.repo_digests[0].split("@", 1)[1] if rec.repo_digests else "<none>"
    for d in rec.repo_digests:
        if d.split("@", 1)[0] == ref.repository:
            return d.split("@", 1)[1]
    return "<none>"


def _parse_filters(items):
    filters = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in ("reference", "dangling", "label", "before", "since"):
            raise UsageError("invalid filter %r: use reference=, dangling=, label=, before= or since=" % item)
        filters.setdefault(key, []).append(value)
    return filters


def _matches(filters, rec, tag, config, records) -> bool:
    import fnmatch
    from rootless.image import reference
    for pattern in filters.get("reference", []):
        if not tag:
            return False
        ref = reference.parse(tag)
        candidates = [reference.familiar(tag), ref.familiar_repository, tag, ref.repository]
        if not any(fnmatch.fnmatchcase(c, pattern) for c in candidates):
            return False
    for value in filters.get("dangling", []):
        if value not in ("true", "false", "1", "0"):
            raise UsageError("dangling filter takes true or false, not %r" % value)
        if (value in ("true", "1")) != (not rec.repo_tags):
            return False
    labels = config.get("Labels") or {}
    for value in filters.get("label", []):
        k, sep, v = value.partition("=")
        if k not in labels or (sep and labels[k] != v):
            return False
    for key, newer in (("before", False), ("since", True)):
        for name in filters.get(key, []):
            from rootless.image.store import find_image
            other = find_image({r.id: r for r in records}, name)
            mine, theirs = fmt.parse_time(rec.created) or 0, fmt.parse_time(other.created) or 0
            if (mine > theirs) != newer or rec.id == other.id:
                return False
    return True


def cmd_images(ctx, args):
    store = ctx.store()
    rows = image_rows(store, args)
    if args.quiet:
        seen, ids = set(), []
        for r in rows:
            if r["ID"] not in seen:
                seen.add(r["ID"])
                ids.append(r["ID"])
        out("\n".join(ids))
        return 0
    columns = list(IMAGE_COLUMNS)
    if args.digests:
        columns.insert(2, ("DIGEST", "Digest"))
    out(fmt.emit(rows, args.format, columns))
    return 0


# -- load / save / import ------------------------------------------------------------------------

def _load(sub, isub):
    for p in _both(sub, isub, "load", "load", help="load images from a docker-archive or OCI archive"):
        p.add_argument("-i", "--input", metavar="FILE", help="read from FILE (default: stdin)")
        p.add_argument("-q", "--quiet", action="store_true", help="print nothing")
        p.add_argument("--max-layer-size", metavar="SIZE",
                       help="refuse layers that unpack to more than SIZE (default 64g)")
        p.set_defaults(handler=cmd_load)


def _layer_limit(args):
    if getattr(args, "max_layer_size", None):
        from rootless.streams import parse_size
        return parse_size(args.max_layer_size)
    return None


def cmd_load(ctx, args):
    from rootless import space
    from rootless.image import archive
    needed = os.path.getsize(args.input) if args.input and os.path.isfile(args.input) else None
    with space.for_store(ctx.paths().root, "loading %s" % (args.input or "stdin"), needed):
        lines = archive.load(ctx.store(max_layer_size=_layer_limit(args)), args.input)
    if not args.quiet:
        out("\n".join(lines))
    return 0


def _save(sub, isub):
    for p in _both(sub, isub, "save", "save", help="save images to an archive"):
        p.add_argument("images", nargs="+", metavar="IMAGE")
        p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
        p.add_argument("--format", default="docker-archive",
                       choices=["docker-archive", "oci-archive"], help="archive format")
        p.set_defaults(handler=cmd_save)


def cmd_save(ctx, args):
    from rootless.image import archive
    archive.save(ctx.store(), args.images, args.output, args.format)
    return 0


def _import(sub, isub):
    for p in _both(sub, isub, "import", "import", help="make an image from a root file system tarball"):
        p.add_argument("file", metavar="FILE|-")
        p.add_argument("name", nargs="?", metavar="REPOSITORY[:TAG]")
        p.add_argument("-m", "--message", default="", help="commit message for the history")
        p.add_argument("--max-layer-size", metavar="SIZE", help="refuse tarballs bigger than SIZE unpacked")
        p.set_defaults(handler=cmd_import)


def cmd_import(ctx, args):
    from rootless import space
    from rootless.image import archive
    needed = os.path.getsize(args.file) if args.file != "-" and os.path.isfile(args.file) else None
    with space.for_store(ctx.paths().root, "importing %s" % args.file, needed):
        out(archive.import_tarball(ctx.store(max_layer_size=_layer_limit(args)), args.file, args.name, args.message))
    return 0


# -- tag / rmi / prune ----------------------------------------------------------------------------

def _tag(sub, isub):
    for p in _both(sub, isub, "tag", "tag", help="give an image another name"):
        p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
        p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
        p.set_defaults(handler=cmd_tag)


def cmd_tag(ctx, args):
    ctx.store().tag(args.source, args.target)
    return 0


def _rmi(sub, isub):
    for p in _both(sub, isub, "rmi", "rm", aliases=["remove"], help="remove images"):
        p.add_argument("images", nargs="+", metavar="IMAGE")
        p.add_argument("-f", "--force", action="store_true", help="remove even if tagged elsewhere or in use")
        p.add_argument("--no-prune", action="store_true", help="accepted for Docker compatibility")
        p.set_defaults(handler=cmd_rmi)


def container_usage(paths):
    """What containers use (image IDs, running or not, and layers), for the image store,
    which never reads container state itself. Dead ``--rm`` containers are removed on the
    way, as ``ps`` does: they are gone, and must not keep an image."""
    from rootless.image.removal import Usage
    from rootless.runtime import state
    from rootless.runtime.start import remove
    return Usage(state.Containers(paths).all(lambda record: remove(paths, record)))


def cmd_rmi(ctx, args):
    """Each image in turn; the others are still removed when one fails. As Docker's CLI,
    a missing image under ``--force`` is reported but does not fail the command."""
    from rootless.errors import NotFound, RootlessError
    store = ctx.store()
    usage = store.usage()
    failed, removed = None, False
    for name in args.images:
        try:
            out("\n".join(store.remove(name, force=args.force, usage=usage, collect=False)))
            removed = True
        except RootlessError as e:
            sys.stderr.write("rootless: error: %s\n" % e)
            if not (args.force and isinstance(e, NotFound)):
                failed = e
    if removed:
        store.collect_garbage(blocking=False)
    return failed.exit_code if failed else 0


def _prune(sub, isub):
    p = isub.add_parser("prune", help="remove unused images")
    p.add_argument("-a", "--all", action="store_true", help="all images no container uses, not just dangling ones")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.add_argument("--filter", action="append", default=[], help="label=KEY[=VALUE]")
    p.set_defaults(handler=cmd_prune)


def cmd_prune(ctx, args):
    from rootless.streams import human_size
    store = ctx.store()
    if not args.force and sys.stdin.isatty():
        what = "all images without at least one container associated to them" if args.all else "all dangling images"
        sys.stderr.write("WARNING! This will remove %s.\nAre you sure you want to continue? [y/N] " % what)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    usage = store.usage()
    lines = []
    for rec in store.images(shared=False):  # an image store's are not ours to prune
        if rec.id in usage or (rec.repo_tags and not args.all):
            continue  # Docker: prune never removes what a container uses, -a or not
        if args.filter:
            config = jsonfast.loads(store.read_blob(rec.id)).get("config") or {}
            if not _matches(_parse_filters(args.filter), rec, None, config, []):
                continue
        lines.extend(store.remove(rec.id, force=True, usage=usage, collect=False))
    freed = store.collect_garbage()
    if lines:
        out("Deleted Images:\n" + "\n".join(l[0].lower() + l[1:] for l in lines) + "\n")
    out("Total reclaimed space: %s" % human_size(freed["bytes"]))
    return 0


# -- history / inspect --------------------------------------------------------------------------

def _history(sub, isub):
    for p in _both(sub, isub, "history", "history", help="show the history of an image"):
        p.add_argument("image", metavar="IMAGE")
        p.add_argument("-H", "--human", action="store_true", default=True, help="human-readable sizes and dates")
        p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
        p.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
        p.add_argument("--format", help="table, json, or a Go-like template")
        p.set_defaults(handler=cmd_history)


def history_rows(store, name, no_trunc=False):
    from rootless.streams import human_size
    rec = store.lookup(name)
    config = jsonfast.loads(store.read_blob(rec.id))
    sizes = [store.layer_meta(d)["record"]["content_size"] for d in rec.layers]
    history = config.get("history") or [{"created": config.get("created", "")} for _ in rec.layers]
    rows, layer = [], 0
    for entry in history:
        size = 0
        if not entry.get("empty_layer") and layer < len(sizes):
            size, layer = sizes[layer], layer + 1
        created_by = entry.get("created_by", "")
        if not no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        rows.append({"ID": "<missing>", "CreatedAt": entry.get("created", ""),
                     "CreatedSince": fmt.since(entry.get("created", "")),
                     "CreatedBy": created_by, "Size": human_size(size), "Comment": entry.get("comment", "")})
    rows.reverse()
    if rows:
        rows[0]["ID"] = rec.id if no_trunc else rec.id[7:19]
    return rows


def cmd_history(ctx, args):
    rows = history_rows(ctx.store(), args.image, args.no_trunc)
    out(fmt.emit(rows, args.format, HISTORY_COLUMNS, "ID", args.quiet))
    return 0


def _inspect(sub, isub):
    from rootless.cli import inspect
    inspect.add_image_parser(isub)  # the top-level ``inspect`` is cli.inspect's own


def inspect_image(store, name) -> dict:
    from rootless.image import reference
    rec = store.lookup(name)
    config = jsonfast.loads(store.read_blob(rec.id))
    return {
        "Id": rec.id,
        "RepoTags": [reference.familiar(t) for t in rec.repo_tags],
        "RepoDigests": [reference.familiar(d) for d in rec.repo_digests],
        "Parent": "", "Comment": _first_comment(config),
        "Created": config.get("created", ""),
        "DockerVersion": config.get("docker_version", ""),
        "Author": config.get("author", ""),
        "Config": config.get("config") or {},
        "Architecture": config.get("architecture", ""),
        **({"Variant": config["variant"]} if config.get("variant") else {}),
        "Os": config.get("os", ""),
        "Size": rec.size,
        "GraphDriver": {"Name": "rootless", "Data": {
            "LowerDirs": [store.layer_diff(d) for d in rec.layers]}},
        "RootFS": {"Type": "layers", "Layers": list(rec.layers)},
        "Metadata": {"LastTagTime": _rfc3339(rec.added)},
        "ManifestDigest": rec.manifest,
    }


def _first_comment(config) -> str:
    history = config.get("history") or []
    return history[-1].get("comment", "") if history else ""


def _rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
