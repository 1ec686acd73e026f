"""``diff``, ``commit`` and ``top`` (and ``container diff|commit|top``), with Docker's flags
and output."""

import sys

from rootless.cli import out

WORDS = ("diff", "commit", "top")


def add_parsers(sub, csub) -> None:
    for parent in (p for p in (sub, csub) if p is not None):
        p = parent.add_parser("diff", help="inspect changes to files or directories on a container's filesystem")
        p.add_argument("container", metavar="CONTAINER")
        p.set_defaults(handler=cmd_diff)
        p = parent.add_parser("commit", help="create a new image from a container's changes")
        p.add_argument("container", metavar="CONTAINER")
        p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
        p.add_argument("-a", "--author", default="", help='author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
        p.add_argument("-c", "--change", action="append", default=[], help="apply Dockerfile instruction to the created image")
        p.add_argument("-m", "--message", default="", help="commit message")
        p.add_argument("-p", "--pause", action="store_true", default=True, help="pause container during commit (default true)")
        p.set_defaults(handler=cmd_commit)
        p = parent.add_parser("top", help="display the running processes of a container")
        p.add_argument("container", metavar="CONTAINER")
        p.add_argument("ps_args", nargs="...", metavar="ps OPTIONS")
        p.set_defaults(handler=cmd_top)


def _container(ctx, ref):
    from rootless.runtime import state
    from rootless.runtime.start import remove
    paths = ctx.paths()
    containers = state.Containers(paths)
    record = containers.find(ref, lambda r: remove(paths, r))
    return containers, record


def _layers(store, record):
    store = store.also(record.get("image_stores") or ())  # those it was made from
    return [(store.layer_diff(d), store.layer_meta(d)["record"]) for d in record["layers"]]


def cmd_diff(ctx, args):
    from rootless.runtime import changes
    containers, record = _container(ctx, args.container)
    found = changes.diff(containers.dir(record["id"]), _layers(ctx.store(), record))
    out("\n".join(changes.lines(found)))
    return 0


def _running_pids(record):
    """The container's processes: its cgroup's (cgroup.procs, here and below) when it has
    one of its own, else those of its pid namespace."""
    from rootless.runtime import processes, state
    if record["status"] not in state.ACTIVE or not state.first_process_alive(record):
        return []
    if record.get("cgroup"):
        from rootless.cgroups import v2
        pids = v2.all_procs(record["cgroup"])
        if pids:
            return pids
    return processes.container_pids(record["pid"])


def cmd_commit(ctx, args):
    import os
    from rootless.errors import NotFound, UsageError
    from rootless.image import commit, reference
    from rootless.runtime import changes, processes
    from rootless.runtime.config import Bundle
    tag = None
    if args.repository:
        ref = reference.parse(args.repository)
        if ref.digest:
            raise UsageError("invalid reference format: %s: a commit cannot be named by a digest" % args.repository)
        tag = str(ref)
    containers, record = _container(ctx, args.container)
    store = ctx.store()
    cdir = containers.dir(record["id"])
    try:
        base = store.lookup(record["image_id"])
    except NotFound:
        raise NotFound("the image of container %s (%s) is no longer in the store; it cannot be committed"
                       % (record["name"], record["image_id"][7:19]))
    from rootless import jsonfast
    image_config = (jsonfast.loads(store.read_blob(base.id)).get("config") or {})
    process = Bundle.load(cdir).process
    config = commit.container_config(image_config, list(record.get("command") or process.get("args") or []),
                                     list(process.get("env") or []), process.get("cwd") or "",
                                     dict(record.get("labels") or {}))
    created_by = " ".join(config.get("Cmd") or [])
    config = commit.apply_changes(config, args.change)
    store.ensure()
    from rootless import space
    with space.for_store(ctx.paths().root, "committing %s" % record["name"]), \
            store.writing(), store.work_dir("commit-") as work:
        tar = os.path.join(work.path, "layer.tar")
        with processes.Paused(_running_pids(record) if args.pause else []):
            count, size = changes.export_layer(cdir, _layers(store, record), tar)
        image_id = commit.store_image(store, base.id, config, (tar, size) if count else None, created_by,
                                      args.author, args.message, tag)
    out(image_id)
    return 0


def cmd_top(ctx, args):
    from rootless.errors import Conflict
    from rootless.runtime import processes
    _, record = _container(ctx, args.container)
    pids = _running_pids(record)
    if not pids:
        error = Conflict("container %s is not running" % record["id"])
        error.exit_code = 1  # as Docker's CLI for a daemon's refusal
        raise error
    titles, rows = processes.top(pids, " ".join(args.ps_args))
    sys.stdout.write(processes.table(titles, rows))
    return 0
