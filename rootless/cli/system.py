"""System verbs: version, info, system df."""

import os
import sys

from rootless import __version__
from rootless.cli import out


def register(sub) -> None:
    p = sub.add_parser("version", help="show the version")
    p.add_argument("-f", "--format", help="a Go-like template, or json")
    p.set_defaults(handler=cmd_version)
    group = sub.add_parser("system", help="manage rootless itself")
    system = group.add_subparsers(dest="system_command", metavar="COMMAND", parser_class=type(group))
    for parent in (sub, system):
        p = parent.add_parser("info", help="show where data lives and which features work here")
        p.add_argument("-f", "--format", help="a Go-like template, or json")
        p.add_argument("--probe", action="store_true", help="probe again instead of using the cached answers")
        p.set_defaults(handler=cmd_info)
    p = system.add_parser("reset", help="remove every image and all data under the storage root")
    p.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    p.set_defaults(handler=cmd_reset)
    p = system.add_parser("df", help="show disk usage")
    p.add_argument("-v", "--verbose", action="store_true", help="show every image")
    p.add_argument("--format", help="table, json, or a Go-like template")
    p.set_defaults(handler=cmd_df)


def _machine() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def version_info() -> dict:
    return {"Client": {
        "Version": __version__,
        "Python": "%d.%d.%d" % sys.version_info[:3],
        "Os": "linux", "Arch": _machine(),
        "Executable": os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else "",
    }}


def cmd_version(ctx, args):
    info = version_info()
    if args.format:
        out(_json(info) if args.format == "json" else _fmt().render(args.format, info, strict=True))
        return 0
    c = info["Client"]
    out("Client:\n Version:     %s\n Python:      %s\n OS/Arch:     %s/%s\n Executable:  %s"
        % (c["Version"], c["Python"], c["Os"], c["Arch"], c["Executable"]))
    return 0


def system_info(ctx, probe_again: bool = False) -> dict:
    from rootless import paths as paths_mod
    from rootless import probes
    p = ctx.paths()
    images = []
    if os.path.exists(p.images_index):
        images = ctx.store().images()
    return {
        "Version": __version__,
        "Python": "%d.%d.%d" % sys.version_info[:3],
        "Architecture": _machine(),
        "KernelVersion": os.uname().release,
        "StorageRoot": p.root,
        "StorageRootFilesystem": paths_mod.fs_type(p.root),
        "StorageRootReason": p.root_reason,
        "RunDir": p.run,
        "Images": len(images),
        "Uid": os.getuid(),
        "Probes": probes.collect(p, refresh=probe_again),
    }


def cmd_info(ctx, args):
    info = system_info(ctx, args.probe)
    if args.format:
        out(_json(info) if args.format == "json" else _fmt().render(args.format, info, strict=True))
        return 0
    out("\n".join([
        "Client: rootless %s (Python %s)" % (info["Version"], info["Python"]),
        "Server: none (rootless has no daemon)",
        " Images: %d" % info["Images"],
        " Storage root: %s" % info["StorageRoot"],
        "  File system: %s" % info["StorageRootFilesystem"],
        "  Chosen: %s" % info["StorageRootReason"],
        " Run dir: %s" % info["RunDir"],
        " Kernel: %s" % info["KernelVersion"],
        " Architecture: %s" % info["Architecture"],
        " User: uid %d" % info["Uid"],
    ] + _ladder_lines(info["Probes"])))
    return 0


def disk_usage(store) -> list:
    from rootless.streams import human_size
    images = store.images() if os.path.exists(store.paths.images_index) else []
    used = store.usage().images()
    sizes, active_layers = {}, set()
    for rec in images:
        for d in rec.layers:
            if d not in sizes:
                meta = store.layer_info(d)
                sizes[d] = meta.content_size if meta else 0
            if rec.id in used:
                active_layers.add(d)
    total = sum(sizes.values())
    reclaim = total - sum(sizes[d] for d in active_layers)
    pct = " (%d%%)" % (100 * reclaim // total) if total else ""
    zero = {"TotalCount": 0, "Active": 0, "Size": "0B", "Reclaimable": "0B"}
    return [
        {"Type": "Images", "TotalCount": len(images), "Active": len([r for r in images if r.id in used]),
         "Size": human_size(total), "Reclaimable": human_size(reclaim) + pct},
        dict(zero, Type="Containers"), dict(zero, Type="Local Volumes"), dict(zero, Type="Build Cache"),
    ]


def cmd_df(ctx, args):
    rows = disk_usage(ctx.store())
    out(_fmt().emit(rows, args.format, [("TYPE", "Type"), ("TOTAL", "TotalCount"), ("ACTIVE", "Active"),
                                     ("SIZE", "Size"), ("RECLAIMABLE", "Reclaimable")]))
    return 0


def _fmt():
    from rootless.cli import format
    return format


def _json(obj) -> str:
    import json
    return json.dumps(obj)


def cmd_reset(ctx, args):
    """Empty the storage root. Layers keep their modes (a 0500 directory stays 0500), so
    a plain ``rm -rf`` of the root can fail; this always works for the owner."""
    from rootless import fsutil
    from rootless.errors import Conflict
    root = ctx.paths().root
    if not os.path.isdir(root):
        return 0
    if not args.force:
        if not sys.stdin.isatty():
            raise Conflict("system reset removes everything under %s; add --force to confirm" % root)
        sys.stderr.write("WARNING! This removes every image and all data under %s.\n"
                         "Are you sure you want to continue? [y/N] " % root)
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    store = ctx.store()
    lock = store.lock("gc.lock", shared=False, blocking=False)
    if not lock.acquire():
        raise Conflict("another rootless command is adding images under %s; try again when "
                       "it has finished" % root)
    try:
        from rootless.runtime import state
        from rootless.runtime.start import remove
        containers = state.Containers(ctx.paths())
        for record in containers.all():
            if record["status"] in state.ACTIVE:
                raise Conflict("container %s is %s; stop it before system reset (rootless stop %s)"
                               % (record["name"], record["status"], record["name"]))
        for record in containers.all():
            remove(ctx.paths(), record)  # files of sub-ids need the container's user namespace
        for name in sorted(os.listdir(root)):
            if name != "locks":
                fsutil.remove_tree(os.path.join(root, name))
    finally:
        lock.release()
    return 0


LADDERS = (("idmap", "Id mapping"), ("rootfs", "Rootfs driver"))


def _ladder_lines(probes: dict) -> list:
    lines = []
    for key, title in LADDERS:
        result = probes.get(key) or {}
        lines.append(" %s: %s" % (title, result.get("choice", "unknown")))
        lines.append("  Why: %s" % result.get("reason", ""))
        if result.get("remedy"):
            lines.append("  Remedy: %s" % result["remedy"])
    return lines
