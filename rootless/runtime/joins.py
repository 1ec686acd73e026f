"""Another container's namespaces, opened for K to join (``bundle.join``) while that
container is checked to be running: ``--network container:NAME`` (``network.join``: its
user and network namespaces) and ``--pid container:NAME`` (its user and pid namespaces).

Both go through the other container's user namespace, which owns the rest: a container
joins at most one other (``bundle.create.pid_of`` refuses two). K enters the user
namespace first, then makes its own mount namespace and rootfs, then the others
(``keeper``); a joined pid namespace takes K's next child, the container's first process,
which is then one process among the other's, not pid 1 of its own. The /proc it mounts
shows the other's processes: MPI ranks of one node share the namespace set of one
container, so each can read the others' memory (CMA) as processes of one user namespace.
"""

import os

from rootless.errors import Conflict, NotFound
from rootless.linux import ns
from rootless.runtime import state


def join(containers, bundle) -> None:
    if bundle.network == "container":
        from rootless.runtime import network
        network.join(containers, bundle)
    if bundle.pid_container:
        join_pid(containers, bundle)


def join_pid(containers, bundle) -> None:
    other = containers.read(bundle.pid_container)
    if other is None:
        raise NotFound("joining PID namespace of container: No such container: %s" % bundle.pid_container)
    if other.get("status") not in state.ACTIVE or not state.first_process_alive(other):
        raise Conflict("cannot join PID namespace of a non running container: %s" % other.get("name"))
    have = bundle.join or []
    kinds = ["pid"] if any(flag == ns.CLONE_NEWUSER for _, flag in have) else ["user", "pid"]
    opened = ns.open_namespaces(other["pid"], kinds)
    if not state.first_process_alive(other) or len(opened) != len(kinds):
        for fd, _ in opened:
            os.close(fd)
        raise Conflict("cannot join PID namespace of a non running container: %s" % other.get("name"))
    bundle.join = list(have) + opened
