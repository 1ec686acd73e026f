"""P, the container's first process: from the keeper's namespaces to the command.

In order, and why: the parent-death signal first, then a handshake with the parent (it
answers only once it knows our pid, and not at all if it died before the signal could be
armed); a mount namespace of our own below the keeper's (pivot_root moves the root of
every process of a namespace, and a fuse-overlayfs process must keep the host's view);
the mount plan of ``runtime.mounts``; pivot_root; the terminal; then the user, bounding
set, capabilities, rlimits, no_new_privs and the id strategy's confinement, last before
exec because each one takes away a right the steps before it need.

Everything here is imported before the fork: after pivot_root neither the zipapp nor the
host's Python library is visible any more.
"""

import _socket  # sethostname; socket.py's enum classes cost every run ~2 ms
import os

from rootless.linux import caps, mount, ns, signals, sync
from rootless.runtime import idmapping, mounts
# The steps an exec'd process shares (and names the runtime reaches through init).
from rootless.runtime.process import (  # noqa: F401
    FORWARDED, RLIMITS, become_process, become_user, code_of, execute, find_executable, kill_quietly, preload,
    set_rlimits)


def main(bundle, chan, rootfs: str, debug=None) -> int:
    caps.set_pdeathsig(signals.SIGKILL)
    # The root is made while the parent starts the network helpers: the two overlap.
    # Nothing of the container runs before "go" (sent once the parent has our pid, so it
    # is usually waiting by the time the root is made), and every mount is in this
    # process's own mount namespace, which ends with it if "go" never comes.
    strategy = idmapping.get(bundle.idmap)
    ns.unshare(ns.CLONE_NEWNS)
    mount.mount(None, "/", None, mount.MS_REC | mount.MS_PRIVATE)
    spec, proc = bundle.spec, bundle.process
    if spec.get("hostname") and "uts" in bundle.namespaces:
        _socket.sethostname(spec["hostname"])
    if bundle.copyup:  # before anything covers the image's content at those paths
        mounts.copy_up(rootfs, bundle.copyup)
    mounts.apply(mounts.plan(spec, rootfs, bundle.dir, strategy.devpts_gid), rootfs, debug)
    cwd = mounts.secure_join(rootfs, proc.get("cwd") or "/")
    if not os.path.isdir(cwd):
        os.makedirs(cwd, 0o755, exist_ok=True)
    mounts.pivot(rootfs)
    if (spec.get("root") or {}).get("readonly"):
        mount.remount_readonly("/")
    reply = sync.recv(chan)
    if not reply or reply.get("op") != "go":
        return 1  # the parent is gone (or gave up): nobody would wait for us
    become_process(proc, strategy, chan, bool(reply.get("supervised")))
    if bundle.init:
        return _init(lambda: execute(proc), chan)
    execute(proc)
    return 0  # not reached


def _init(start, chan) -> int:
    """``--init``: pid 1 that starts the command, passes signals on and reaps every zombie.
    The command's exec closes ``chan`` in it, and ``chan`` is closed here, so the parent's
    end of file still means "the command is running"."""
    child = os.fork()
    if child == 0:
        os.setpgid(0, 0)
        sync.child_main(start, chan)
    chan.close()
    for name in FORWARDED:
        sig = getattr(signals, name, None)
        if sig is not None:
            signals.signal(sig, lambda s, f: kill_quietly(child, s))
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        if pid == child:
            return code_of(status)


