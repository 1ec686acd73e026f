"""Listing verbs: ``ps`` (``container ls|list|ps``), ``rename``, ``container prune``.

Output is Docker's: the columns of ``docker ps``, its template fields (``.ID .Image
.Command .CreatedAt .RunningFor .Ports .State .Status .Size .Names .Labels .Label "k"
.Mounts .Networks .LocalVolumes .Platform``), truncation and quoting, and the text of
``container prune``. Which containers are listed is ``runtime.listing``; their STATUS is
``runtime.status``.

``ps`` is start-up bound: it imports the image store's index reader (to show an image ID
for a container whose image was retagged or removed, as Docker does) but nothing that
pulls in tarfile, urllib or ctypes.
"""

import re
import sys
import time
from typing import Callable, Optional

from rootless.cli import out

COLUMNS = [("CONTAINER ID", "ID"), ("IMAGE", "Image"), ("COMMAND", "Command"), ("CREATED", "RunningFor"),
           ("STATUS", "Status"), ("PORTS", "Ports"), ("NAMES", "Names")]
HEADERS = dict([(f, h) for h, f in COLUMNS], CreatedAt="CREATED AT", State="STATE", Size="SIZE",
               Labels="LABELS", Mounts="MOUNTS", LocalVolumes="LOCAL VOLUMES", Networks="NETWORKS",
               Platform="PLATFORM")
PRUNE_WARNING = "WARNING! This will remove all stopped containers.\nAre you sure you want to continue?"
TRUNCATED_COMMAND = 20  # docker/cli's ContainerContext.Command: Ellipsis(command, 20)


def add_parsers(sub, csub) -> None:
    """``ps`` and ``rename`` at the top level and under ``container``; ``container prune``."""
    ps = [sub.add_parser("ps", help="list containers")]
    rename = [sub.add_parser("rename", help="rename a container")]
    if csub is not None:
        ps.append(csub.add_parser("ls", aliases=["list", "ps"], help="list containers"))
        rename.append(csub.add_parser("rename", help="rename a container"))
        _prune_args(csub.add_parser("prune", help="remove all stopped containers"))
    for p in ps:
        _ps_args(p)
    for p in rename:
        p.add_argument("old", metavar="CONTAINER")
        p.add_argument("new", metavar="NEW_NAME")
        p.set_defaults(handler=cmd_rename)


def _ps_args(p) -> None:
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default shows just running)")
    p.add_argument("-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="id, name, label, exited, status, ancestor, before, since, publish, expose")
    p.add_argument("--format", help="table, table TEMPLATE, json, or a Go-like TEMPLATE")
    p.add_argument("-n", "--last", type=int, default=-1, help="show n last created containers (includes all states)")
    p.add_argument("-l", "--latest", action="store_true", help="show the latest created container (includes all states)")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="only display container IDs")
    p.add_argument("-s", "--size", action="store_true", help="display total file sizes")
    p.set_defaults(handler=cmd_ps)


def _prune_args(p) -> None:
    p.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help='until=TIMESTAMP, label=KEY[=VALUE], label!=KEY[=VALUE] (e.g. "until=24h")')
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    p.set_defaults(handler=cmd_prune)


# -- rows: docker/cli's ContainerContext (pure) ------------------------------------------------

def container_row(r: dict, now: float, trunc: bool = True, image: Optional[str] = None,
                  size: Optional["tuple[int, int]"] = None) -> dict:
    """One container as ``ps`` templates see it; keys in Docker's JSON order. ``image`` is
    the reference after ``refreshed_image``; ``size`` (writable, virtual) bytes."""
    from rootless.cli.format import ellipsis, go_quote, go_time
    from rootless.runtime.status import command_text, state_string, status_text
    from rootless.units import human_duration
    labels = r.get("labels") or {}
    command = command_text(r.get("command"))
    return {
        "Command": go_quote(ellipsis(command, TRUNCATED_COMMAND) if trunc else command),
        "CreatedAt": go_time(r["created"]),
        "ID": r["id"][:12] if trunc else r["id"],
        "Image": image_column(r.get("image", "") if image is None else image, r.get("image_id", ""), trunc),
        "Label": lambda name: labels.get(name, ""),
        "Labels": ",".join(sorted("%s=%s" % kv for kv in labels.items())),
        "LocalVolumes": "0",
        "Mounts": "",
        "Names": r["name"],
        "Networks": r.get("network") or "host",
        "Platform": None,
        "Ports": ports_column(r),
        "RunningFor": human_duration(now - int(r["created"])) + " ago",
        "Size": size_text(size),
        "State": state_string(r),
        "Status": status_text(r, now),
    }


def ports_column(r: dict) -> str:
    """Docker's PORTS: nothing unless the container runs; then the bindings the runtime
    made (``record["ports"]``) and, with a network of its own, its exposed ports."""
    from rootless.runtime.status import is_running
    if not is_running(r):
        return ""
    actual = r.get("ports")
    mode = r.get("network") or "host"
    shared = mode == "host" or mode.startswith("container:")
    exposed = None if shared else (r.get("config") or {}).get("ExposedPorts")
    if not actual and not exposed:
        return ""
    from rootless.network import ports
    return ports.docker_ports_column(ports.from_json(actual), exposed or ())


def image_column(image: str, image_id: str, trunc: bool) -> str:
    """Docker's IMAGE: a short ID when the container was made from one; else the name as
    given, shortened to its familiar ``name[:tag]`` (no registry of Docker Hub, no digest)."""
    if not image:
        return "<no image>"
    if not trunc:
        return image
    if _short_id(image) == _short_id(image_id):
        return _short_id(image_id)
    from rootless.errors import UsageError
    from rootless.image import reference
    try:
        ref = reference.parse(image, default_tag=False)
    except UsageError:
        return image
    return ref.familiar_repository + (":" + ref.tag if ref.tag else "")


