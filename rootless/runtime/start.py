"""``start``/``run`` of a created container, in the foreground, and its removal.

This is the runtime's entry point: it reads the container's record and bundle (never the
image store), hands them to ``launch``, and records the state transitions.
"""

import json
import os
import time

from rootless import fsutil
from rootless.errors import Conflict
from rootless.runtime import state


def layers_of(paths, record: dict):
    """(diff dir, record) per layer, lowest first, from the layer metadata the store wrote."""
    out = []
    for diff_id in record["layers"]:
        base = os.path.join(paths.layers, diff_id.split(":", 1)[1])
        meta = fsutil.read_json(os.path.join(base, "meta.json")) or {}
        out.append((os.path.join(base, "diff"), meta.get("record", {})))
    return out


def start(paths, record: dict, interactive: bool, debug=None) -> int:
    """Run the container to its end; its exit code."""
    from rootless.runtime.launch import Launch
    from rootless.storage import rootfs
    containers = state.Containers(paths)
    cdir = containers.dir(record["id"])
    with open(os.path.join(cdir, "config.json")) as f:
        spec = json.load(f)
    layers = layers_of(paths, record)
    owners = None
    if record["idmap"]["mode"] == "subuid" and not os.path.exists(os.path.join(cdir, "owners.applied")):
        from rootless.bundle.create import effective_owners
        owners = effective_owners(layers) or None
    with containers.lock():
        current = containers.find(record["id"])
        if current["status"] == state.RUNNING:
            raise Conflict("container %s is already running" % record["name"])
        me = {"pid": os.getpid(), "start": state.process_start_time(os.getpid())}
        record = containers.transition(current, state.RUNNING, monitor=me, started=time.time(),
                                       exit_code=None, pid=None)
    launch = Launch(spec, cdir, rootfs.get(record["driver"]), layers, record["idmap"],
                    interactive=interactive, init=record.get("init", False),
                    apply_owners=owners, debug=debug)

    def started(pid: int) -> None:
        record["pid"] = pid
        containers.save(record)
    code = 125
    try:
        code = launch.run(on_started=started)
        return code
    except BaseException as e:
        code = getattr(e, "exit_code", 125)
        raise
    finally:
        containers.transition(record, state.EXITED, exit_code=code, finished=time.time(), monitor=None, pid=None)
        if record.get("auto_remove"):
            remove(paths, record)


def remove(paths, record: dict) -> None:
    """Delete a container's directory. Files its processes made under sub-ids cannot be
    removed by you directly; those are removed from inside a user namespace with the
    container's mapping."""
    containers = state.Containers(paths)
    cdir = containers.dir(record["id"])
    trash = os.path.join(containers.top, "." + record["id"] + ".removing")
    try:
        os.rename(cdir, trash)
    except FileNotFoundError:
        return
    try:
        fsutil.remove_tree(trash)
    except PermissionError:
        if record["idmap"]["mode"] != "subuid":
            raise
        from rootless.runtime.launch import as_mapped_root
        as_mapped_root(record["idmap"], lambda: fsutil.remove_tree(trash))
