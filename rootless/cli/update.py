"""``update``: change containers' limits (and restart policy), as ``docker update``.

A running container with its own cgroup gets the new values written into it at once; a
stopped one keeps them for its next start (its bundle's ``linux.resources.unified``). A
running container without a cgroup of its own cannot be given limits until it starts
again, and a host that cannot enforce them refuses them as ``run`` does: one line each,
exit 1 as Docker's CLI, nothing changed.
"""

import sys

from rootless.cli import out


def add_parsers(sub, csub) -> None:
    from rootless.cli.containers import resource_args
    for parent in (p for p in (sub, csub) if p is not None):
        p = parent.add_parser("update", help="update the configuration of one or more containers")
        p.add_argument("containers", nargs="+", metavar="CONTAINER")
        resource_args(p, parent=False)
        p.add_argument("--restart", default=None, help="restart policy to apply when a container exits")
        p.set_defaults(handler=cmd_update)


def cmd_update(ctx, args) -> int:
    from rootless.cli.containers import RESOURCE_FLAGS
    from rootless.errors import RootlessError
    from rootless.runtime import state
    from rootless.runtime.start import remove
    values = {dest: getattr(args, dest) for dest, _, _, _ in RESOURCE_FLAGS}
    if all(v is None for v in values.values()) and args.restart is None:
        error = RootlessError("you must provide one or more flags when using this command")
        error.exit_code = 1  # the docker CLI's own check, not a flag error
        raise error
    from rootless.cgroups import limits
    given = limits.parse(values, update=True) if any(v is not None for v in values.values()) else {}
    paths = ctx.paths()
    containers = state.Containers(paths)
    failed = 0
    for ref in args.containers:
        try:
            update(paths, containers, containers.find(ref, lambda r: remove(paths, r)), values, given,
                   args.restart)
            out(ref)
        except RootlessError as e:
            sys.stderr.write("rootless: error: %s\n" % e)
            failed = 1
    return failed


def update(paths, containers, record: dict, values: dict, given: dict, restart) -> None:
    """``values``: the flags' texts; ``given``: them read (cgroups.limits.parse)."""
    from rootless import jsonfast
    import os
    from rootless import fsutil
    from rootless.bundle.create import restart_policy
    from rootless.cgroups import detect, limits
    from rootless.errors import Conflict, RootlessError
    from rootless.runtime import config as rc
    from rootless.runtime import state
    asked = {k: v for k, v in values.items() if v is not None}
    policy = None
    if restart is not None:
        if record.get("auto_remove") and restart not in ("", "no"):
            raise Conflict("Cannot update container %s: Restart policy cannot be updated because AutoRemove "
                           "is enabled for the container" % record["id"])
        policy = restart_policy(restart, False)
    host_config = dict(record.get("host_config") or {})
    merged, files, spec, cdir = host_config, None, None, containers.dir(record["id"])
    if asked:
        merged = _merge(host_config, given, record["id"])
        wanted = limits.asked(values, given)
        files = limits.unified(merged)
        with open(os.path.join(cdir, "config.json")) as f:
            spec = jsonfast.load(f)
        cgroup = jsonfast.loads((spec.get("annotations") or {}).get(rc.CGROUP) or "{}")
        running = record["status"] in state.ACTIVE and state.first_process_alive(record)
        if running and not record.get("cgroup"):
            raise Conflict("Cannot update container %s: it runs without a cgroup of its own (it was started "
                           "without limits); stop it, update it, and start it again" % record["id"])
        if not cgroup:
            found = detect.detect()
            refused = detect.refusal(found, wanted)
            if refused:
                raise RootlessError("Cannot update container %s: %s" % (record["id"], refused))
            cgroup = {"strategy": found.strategy, "parent": found.parent, "below": ""}
            spec.setdefault("annotations", {})[rc.CGROUP] = jsonfast.dumps(cgroup)
            if any(n.get("type") == "cgroup" for n in spec.get("linux", {}).get("namespaces", [])):
                from rootless.bundle.create import cgroup_mount  # as create does, for its next start
                privileged = not (spec.get("linux") or {}).get("maskedPaths")
                spec.setdefault("mounts", []).append(cgroup_mount(privileged))
        if running:
            from rootless.cgroups import v2
            v2.write_files(record["cgroup"], files, ("memory.swap.max",))
        spec.setdefault("linux", {})["resources"] = {"unified": files}
        fsutil.atomic_write_json(os.path.join(cdir, "config.json"), spec, mode=0o644)

    def changed(r: dict):
        hc = dict(r.get("host_config") or {})
        hc.update({k: v for k, v in merged.items() if k in limits.CONTROLLER_OF})
        r["host_config"] = hc
        if policy is not None:
            r["restart"] = policy
        return r
    containers.update(record["id"], changed)


def _merge(host_config: dict, given: dict, cid: str) -> dict:
    """The container's resource fields with ``given`` over them, checked as dockerd's
    update checks them (the swap limit must stay above the memory limit)."""
    from rootless.errors import Conflict
    merged = dict(host_config)
    memory, swap = given.get("Memory"), given.get("MemorySwap")
    if memory and swap is None:
        old_swap = host_config.get("MemorySwap") or 0
        if old_swap > 0 and old_swap < memory:
            raise Conflict("Cannot update container %s: Memory limit should be smaller than already set "
                           "memoryswap limit, update the memoryswap at the same time" % cid)
    merged.update(given)
    if merged.get("Memory") and merged.get("MemoryReservation") and merged["Memory"] < merged["MemoryReservation"]:
        raise Conflict("Cannot update container %s: Minimum memory limit can not be less than memory "
                       "reservation limit, see usage" % cid)
    return merged