def _short_id(text: str) -> str:
    return text.split(":", 1)[-1][:12]


def refreshed_image(r: dict, image_id_of: Callable[[str], Optional[str]]) -> str:
    """The image a container shows: its reference while that still names the image it was
    made from, else that image's ID (the tag moved on, or the image is gone)."""
    image, image_id = r.get("image", ""), r.get("image_id", "")
    if image == image_id or image_id_of(image) == image_id:
        return image
    return image_id


def size_text(size: Optional["tuple[int, int]"]) -> str:
    """Docker's SIZE: ``12B (virtual 4.26MB)``; ``0B`` when not measured (no ``-s``)."""
    from rootless.units import human_size
    rw, virtual = size or (0, 0)
    return human_size(rw) + (" (virtual %s)" % human_size(virtual) if virtual > 0 else "")


# -- handlers --------------------------------------------------------------------------------------

class _Images:
    """The image store's index, read once and only when asked."""

    def __init__(self, ctx):
        self.ctx, self._index = ctx, None
        self._ids: dict = {}  # name -> ID: 50 containers of one image resolve it once

    def index(self) -> dict:
        if self._index is None:
            self._index = {rec.id: rec for rec in self.ctx.store().images()}
        return self._index

    def id_of(self, name: str) -> Optional[str]:
        if name not in self._ids:
            self._ids[name] = self._find(name)
        return self._ids[name]

    def _find(self, name: str) -> Optional[str]:
        from rootless.errors import RootlessError
        from rootless.image.store import find_image
        try:
            return find_image(self.index(), name).id if name else None
        except RootlessError:
            return None

    def size_of(self, image_id: str) -> int:
        rec = self.index().get(image_id)
        return rec.size if rec else 0


def _reap(paths):
    from rootless.runtime.start import remove
    return lambda record: remove(paths, record)


# What a --format template is tried on before anything is listed (as Docker tries it on an
# empty container), so that a bad template fails even when no container matches.
_SAMPLE = {"id": "0" * 64, "name": "", "created": 0.0, "image": "", "image_id": "", "command": [],
           "labels": {}, "status": "created"}


def cmd_ps(ctx, args):
    from rootless import filters
    from rootless.cli import format as fmt
    from rootless.runtime import listing, state
    filt = filters.parse(args.filter)
    listing.check(filt)
    if args.format and args.quiet:
        sys.stderr.write("WARNING: Ignoring custom format, because both --format and --quiet are set.\n")
    now = time.time()
    fmt.check(None if args.quiet else args.format, container_row(_SAMPLE, now))
    paths, images = ctx.paths(), _Images(ctx)
    containers = state.Containers(paths)
    limit = 1 if args.latest and args.last == -1 else args.last
    shown = listing.select(containers.all(_reap(paths)), filt, all=args.all, limit=limit, image_id_of=images.id_of)
    if args.quiet:
        out("\n".join(r["id"] if args.no_trunc else r["id"][:12] for r in shown))
        return 0
    # As Docker, sizes are measured (a walk of each writable layer) only when asked for.
    sized = args.size or bool(args.format and re.search(r"\.Size\b", args.format))
    rows = [container_row(r, now, not args.no_trunc, refreshed_image(r, images.id_of),
                          _size(containers, r, images) if sized else None) for r in shown]
    out(_emit(rows, args.format, args.size))
    return 0


def _emit(rows, template: Optional[str], size: bool) -> str:
    from rootless.cli import format as fmt
    if not template or template == "table":
        return fmt.emit(rows, None, COLUMNS + ([("SIZE", "Size")] if size else []))
    return fmt.emit(rows, template, [(h, f) for f, h in HEADERS.items()])


def _size(containers, r: dict, images: _Images) -> "tuple[int, int]":
    from rootless.storage.rootfs import writable_size
    rw = writable_size(r.get("driver", ""), containers.dir(r["id"]))
    return rw, rw + images.size_of(r.get("image_id", ""))


def cmd_rename(ctx, args):
    from rootless.runtime.rename import rename
    paths = ctx.paths()
    rename(paths, args.old, args.new, _reap(paths))
    return 0


def cmd_prune(ctx, args):
    from rootless import filters
    from rootless.runtime import prune, state
    from rootless.storage.rootfs import writable_size
    from rootless.units import human_size
    filt = filters.parse(args.filter, flag="--filter")
    prune.until_of(filt)
    if not args.force and not _confirm(PRUNE_WARNING):
        return 0
    paths = ctx.paths()
    containers = state.Containers(paths)
    removed, reclaimed, failed = prune.prune(
        paths, filt, lambda r: writable_size(r.get("driver", ""), containers.dir(r["id"])), _reap(paths))
    for message in failed:
        sys.stderr.write("rootless: warning: %s\n" % message)
    if removed:
        out("Deleted Containers:\n" + "".join(cid + "\n" for cid in removed) + "\n")
    out("Total reclaimed space: %s" % human_size(reclaimed, precision=4))
    return 0


def _confirm(message: str) -> bool:
    """Docker's prompt, on stdout; only ``y`` (any case) is yes, and no answer is no."""
    sys.stdout.write(message + " [y/N] ")
    sys.stdout.flush()
    try:
        answer = sys.stdin.readline() if sys.stdin is not None else ""
    except (OSError, ValueError):
        answer = ""
    return answer.strip().lower() == "y"
